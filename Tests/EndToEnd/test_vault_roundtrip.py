"""Vault lifecycle and secrets through the real CLI and daemon, with leak checks."""
import json
import os
import subprocess
import time

from conftest import PASSPHRASE, files_containing, one_error_line

SECRET_VALUE = "sk-e2e-VALUE-3b1d5e7f9a"  # must appear nowhere but inside the encrypted record


def test_round_trip_leaks_neither_the_secret_nor_the_passphrase(daemon_factory):
    d = daemon_factory().start()
    d.cli("status", check=0)
    assert d.cli("secret", "list").returncode == 4  # uninitialized

    d.cli("vault", "init", "--passphrase-stdin", input=PASSPHRASE + "\n", check=0)
    body = json.dumps({"access_key_id": "AKIAE2EEXAMPLE", "secret_access_key": SECRET_VALUE, "region": "eu-west-1"})
    put = d.cli("secret", "put", "aws-train", "--type", "aws", input=body, check=0)
    assert "version 1" in put.out
    d.cli("secret", "put", "aws-train", "--type", "aws", input=body, check=0)
    d.cli("vault", "seal", check=0)
    assert d.cli("secret", "list").returncode == 4  # sealed

    started = time.monotonic()
    wrong = d.unseal("not-the-passphrase")
    assert wrong.returncode == 3
    assert "wrong passphrase" in wrong.err
    assert time.monotonic() - started >= 0.9, "a wrong passphrase must be answered after a delay"
    assert d.unseal().returncode == 0

    listing = json.loads(d.cli("secret", "list", "--json", check=0).out)
    assert [(s["name"], s["type"], s["version"], s["phi"]) for s in listing["secrets"]] == [("aws-train", "aws", 2, False)]
    assert "error" not in listing["secrets"][0]

    audit = json.loads(d.cli("audit", "show", "--json", check=0).out)
    unseals = [(r["action"], r["result"]) for r in audit if r["action"] == "vault.unseal"]
    assert unseals == [("vault.unseal", "denied"), ("vault.unseal", "allowed")]
    d.cli("audit", "verify", check=0)
    export = d.cli("audit", "export", check=0).out.splitlines()
    assert [json.loads(line)["seq"] for line in export] == list(range(1, len(export) + 1))

    d.stop()  # checkpoint nothing away: the WAL is searched as it is, then the database after
    paths = d.written_files()
    assert any(p.endswith("mlcred.db") for p in paths)
    for needle in (SECRET_VALUE, PASSPHRASE):
        assert files_containing(needle, paths) == [], f"{needle!r} leaked to disk"
        assert not any(needle in output for output in d.outputs), f"{needle!r} leaked to CLI output"


def test_state_directory_and_database_are_private(daemon):
    assert os.stat(daemon.state_dir).st_mode & 0o777 == 0o700
    for suffix in ("", "-wal", "-shm"):
        path = daemon.db_path() + suffix
        if os.path.exists(path):
            assert os.stat(path).st_mode & 0o777 == 0o600, path


def test_secret_fields_are_validated_per_type(daemon):
    bad = [
        ("aws", {"access_key_id": "A"}, "missing field 'secret_access_key'"),
        ("aws", {"access_key_id": "A", "secret_access_key": "B", "colour": "x"}, "unknown field 'colour'"),
        ("postgres", {"host": "h", "port": 70000, "dbname": "d", "user": "u", "password": "p"}, "port"),
        ("postgres", {"host": "h", "port": "5432", "dbname": "d", "user": "u", "password": "p", "sslmode": "sometimes"}, "sslmode"),
        # A region reaches every job's generated AWS config: no line of its own may ride in on it.
        ("aws", {"access_key_id": "A", "secret_access_key": "B", "region": "us-east-1\nendpoint_url = http://evil"}, "field 'region'"),
        ("aws", {"access_key_id": "A", "secret_access_key": "B", "endpoint_url": "http://x\n[profile y]"}, "endpoint_url"),
        ("static", {}, "at least one field"),
        # A type the CLI knows no put for is a usage error, said before connecting (exit 2).
        ("jwt-signer", {"x": "y"}, "secret generate"),
        ("ftp", {"x": "y"}, "--type must be static, aws or postgres"),
    ]
    for kind, fields, message in bad:
        result = daemon.cli("secret", "put", "bad", "--type", kind, input=json.dumps(fields))
        assert result.returncode == (2 if kind in ("jwt-signer", "ftp") else 1), (kind, fields, result.err)
        assert message in result.err and result.err.startswith("mlcred: error: "), result.err
        assert len(result.err.strip().splitlines()) == 1
    ok = daemon.cli("secret", "put", "pg", "--type", "postgres",
                    input=json.dumps({"host": "127.0.0.1", "port": 5432, "dbname": "d", "user": "u", "password": "p"}))
    assert ok.returncode == 0, ok.err
    not_json = daemon.cli("secret", "put", "x", "--type", "static", input="password=hunter2")
    assert not_json.returncode == 2 and "hunter2" not in not_json.err
    assert daemon.cli("secret", "put", "../etc", "--type", "static", input='{"a":"b"}').returncode == 2
    # The daemon still refuses what the CLI would not send.
    status, body = daemon.http("PUT", "/v1/secrets/bad", {"type": "ftp", "fields": {"x": "y"}})
    assert status == 400 and "unknown secret type" in body["error"]["message"], body


