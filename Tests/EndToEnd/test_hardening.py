"""Issue 13 (hardening): what a hostile local user or a careless admin could do with names,
floods and a full disk. Each test performs the attack for real, as a second user where the attack
is one, and fails if it works."""
import json
import os
import subprocess
import tempfile
import time

import pytest

from conftest import NONADMIN_USER, as_user, is_root, role_toml, wait_for

needs_root = pytest.mark.skipif(not is_root(), reason="needs root: creates users, mounts a tmpfs")

# A client for floods, run as a test user with Debian's own Python (test users cannot read /root).
FLOOD = r"""
import json, socket, sys
path, count, role_length = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
statuses = {}
for i in range(count):
    body = json.dumps({"role": ("r%d-" % i + "x" * role_length)[:max(role_length, 4)]}).encode()
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(b"POST /v1/tokens HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    status = data.split(b" ", 2)[1].decode()
    statuses[status] = statuses.get(status, 0) + 1
print(json.dumps(statuses))
"""


def flood(d, user, count, role_length):
    """`count` token requests for roles that do not exist, as `user`; returns {status: count}."""
    out = subprocess.run(as_user(user) + ["/usr/bin/python3", "-c", FLOOD, d.socket, str(count), str(role_length)],
                         capture_output=True, timeout=120, check=True)
    return json.loads(out.stdout)


@needs_root
def test_a_huge_role_name_is_refused_before_anything_is_audited(daemon, users):
    before = daemon.audit(limit=1000)
    status, body = daemon.http("POST", "/v1/tokens", {"role": "A" * 65_000}, user=NONADMIN_USER)
    assert status == 400 and body["error"]["reason"] == "invalid_name", body
    assert "65000" not in json.dumps(body) and "AAAA" not in json.dumps(body)
    # Control characters are outside the grammar too: nothing reaches the audit log.
    status, body = daemon.http("POST", "/v1/tokens", {"role": "train\n2026 allowed vault.unseal"}, user=NONADMIN_USER)
    assert status == 400 and body["error"]["reason"] == "invalid_name", body
    after = daemon.audit(limit=1000)
    assert len(after) == len(before), after[len(before):]
    # The same for grant names in a credentials request and names in a path.
    status, body = daemon.http("POST", "/v1/credentials", {"grants": ["g" * 200]}, token="mlc_x", user=NONADMIN_USER)
    assert status == 400 and body["error"]["reason"] == "invalid_name", body
    status, body = daemon.http("DELETE", "/v1/secrets/" + "s" * 300, user=NONADMIN_USER)
    assert status == 400 and body["error"]["reason"] == "invalid_name", body
    assert len(daemon.audit(limit=1000)) == len(before)


@needs_root
def test_a_denial_flood_is_merged_into_one_record_per_uid_and_window(daemon, users):
    """SPEC §3: beyond the first 10 denials of a uid in 10 s, one merged record counts the rest.
    The flood of 40 maximal-length names leaves a few records in the log, and is slowed down."""
    uid = int(subprocess.run(["id", "-u", NONADMIN_USER], capture_output=True, text=True, check=True).stdout)
    seq_before = daemon.audit(limit=1)[-1]["seq"]
    started = time.monotonic()
    statuses = flood(daemon, NONADMIN_USER, 40, 128)
    elapsed = time.monotonic() - started
    assert statuses == {"403": 40}, statuses
    # Past the allowance each denial is answered after 200 ms: the flood is slowed to a trickle.
    assert elapsed >= 30 * 0.2 * 0.9, f"40 denials took {elapsed:.1f} s"
    # The merged record is written when the window ends, or at shutdown: stop, restart, read.
    daemon.stop()
    daemon.start()
    records = [r for r in daemon.audit(limit=1000) if r["seq"] > seq_before and r["principal"]["uid"] == uid]
    denials = [r for r in records if r["result"] == "denied"]
    merged = [r for r in denials if "more denials" in (r["reason"] or "")]
    assert len(merged) >= 1, denials
    counted = sum(int(r["reason"].split(" ", 1)[0]) for r in merged)
    assert len(denials) - len(merged) + counted == 40, [r["reason"] for r in denials]
    assert len(denials) - len(merged) <= 10 * (1 + len(merged)), len(denials)
    assert f"from uid {uid} in 10 s" in merged[0]["reason"]
    # What the flood left in the log: a few records, where 40 records of it would be ~20 KB.
    assert sum(len(json.dumps(r)) for r in records) < 8_000
    daemon.unseal()
    assert daemon.cli("audit", "verify", check=0)