def test_generated_signer_and_removal(daemon):
    gen = daemon.cli("secret", "generate", "tracking", "--type", "jwt-signer", "--issuer", "https://mlcred.test", "--json", check=0)
    meta = json.loads(gen.out)
    assert meta["type"] == "jwt-signer" and meta["version"] == 1
    assert "private_key" not in gen.out
    daemon.cli("secret", "rm", "tracking", check=0)
    assert json.loads(daemon.cli("secret", "list", "--json", check=0).out)["secrets"] == []
    assert daemon.cli("secret", "rm", "tracking").returncode == 1
    again = json.loads(daemon.cli("secret", "generate", "tracking", "--type", "jwt-signer", "--json", check=0).out)
    assert again["version"] == 2, "versions keep counting after a removal"
    actions = [r["action"] for r in json.loads(daemon.cli("audit", "show", "--json", check=0).out)]
    assert actions.count("secret.generate") == 2 and actions.count("secret.rm") == 1
    # A put of another type over it is refused, the signing key kept (a new user replaced one with
    # a static value by a typo: the JWKS went empty and every jwt grant failed).
    kid_before = json.loads(daemon.cli("jwks", check=0).out)["keys"]
    typo = daemon.cli("secret", "put", "tracking", "--type", "static", input='{"token": "x"}')
    line = one_error_line(typo.err)
    assert typo.returncode == 1 and "secret 'tracking' is of type jwt-signer: a new version keeps its type" in line, typo.err
    assert "mlcred secret rm tracking" in line, line
    assert json.loads(daemon.cli("jwks", check=0).out)["keys"] == kid_before != []
    [listed] = json.loads(daemon.cli("secret", "list", "--json", check=0).out)["secrets"]
    assert (listed["type"], listed["version"]) == ("jwt-signer", 2), listed
    # Removed first, the name takes the other type.
    daemon.cli("secret", "rm", "tracking", check=0)
    assert daemon.cli("secret", "put", "tracking", "--type", "static", input='{"token": "x"}').returncode == 0


def test_key_file_init_and_unattended_unseal_at_start(daemon_factory):
    d = daemon_factory().start()
    key = os.path.join(d.root, "unseal.key")
    d.cli("vault", "init", "--key-file", key, check=0)
    assert os.stat(key).st_size == 32 and os.stat(key).st_mode & 0o777 == 0o400
    d.cli("vault", "seal", check=0)
    d.cli("vault", "unseal", "--key-file", key, check=0)
    assert json.loads(d.cli("status", "--json", check=0).out)["sealed"] is False
    d.stop()
    d.start(extra=["--unseal-key-file", key])
    assert json.loads(d.cli("status", "--json", check=0).out)["sealed"] is False
    d.stop()
    wrong = os.path.join(d.root, "wrong.key")
    with open(wrong, "wb") as f:
        f.write(os.urandom(32))
    d.start(wait=False, extra=["--unseal-key-file", wrong])
    assert d.proc.wait(timeout=15) == 1
    assert "wrong key file" in d.read_log()
    # A file that is not there is said to be missing, not of the wrong size (a new user's report).
    missing = os.path.join(d.root, "nothere.key")
    d.start(wait=False, extra=["--unseal-key-file", missing])
    assert d.proc.wait(timeout=15) == 1
    assert f"cannot read the unseal key file {missing}: No such file or directory" in d.read_log(), d.read_log()[-500:]


def test_wrong_passphrases_back_off_and_the_right_one_still_unseals(daemon):
    daemon.cli("vault", "seal", check=0)
    started = time.monotonic()
    assert daemon.unseal("wrong-1-xxxxxxxx").returncode == 3
    assert daemon.unseal("wrong-2-xxxxxxxx").returncode == 3
    elapsed = time.monotonic() - started
    assert elapsed >= 2.9, f"delays 1 s then 2 s expected, took {elapsed:.2f}s"
    assert daemon.unseal().returncode == 0
    denied = [r for r in json.loads(daemon.cli("audit", "show", "--json", check=0).out)
              if r["action"] == "vault.unseal" and r["result"] == "denied"]
    assert len(denied) == 2
    daemon.cli("audit", "verify", check=0)


def test_unseal_refusals_name_their_reason_and_the_cli_hint_follows_it(daemon):
    daemon.cli("vault", "seal", check=0)
    status, body = daemon.http("POST", "/v1/vault/unseal", {"passphrase": "wrong-0-xxxxxxxx"})
    assert (status, body["error"]["code"], body["error"]["reason"]) == (403, "denied", "wrong_passphrase"), body
    wrong = daemon.unseal("wrong-1-xxxxxxxx")
    assert wrong.returncode == 3
    assert wrong.err.strip().endswith("(hint: check the passphrase or key file; each failure doubles the wait)"), wrong.err
    key = os.path.join(daemon.root, "some.key")
    with open(key, "wb") as f:
        f.write(os.urandom(32))
    no_key_file = daemon.cli("vault", "unseal", "--key-file", key)
    assert no_key_file.returncode == 1 and "--passphrase-stdin" in no_key_file.err.partition("(hint:")[2], no_key_file.err
    status, body = daemon.http("GET", "/v1/secrets")
    assert (status, body["error"]["code"], body["error"]["reason"]) == (503, "sealed", "sealed"), body
    sealed = daemon.cli("secret", "list")
    assert sealed.returncode == 4 and "(hint: an admin must run 'mlcred vault unseal')" in sealed.err, sealed.err


def test_status_json_has_the_spec_fields_in_every_state(daemon_factory):
    d = daemon_factory(environment="staging").start()
    fields = {"initialized", "sealed", "environment", "phi", "version"}
    s = json.loads(d.cli("status", "--json", check=0).out)
    assert set(s) == fields and (s["initialized"], s["sealed"], s["environment"]) == (False, True, "staging")
    d.init()
    s = json.loads(d.cli("status", "--json", check=0).out)
    assert (s["initialized"], s["sealed"]) == (True, False)
    d.cli("vault", "seal", check=0)
    assert json.loads(d.cli("status", "--json", check=0).out)["sealed"] is True


def test_init_twice_is_a_conflict_and_a_short_passphrase_is_refused(daemon_factory):
    d = daemon_factory().start()
    short = d.cli("vault", "init", "--passphrase-stdin", input="short")
    assert short.returncode == 1 and "too short" in short.err
    d.init()
    again = d.cli("vault", "init", "--passphrase-stdin", input=PASSPHRASE)
    assert again.returncode == 1 and "already initialized" in again.err


def test_unreachable_daemon_exits_5_with_a_hint(daemon_factory):
    d = daemon_factory()
    result = d.cli("status")
    assert result.returncode == 5
    assert result.err.startswith("mlcred: error: cannot reach mlcredd") and "hint:" in result.err
    assert d.cli("vault", "frobnicate").returncode == 2


def test_a_name_with_url_characters_never_acts_on_another_secret(daemon):
    daemon.cli("secret", "put", "UPPER", "--type", "static", input='{"k": "v"}', check=0)
    for bad in ("UPPER?typo", "UPPER/x", "UP PER", "x?y=1"):
        result = daemon.cli("secret", "rm", bad)
        assert result.returncode == 2 and "invalid secret name" in result.err, (bad, result.err)
        assert daemon.cli("secret", "put", bad, "--type", "static", input='{"k": "v"}').returncode == 2
    names = [s["name"] for s in json.loads(daemon.cli("secret", "list", "--json", check=0).out)["secrets"]]
    assert names == ["UPPER"]


def test_help_is_printed_with_exit_0(daemon_factory):
    d = daemon_factory()
    for args in (["--help"], ["run", "--help"], ["help", "run"], ["vault"], [], ["policy", "--help"]):
        result = d.cli(*args)
        assert result.returncode == 0 and "USAGE" in result.out.upper(), (args, result.err)


def test_unsealing_an_unsealed_vault_still_checks_the_passphrase(daemon):
    wrong = daemon.unseal("wrong-passphrase-123")
    assert wrong.returncode == 3 and "wrong passphrase" in wrong.err
    assert daemon.unseal().returncode == 0
    assert json.loads(daemon.cli("status", "--json", check=0).out)["sealed"] is False


def test_audit_records_carry_every_field_null_or_not(daemon):
    records = json.loads(daemon.cli("audit", "show", "--json", check=0).out)
    assert set(records[0]) == {"seq", "time", "principal", "action", "role", "grant", "result", "reason", "accessor", "prev", "mac", "node"}
    assert set(records[0]["principal"]) == {"uid", "gid", "user", "pid", "groups", "unit"}
    assert records[0]["role"] is None and records[0]["principal"]["unit"] is None


def test_a_second_daemon_on_the_same_state_directory_refuses_to_start(daemon_factory):
    d = daemon_factory().start()
    d.init()
    other = subprocess.run(d.command() + ["--socket", d.socket + "-2"], capture_output=True, timeout=15,
                           env=dict(os.environ, MLCRED_UNSAFE_TEST_KDF="1"))
    assert other.returncode == 1 and b"already uses the state directory" in other.stderr
    d.cli("audit", "verify", check=0)