@needs_root
def test_refusals_written_while_sealed_are_chained_at_unseal(daemon, users):
    """Records written while sealed carry no MAC until unseal chains them (in batches)."""
    daemon.cli("vault", "seal", check=0)
    for _ in range(3):
        status, body = daemon.http("GET", "/v1/secrets", user=NONADMIN_USER)
        assert status == 403, body
    unsealed = daemon.unseal()
    assert unsealed.returncode == 0, unsealed.err
    assert "chained" in daemon.audit(limit=1)[-1]["reason"]
    daemon.cli("audit", "verify", check=0)


@pytest.fixture
def small_tmpfs():
    """A 24 MiB tmpfs, unmounted at the end."""
    path = tempfile.mkdtemp(prefix="mlcred-tmpfs-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0755", "tmpfs", path], check=True)
    yield path
    subprocess.run(["umount", "-l", path], check=False)
    os.rmdir(path)


def fill(path, leave_bytes):
    """Writes a filler file in `path` until about `leave_bytes` remain free; returns its path."""
    filler = os.path.join(path, "filler")
    info = os.statvfs(path)
    free = info.f_bavail * info.f_frsize
    with open(filler, "ab") as f:
        remaining = max(free - leave_bytes, 0)
        chunk = b"\0" * (1 << 20)
        while remaining > 0:
            f.write(chunk[:min(remaining, len(chunk))])
            remaining -= min(remaining, len(chunk))
    return filler


@needs_root
def test_below_the_free_space_reserve_new_tokens_are_refused_and_revocations_still_work(daemon_factory, small_tmpfs):
    d = daemon_factory()
    d.state_dir = os.path.join(small_tmpfs, "state")
    policies = os.path.join(d.root, "policies")
    os.makedirs(policies)
    with open(os.path.join(policies, "work.toml"), "w") as f:
        f.write(role_toml("work", ["uid:0"]))
    d.start(extra=["--policies", policies, "--min-free", "8M"])
    d.init()
    held = d.cli("token", "--role", "work", check=0).out.strip()
    filler = fill(small_tmpfs, 4 << 20)

    # The daemon looks at the file system at most every 200 ms.
    refused = wait_for(lambda: (lambda r: r if r.returncode != 0 else None)(d.cli("token", "--role", "work")), 3, "a refusal")
    assert refused.returncode == 1, refused.err
    assert "free-space reserve" in refused.err and "MiB free" in refused.err, refused.err
    status, body = d.http("POST", "/v1/tokens", {"role": "work"})
    assert status == 507 and body["error"] == {**body["error"], "code": "store_full", "reason": "store_full"}, body
    put = d.cli("secret", "put", "s1", "--type", "static", input='{"v": "x"}')
    assert put.returncode == 1 and "free-space reserve" in put.err, put.err
    # What must still happen does: renewal, revocation, seal, the audit of admin actions.
    status, _ = d.http("POST", "/v1/tokens/renew", {}, token=held)
    assert status == 200
    status, _ = d.http("POST", "/v1/tokens/revoke", {}, token=held)
    assert status == 200
    d.cli("vault", "seal", check=0)
    d.unseal()
    assert d.audit(limit=1)[-1]["action"] == "vault.unseal"

    # The reserve lifts by itself when space returns.
    os.remove(filler)
    wait_for(lambda: d.cli("token", "--role", "work").returncode == 0, 5, "token issue once space returned")
    d.cli("audit", "verify", check=0)


@needs_root
def test_a_truly_full_disk_fails_requests_cleanly_and_loses_nothing_acknowledged(daemon_factory, small_tmpfs):
    """With the reserve off, the file system fills up for real: writes fail with an error answer,
    the daemon keeps serving, and after space returns everything acknowledged is there."""
    d = daemon_factory()
    d.state_dir = os.path.join(small_tmpfs, "state")
    policies = os.path.join(d.root, "policies")
    os.makedirs(policies)
    with open(os.path.join(policies, "work.toml"), "w") as f:
        f.write(role_toml("work", ["uid:0"]))
    d.start(extra=["--policies", policies, "--min-free", "0"])
    d.init()
    acknowledged = [d.cli("token", "--role", "work", check=0).out.strip() for _ in range(3)]
    filler = fill(small_tmpfs, 0)
    failures = 0
    for _ in range(30):
        result = d.cli("token", "--role", "work")
        if result.returncode == 0:
            acknowledged.append(result.out.strip())
        else:
            failures += 1
            assert result.returncode == 1 and "mlcred: error:" in result.err, result.err
    assert failures > 0, "the file system never filled up"
    assert json.loads(d.cli("status", "--json", check=0).out)["sealed"] is False
    os.remove(filler)
    d.stop()
    d.start()
    d.unseal()
    live = {t["accessor"] for t in d.tokens()}
    assert len(live) == len(acknowledged)
    d.cli("audit", "verify", check=0)


# Finding 8 and 10: the policy loader trusts nothing outside the directory it was given.

def attacker_dir(workdir, user):
    """A directory `user` owns and writes (where a careless admin's symlink points)."""
    path = tempfile.mkdtemp(prefix="attacker-", dir=workdir)
    os.chmod(path, 0o755)
    subprocess.run(["chown", user, path], check=True)
    return path


def write_as(user, path, text):
    subprocess.run(as_user(user) + ["/bin/sh", "-c", 'cat > "$1"', "sh", path], input=text.encode(), check=True)


@needs_root
def test_a_symlink_into_a_user_writable_directory_never_loads_the_users_role(broker_factory, users, workdir):
    d = broker_factory({"ok.toml": role_toml("ok", ["uid:0"])})
    evil = attacker_dir(workdir, NONADMIN_USER)
    # A root-owned file at first: the old loader's stat() passed it, then open() read the flip.
    target = os.path.join(evil, "train.toml")
    with open(target, "w") as f:
        f.write(role_toml("train", ["uid:0"]))
    os.chmod(target, 0o644)
    os.symlink(target, os.path.join(d.policies, "train.toml"))
    reload = d.cli("policy", "reload")
    assert reload.returncode == 1, reload.out
    assert "train.toml:1: refused: a symbolic link" in reload.err, reload.err
    # The user swaps in his own role; reload after reload, it never loads.
    os.remove(target)
    write_as(NONADMIN_USER, target, role_toml("train", [f"user:{NONADMIN_USER}"]))
    for _ in range(3):
        assert d.cli("policy", "reload").returncode == 1
    assert d.cli("token", "--role", "train", user=NONADMIN_USER).returncode == 3
    assert "train" not in json.loads(d.cli("policy", "list", "--json", check=0).out).get("roles", {})


@needs_root
def test_a_symlinked_directory_or_session_policy_file_is_refused(broker_factory, users, workdir):
    evil = attacker_dir(workdir, NONADMIN_USER)
    write_as(NONADMIN_USER, os.path.join(evil, "open.json"), '{"Version": "2012-10-17", "Statement": []}')
    d = broker_factory({"ok.toml": role_toml("ok", ["uid:0"])})
    os.symlink(evil, os.path.join(d.policies, "aws"))
    grant = {"secret": "aws-dev", "type": "aws-assume-role", "role_arn": "arn:aws:iam::123456789012:role/x",
             "session_policy_file": "aws/open.json"}
    with open(os.path.join(d.policies, "s3.toml"), "w") as f:
        f.write(role_toml("s3", ["uid:0"], grant))
    reload = d.cli("policy", "reload")
    assert reload.returncode == 1
    assert "aws:1: refused: a symbolic link" in reload.err, reload.err
    assert "session_policy_file 'aws/open.json' refused: a symbolic link" in reload.err, reload.err
    # Offline validation says the same: "valid" means the daemon loads it.
    offline = d.cli("policy", "validate", d.policies)
    assert offline.returncode == 1 and "refused: a symbolic link" in offline.err, offline.err


@needs_root
def test_a_fifo_named_toml_is_refused_and_does_not_hang_reload(broker_factory):
    d = broker_factory({"ok.toml": role_toml("ok", ["uid:0"])})
    os.mkfifo(os.path.join(d.policies, "stuck.toml"), 0o644)
    reload = d.cli("policy", "reload", timeout=10)
    assert reload.returncode == 1
    assert "stuck.toml:1: refused: not a regular file" in reload.err, reload.err
    offline = d.cli("policy", "validate", d.policies, timeout=10)
    assert offline.returncode == 1 and "not a regular file" in offline.err
    assert d.cli("token", "--role", "ok").returncode == 0, "the last good set stays in force"


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_non_finite_jwt_claims_fail_validation_not_minting(bins, workdir, value):
    directory = tempfile.mkdtemp(prefix="p-", dir=workdir)
    os.chmod(directory, 0o755)
    with open(os.path.join(directory, "t.toml"), "w") as f:
        f.write(role_toml("t", ["uid:0"], {"secret": "tracking", "type": "jwt", "audience": "a"}).replace(
            'audience = "a"', f'audience = "a"\nclaims = {{ score = {value} }}'))
    os.chmod(os.path.join(directory, "t.toml"), 0o644)
    from conftest import run_mlcred
    result = run_mlcred(bins, "policy", "validate", directory)
    assert result.returncode == 1
    assert "claim 'score' has a value JSON cannot hold" in result.err, result.err


# Finding 9: the socket's directory, and who listens on it.

@needs_root
@pytest.mark.parametrize("owner,mode,expected", [
    (NONADMIN_USER, 0o755, "belongs to uid"),
    ("root", 0o777, "others may write it"),
])
def test_the_daemon_refuses_a_socket_directory_another_user_controls(daemon_factory, users, workdir, owner, mode, expected):
    d = daemon_factory()
    directory = tempfile.mkdtemp(prefix="sockdir-", dir=workdir)
    subprocess.run(["chown", owner, directory], check=True)
    os.chmod(directory, mode)
    d.socket = os.path.join(directory, "mlcred.sock")
    d.start(wait=False)
    assert d.proc.wait(timeout=15) == 1
    log = d.read_log()
    assert expected in log and directory in log, log
    assert not os.path.exists(d.socket)


# A listener that records what it receives, run by the attacker where the admin expects mlcredd.
IMPOSTOR = r"""
import os, socket, sys
path, record = sys.argv[1], sys.argv[2]
server = socket.socket(socket.AF_UNIX)
server.bind(path)
os.chmod(path, 0o666)
server.listen(8)
open(record + ".ready", "w").close()
while True:
    conn, _ = server.accept()
    conn.settimeout(2)
    data = b""
    try:
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}')
    except OSError:
        pass
    with open(record, "ab") as f:
        f.write(data)
    conn.close()
"""


@needs_root
def test_the_cli_sends_no_passphrase_or_secret_to_a_socket_another_user_listens_on(bins, users, workdir):
    directory = attacker_dir(workdir, NONADMIN_USER)
    path, record = os.path.join(directory, "mlcred.sock"), os.path.join(directory, "received")
    impostor = subprocess.Popen(as_user(NONADMIN_USER) + ["/usr/bin/python3", "-c", IMPOSTOR, path, record])
    try:
        wait_for(lambda: os.path.exists(record + ".ready"), 10, "the impostor to listen")
        from conftest import PASSPHRASE, run_mlcred
        for args, given in [(("vault", "unseal", "--passphrase-stdin"), PASSPHRASE),
                            (("vault", "init", "--passphrase-stdin"), PASSPHRASE),
                            (("secret", "put", "s", "--type", "static"), '{"v": "' + PASSPHRASE + '"}')]:
            result = run_mlcred(bins, *args, socket_path=path, input=given)
            assert result.returncode == 1, result.err
            assert "runs as uid" in result.err and "refusing to send it a secret" in result.err, result.err
        # Nothing reached it: not the passphrase, not even a request.
        assert not os.path.exists(record) or os.path.getsize(record) == 0
        # An admin who runs the daemon as that user says so, and then the CLI talks to it.
        result = run_mlcred(bins, "vault", "unseal", "--passphrase-stdin", socket_path=path, input="x" * 12,
                            env_extra={"MLCRED_DAEMON_USER": NONADMIN_USER})
        assert "refusing to send" not in result.err
        wait_for(lambda: os.path.exists(record) and os.path.getsize(record) > 0, 5, "the request to arrive")
    finally:
        impostor.kill()
        impostor.wait()


# Found by fuzzing (docs/fuzzing.md): input the TOML parser mlcred used to bundle (toml++) aborted
# on. Its own parser (MLCredTOML) answers each with a diagnostic at the place.

@pytest.mark.parametrize("text,where,what", [
    ("[*", "1:2", "expected a key"),
    ("a = [}", "1:6", "expected a value"),
    ('name = "x"\ncreate = ["a",}', "2:15", "expected a value"),
    ("t=1979-05-27T:", "1:14", "malformed date or time"),
    ("\ufeff[.", "1:2", "expected a key"),
])
def test_a_policy_file_that_aborted_the_old_toml_parser_is_an_error_at_its_place(broker_factory, text, where, what):
    d = broker_factory({"ok.toml": role_toml("ok", ["uid:0"])})
    path = os.path.join(d.policies, "typo.toml")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    reload = d.cli("policy", "reload", timeout=30)
    assert reload.returncode == 1, reload.err
    assert f"typo.toml:{where}: TOML syntax: {what}" in reload.err, reload.err
    assert d.proc.poll() is None, "the daemon died"
    assert d.cli("token", "--role", "ok").returncode == 0, "the last good set stays in force"
    offline = d.cli("policy", "validate", d.policies, timeout=30)
    assert offline.returncode == 1 and f"typo.toml:{where}: TOML syntax: {what}" in offline.err, offline.err
    # A start with it is refused with the same diagnostic, not an abort.
    d.stop()
    d.start(wait=False, extra=["--policies", d.policies])
    assert d.proc.wait(timeout=30) == 1
    assert f"typo.toml:{where}: TOML syntax" in d.read_log()


# Found in review of the TOML parser: Swift normalizes a String to hash or compare it, and a long
# run of combining marks normalizes in quadratic time. One 60 KB body with such a JSON key cost
# the release daemon 0.7 s of an event loop before any check answered. Refused on its bytes, in
# the path, in the body, and after JSON escapes are decoded (docs/api.md, StreamSafeText).

@needs_root
def test_text_that_would_take_quadratic_time_to_compare_is_refused_before_it_is_read(daemon, users):
    from conftest import assert_still_serving, parse_response
    marks = "e" + "\u0301\u0316" * 15_000
    expected = "more than 30 combining marks in a row"
    # As JSON escapes (curl sends json.dumps's ASCII, six bytes a mark: 5,000 pairs fit in the body limit), on a hot
    # route, as another user.
    status, body = daemon.http("POST", "/v1/tokens", {"role": "train", marks[:10_001]: 1}, user=NONADMIN_USER)
    assert status == 400 and body["error"]["reason"] == "invalid_body" and expected in body["error"]["message"], body
    # As raw UTF-8 in the body.
    raw = json.dumps({"role": "train", marks: 1}, ensure_ascii=False).encode()
    answer = subprocess.run(as_user(NONADMIN_USER) + ["curl", "-s", "-i", "--unix-socket", daemon.socket, "-X", "POST",
                                                      "-H", "Content-Type: application/json", "--data-binary", "@-",
                                                      "http://mlcred/v1/tokens"], input=raw, capture_output=True, timeout=30)
    status, body = parse_response(answer.stdout)
    assert status == 400 and body["error"]["reason"] == "invalid_body" and expected in body["error"]["message"], body
    # In the path: NIO's HTTP parser refuses any byte above 0x7F in the request target (the
    # connection closes unanswered), and the daemon never percent-decodes a path.
    path = ("/v1/secrets/" + "e" + "\u0301\u0316" * 500).encode()
    try:
        status, body = daemon.http("GET", None, raw=b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert status == 400, body
    except ConnectionResetError:
        pass
    # As a value of a route Foundation's decoder reads (JSONParser reads it first).
    status, body = daemon.http("POST", "/v1/vault/unseal", {"passphrase": marks[:3000]})
    assert status == 400 and expected in body["error"]["message"], body
    # Thirty marks in a row are text like any other: refused for what they say, not for their shape.
    status, body = daemon.http("POST", "/v1/tokens", {"role": "e" + "\u0301" * 30}, user=NONADMIN_USER)
    assert status == 400 and body["error"]["reason"] == "invalid_name", body
    assert_still_serving(daemon)


def test_a_uid_holds_at_most_max_tokens_per_uid_live_tokens_and_others_are_not_starved(broker_factory, users):
    """A user whom a role admits, issuing tokens in a loop, would fill the store until its
    free-space reserve refused everyone's tokens: past `--max-tokens-per-uid` live tokens of
    their own, they are refused (429, audited) and other uids are not."""
    d = broker_factory({"shared.toml": role_toml("shared", [f"user:{NONADMIN_USER}", f"uid:{os.getuid()}"])},
                       extra=["--max-tokens-per-uid", "3"])
    uid = int(subprocess.run(["id", "-u", NONADMIN_USER], capture_output=True, text=True, check=True).stdout)
    tokens = [d.cli("token", "--role", "shared", user=NONADMIN_USER, check=0).out.strip() for _ in range(3)]
    refused = d.cli("token", "--role", "shared", user=NONADMIN_USER)
    assert refused.returncode == 1 and "token_limit_reached" not in refused.err, refused.err
    assert "holds 3 live tokens" in refused.err and "revoke tokens you no longer need" in refused.err, refused.err
    status, body = d.http("POST", "/v1/tokens", {"role": "shared"}, user=NONADMIN_USER)
    assert (status, body["error"]["code"], body["error"]["reason"]) == (429, "rate_limited", "token_limit_reached"), body
    # Another uid still gets its tokens.
    assert d.cli("token", "--role", "shared", check=0).out.startswith("mlc_")
    # The refusals are audited as denials of the flooding uid.
    denials = [r for r in d.audit(limit=50) if r["result"] == "denied" and r["principal"]["uid"] == uid]
    assert len(denials) == 2 and all("--max-tokens-per-uid" in r["reason"] for r in denials), denials
    # A revoked token makes room again.
    assert d.cli("token", "revoke", "--current", user=NONADMIN_USER, env_extra={"MLCRED_TOKEN": tokens[0]}).returncode == 0
    assert d.cli("token", "--role", "shared", user=NONADMIN_USER, check=0).out.startswith("mlc_")


def test_max_tokens_per_uid_must_be_a_count(daemon_factory):
    d = daemon_factory()
    result = subprocess.run(d.command(extra=["--max-tokens-per-uid=-1"]), capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "--max-tokens-per-uid must be 0 (no limit) or more" in result.stderr, result.stderr
