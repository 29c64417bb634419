"""Vault operations (issue 15, SPEC §13): rekey and backup/restore."""
import json
import os
import sqlite3
import subprocess
import time

import pytest

from conftest import PASSPHRASE, NONADMIN_USER, files_containing, one_error_line, parse_time

NEW_PASSPHRASE = "e2e-New-Passphrase-51be"


def passphrase_file(d, name, text):
    path = os.path.join(d.root, name)
    with open(path, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)
    return path


def test_rekey_replaces_the_passphrase_and_the_old_one_stops_working(daemon):
    daemon.cli("secret", "put", "kept", "--type", "static", input='{"v": "kept-value-123"}', check=0)
    old = passphrase_file(daemon, "old.txt", PASSPHRASE)
    result = daemon.cli("vault", "rekey", "--passphrase-file", old, "--new-passphrase-stdin", input=NEW_PASSPHRASE)
    assert result.returncode == 0, result.err
    assert "replaced the passphrase" in result.out and "unseals with passphrase" in result.out, result.out
    daemon.cli("vault", "seal", check=0)
    refused = daemon.unseal(PASSPHRASE)
    assert refused.returncode == 3, refused.err
    assert daemon.unseal(NEW_PASSPHRASE).returncode == 0
    # The data keys did not change: the secret still opens, the chain verifies across the rekey.
    assert [s["name"] for s in json.loads(daemon.cli("secret", "list", "--json", check=0).out)["secrets"]] == ["kept"]
    daemon.cli("audit", "verify", check=0)
    rekeys = [r for r in daemon.audit(limit=100) if r["action"] == "vault.rekey"]
    assert rekeys[-1]["result"] == "allowed" and "replaced the passphrase wrap" in rekeys[-1]["reason"]
    # Neither passphrase reached a file the daemon wrote, nor any output.
    for secret in (PASSPHRASE, NEW_PASSPHRASE):
        assert files_containing(secret, daemon.written_files()) == []
        assert not any(secret in text for text in daemon.outputs)


def test_rekey_with_a_wrong_current_passphrase_changes_nothing_and_is_audited(daemon):
    wrong = passphrase_file(daemon, "wrong.txt", "not-the-passphrase")
    result = daemon.cli("vault", "rekey", "--passphrase-file", wrong, "--new-passphrase-stdin", input=NEW_PASSPHRASE)
    assert result.returncode == 3
    assert "wrong passphrase" in one_error_line(result.err)
    daemon.cli("vault", "seal", check=0)
    assert daemon.unseal(PASSPHRASE).returncode == 0
    denied = [r for r in daemon.audit(limit=100) if r["action"] == "vault.rekey"]
    assert denied and denied[-1]["result"] == "denied"


def test_rekey_adds_a_key_file_and_keeps_the_passphrase(daemon):
    old = passphrase_file(daemon, "old.txt", PASSPHRASE)
    key = os.path.join(daemon.root, "new.key")
    result = daemon.cli("vault", "rekey", "--passphrase-file", old, "--new-key-file", key, "--json")
    assert result.returncode == 0, result.err
    assert json.loads(result.out) == {"replaced": ["key file"], "unlocks": ["passphrase", "key file"]}
    assert os.stat(key).st_mode & 0o777 == 0o400
    daemon.cli("vault", "seal", check=0)
    assert daemon.cli("vault", "unseal", "--key-file", key).returncode == 0
    daemon.cli("vault", "seal", check=0)
    assert daemon.unseal(PASSPHRASE).returncode == 0


def test_rekey_is_admin_only(daemon, users):
    old = passphrase_file(daemon, "old.txt", PASSPHRASE)
    os.chmod(old, 0o644)
    refused = daemon.cli("vault", "rekey", "--passphrase-file", old, "--new-passphrase-stdin", input=NEW_PASSPHRASE,
                         user=NONADMIN_USER)
    assert refused.returncode == 3 and "rekeying the vault needs an admin" in refused.err, refused.err


def test_a_crash_during_rekey_leaves_a_vault_one_unlock_opens(daemon):
    """The new wraps and the audit record are one transaction: killed at any moment, the vault
    opens with the old passphrase or the new one."""
    old = passphrase_file(daemon, "old.txt", PASSPHRASE)
    for attempt in range(5):
        proc = subprocess.Popen([daemon.mlcred, "vault", "rekey", "--passphrase-file", old, "--new-passphrase-stdin"],
                                env=daemon.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdin.write(NEW_PASSPHRASE.encode())
        proc.stdin.close()
        # Argon2id runs in the daemon for a few milliseconds: kill it somewhere in there.
        import time
        time.sleep(0.002 * attempt)
        daemon.kill9()
        proc.wait(timeout=30)
        daemon.start()
        opened = [p for p in (PASSPHRASE, NEW_PASSPHRASE) if daemon.unseal(p).returncode == 0]
        assert opened, f"attempt {attempt}: no passphrase opens the vault"
        daemon.cli("audit", "verify", check=0)
        if opened[0] == NEW_PASSPHRASE:
            with open(old, "w") as f:
                f.write(NEW_PASSPHRASE)
            daemon.cli("vault", "rekey", "--passphrase-file", old, "--new-passphrase-stdin", input=PASSPHRASE, check=0)
            with open(old, "w") as f:
                f.write(PASSPHRASE)


# Backup and restore

SECRET_VALUE = "backup-Secret-Value-9c1f27"


def test_backup_while_serving_and_restore_into_an_empty_state_dir_round_trip(daemon_factory, workdir):
    d = daemon_factory().start()
    d.init()
    d.cli("secret", "put", "kept", "--type", "static", input=json.dumps({"v": SECRET_VALUE}), check=0)
    # Writes go on during the backup.
    writer = subprocess.Popen(["/bin/sh", "-c", f'for i in $(seq 1 30); do printf \'{{"v":"x%s"}}\' $i | '
                               f'{d.mlcred} secret put w$i --type static >/dev/null; done'], env=d.env())
    backup = os.path.join(d.root, "vault.backup")
    result = d.cli("vault", "backup", backup, "--json")
    writer.wait(timeout=60)
    assert result.returncode == 0, result.err
    summary = json.loads(result.out)
    assert summary["file"] == backup and summary["bytes"] == os.path.getsize(backup)
    assert os.stat(backup).st_mode & 0o777 == 0o600
    # Only ciphertext: no secret value, passphrase or token in the file.
    with open(backup, "rb") as f:
        data = f.read()
    for needle in (SECRET_VALUE, PASSPHRASE):
        assert needle.encode() not in data
    assert sqlite3.connect(backup).execute("PRAGMA integrity_check").fetchone() == ("ok",)
    audited = [r for r in d.audit(limit=200) if r["action"] == "vault.backup"]
    assert audited and audited[-1]["result"] == "allowed"
    # A backup never overwrites.
    again = d.cli("vault", "backup", backup)
    assert again.returncode == 2 and "exists" in again.err

    restored = daemon_factory()
    out = subprocess.run([os.path.join(restored.bins, "mlcredd"), "--state-dir", restored.state_dir, "--restore", backup],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    head = summary["head"]
    assert f"audit head seq {head['seq']} mac {head['mac']}" in out.stdout, out.stdout
    restored.start()
    assert restored.unseal().returncode == 0
    secrets = {s["name"] for s in json.loads(restored.cli("secret", "list", "--json", check=0).out)["secrets"]}
    assert "kept" in secrets
    verify = json.loads(restored.cli("audit", "verify", "--json", check=0).out)
    assert verify["ok"] and verify["head"]["seq"] >= head["seq"], (verify, head)
    # The chain goes on from the backup's head (start and unseal add their records after it).
    at_head = [r for r in restored.audit(limit=1000) if r["seq"] == head["seq"]]
    assert at_head and at_head[0]["mac"] == head["mac"], at_head
    # Restoring over an existing database is refused (and over a running daemon, by its lock).
    restored.stop()
    refused = subprocess.run([os.path.join(restored.bins, "mlcredd"), "--state-dir", restored.state_dir, "--restore", backup],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "empty state directory" in refused.stderr


def test_restore_refuses_a_damaged_or_foreign_file(daemon_factory, workdir):
    d = daemon_factory()
    junk = os.path.join(d.root, "junk.db")
    with open(junk, "wb") as f:
        f.write(b"SQLite format 3\x00" + os.urandom(4096))
    other = os.path.join(d.root, "other.db")
    sqlite3.connect(other).execute("CREATE TABLE t(x)").connection.commit()
    for path in (junk, other, os.path.join(d.root, "missing.db")):
        out = subprocess.run([os.path.join(d.bins, "mlcredd"), "--state-dir", d.state_dir, "--restore", path],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 1 and out.stderr.startswith("mlcredd: error: cannot restore"), out.stderr
        assert not os.path.exists(os.path.join(d.state_dir, "mlcred.db"))


def test_backup_is_admin_only(daemon, users, workdir):
    target = os.path.join(workdir, "nonadmin.backup")
    refused = daemon.cli("vault", "backup", target, user=NONADMIN_USER)
    assert refused.returncode == 3 and "backing up the vault needs an admin" in refused.err, refused.err
    assert not os.path.exists(target)


# Break-glass (SPEC §13)

from conftest import ADMIN_GROUP_USER, role_toml  # noqa: E402

BREAKGLASS = {
    "breakglass.toml": role_toml("breakglass", ["uid:0", "group:mlcred-t-admins"],
                                 {"secret": "tracking", "type": "jwt", "audience": "incident"}, emergency=True, ttl="2h", max_ttl="2h"),
}


@pytest.fixture
def glass(broker_factory, users):
    d = broker_factory(BREAKGLASS)
    d.cli("secret", "generate", "tracking", "--type", "jwt-signer", check=0)
    return d


def test_an_emergency_role_issues_nothing_until_two_different_admins_open_it(glass):
    refused = glass.cli("token", "--role", "breakglass")
    assert refused.returncode == 3 and "emergency role 'breakglass' is closed" in refused.err, refused.err
    status, body = glass.http("POST", "/v1/tokens", {"role": "breakglass"})
    assert status == 403 and body["error"]["reason"] == "emergency_closed", body
    first = glass.cli("emergency", "open", "--role", "breakglass", "--reason", "INC-4711 restore the index", "--for", "30m", "--json")
    assert first.returncode == 0, first.err
    assert json.loads(first.out)["state"] == "pending"
    # The same admin cannot confirm it.
    again = glass.cli("emergency", "open", "--role", "breakglass", "--reason", "me again")
    assert again.returncode == 1 and "second, different admin" in again.err, again.err
    assert glass.cli("token", "--role", "breakglass").returncode == 3
    second = glass.cli("emergency", "open", "--role", "breakglass", "--reason", "confirmed by ops", "--json", user=ADMIN_GROUP_USER)
    assert second.returncode == 0, second.err
    opened = json.loads(second.out)
    assert opened["state"] == "open" and len(opened["opened_by"]) == 2
    status_text = glass.cli("status", check=0).out
    assert "EMERGENCY: role 'breakglass' is open" in status_text
    token = glass.cli("token", "--role", "breakglass", "--ttl", "2h", check=0).out.strip()
    live = [t for t in glass.tokens() if t["role"] == "breakglass"]
    assert len(live) == 1
    # The token does not outlive the emergency (30 minutes), whatever ttl was asked.

    left = (parse_time(live[0]["expires_at"]) - parse_time(opened["until"])).total_seconds()
    assert left <= 0.01, (live[0]["expires_at"], opened["until"])
    status, body = glass.http("POST", "/v1/credentials", {}, token=token)
    assert status == 200, body
    records = [r for r in glass.audit(limit=100) if r["role"] == "breakglass" and r["result"] == "allowed"
               and r["action"] in ("token.issue", "credential.issue")]
    assert records and all("emergency: INC-4711 restore the index" in r["reason"] for r in records), records
    # Closing ends it and its tokens.
    closed = glass.cli("emergency", "close", "--role", "breakglass")
    assert closed.returncode == 0 and "1 live token revoked" in closed.out, closed.out
    assert [t for t in glass.tokens() if t["role"] == "breakglass"] == []
    assert glass.cli("token", "--role", "breakglass").returncode == 3
    actions = [r["action"] for r in glass.audit(limit=100)]
    assert "emergency.open" in actions and "emergency.close" in actions
    glass.cli("audit", "verify", check=0)


def test_whoami_and_explain_say_an_emergency_role_is_usable_only_while_open(glass):
    """A new user's report: with the emergency closed, `run` was refused while `policy explain`
    said allow and `whoami` listed the role among those the caller may assume."""
    who = json.loads(glass.cli("whoami", "--json", check=0).out)
    assert "breakglass" not in who["roles"] and who["emergency_roles"] == ["breakglass"], who
    text = glass.cli("whoami", check=0).out
    assert "emergency:   breakglass (only while an emergency is open" in text, text
    closed = glass.cli("policy", "explain", "--role", "breakglass", "--uid", "0", "--json")
    answer = json.loads(closed.out)
    assert answer["allowed"] is False and any("is closed: refused until two different admins open it" in r for r in answer["reasons"]), answer
    assert not any(r.startswith("grant ") for r in answer["reasons"]), answer
    # Offline, the state is unknown: the policy's answer, with the condition said.
    offline = json.loads(glass.cli("policy", "explain", glass.policies, "--role", "breakglass", "--uid", "0", "--json", check=0).out)
    assert offline["allowed"] is True and any("only the daemon knows" in r for r in offline["reasons"]), offline
    glass.cli("emergency", "open", "--role", "breakglass", "--reason", "INC-1", "--for", "30m", check=0)
    glass.cli("emergency", "open", "--role", "breakglass", "--reason", "ok", user=ADMIN_GROUP_USER, check=0)
    opened = json.loads(glass.cli("policy", "explain", "--role", "breakglass", "--uid", "0", "--json", check=0).out)
    assert opened["allowed"] is True and any("is open until" in r and "(INC-1)" in r for r in opened["reasons"]), opened


def test_an_open_emergency_closes_on_time(glass):
    glass.cli("emergency", "open", "--role", "breakglass", "--reason", "short drill", "--for", "4s", check=0)
    glass.cli("emergency", "open", "--role", "breakglass", "--reason", "confirmed", user=ADMIN_GROUP_USER, check=0)
    assert glass.cli("token", "--role", "breakglass").returncode == 0
    import time
    time.sleep(4.5)
    refused = glass.cli("token", "--role", "breakglass")
    assert refused.returncode == 3 and "is closed" in refused.err, refused.err
    assert json.loads(glass.cli("emergency", "list", "--json", check=0).out) == {"emergencies": []}
    assert "emergencies" not in json.loads(glass.cli("status", "--json", check=0).out)


def test_emergency_open_is_admin_only_and_only_for_emergency_roles(glass, users):
    refused = glass.cli("emergency", "open", "--role", "breakglass", "--reason", "x", user=NONADMIN_USER)
    assert refused.returncode == 3 and "opening an emergency role needs an admin" in refused.err, refused.err
    missing = glass.cli("emergency", "open", "--role", "nosuchrole", "--reason", "x")
    assert missing.returncode == 1 and "emergency = true" in missing.err, missing.err
    too_long = glass.cli("emergency", "open", "--role", "breakglass", "--reason", "x", "--for", "2h")
    assert too_long.returncode == 1 and "up to 1h" in too_long.err, too_long.err
    assert json.loads(glass.cli("emergency", "list", "--json", check=0).out) == {"emergencies": []}


# Key rotation (SPEC §13)

def test_rotate_reencrypts_every_record_in_the_background_and_everything_still_opens(broker_factory):
    d = broker_factory({"job.toml": role_toml("job", ["uid:0"], {"secret": "s0", "type": "static", "env": {"S0": "v"}})})
    values = {f"s{i}": f"rotation-value-{i:04d}-abcdef" for i in range(250)}
    for name, value in values.items():
        d.cli("secret", "put", name, "--type", "static", input=json.dumps({"v": value}), check=0)
    d.cli("secret", "put", "s0", "--type", "static", input=json.dumps({"v": values["s0"]}), check=0)  # two versions of s0
    rotated = d.cli("vault", "rotate", "--json")
    assert rotated.returncode == 0, rotated.err
    answer = json.loads(rotated.out)
    assert answer["generation"] == 2 and answer["pending"] == 251, answer

    def pending():
        status = json.loads(d.cli("status", "--json", check=0).out)
        assert status["key_generation"] == 2
        return status["reencrypt_pending"] == 0
    from conftest import wait_for
    wait_for(pending, 30, "the background re-encryption")
    listed = json.loads(d.cli("secret", "list", "--json", check=0).out)["secrets"]
    assert len(listed) == 250 and all(s["generation"] == 2 and "error" not in s for s in listed), listed[:3]
    # A new write uses the new generation; credentials still open; the chain verifies across it.
    d.cli("secret", "put", "new", "--type", "static", input='{"v": "after-rotation-1"}', check=0)
    assert {s["name"]: s["generation"] for s in json.loads(d.cli("secret", "list", "--json", check=0).out)["secrets"]}["new"] == 2
    env = json.loads(d.cli("env", "--role", "job", "--format", "json", check=0).out)
    assert env["S0"] == values["s0"]
    d.cli("audit", "verify", check=0)
    reasons = [r["reason"] for r in d.audit(limit=600) if r["action"] == "vault.rotate"]
    assert any("key generation 2" in r for r in reasons) and any("re-encrypted 251 stored records" in r for r in reasons), reasons
    # After a restart the generation-2 key is loaded again at unseal.
    d.stop()
    d.start(extra=["--policies", d.policies])
    assert d.unseal().returncode == 0
    env = json.loads(d.cli("env", "--role", "job", "--format", "json", check=0).out)
    assert env["S0"] == values["s0"]
    # The database never holds a value in the clear.
    assert files_containing(values["s7"], d.written_files()) == []


def test_a_thousand_secrets_survive_two_rotations_and_the_old_generation_leaves_the_database(daemon):
    for i in range(1000):
        status, _ = daemon.http("PUT", f"/v1/secrets/k{i}", {"type": "static", "fields": {"v": f"thousand-{i}-abcdef"}})
        assert status == 200
    from conftest import wait_for
    for expected in (2, 3):
        assert json.loads(daemon.cli("vault", "rotate", "--json", check=0).out)["generation"] == expected
        wait_for(lambda: json.loads(daemon.cli("status", "--json", check=0).out).get("reencrypt_pending") == 0, 60,
                 f"re-encryption under generation {expected}")
    listed = json.loads(daemon.cli("secret", "list", "--json", check=0).out)["secrets"]
    assert len(listed) == 1000 and all(s["generation"] == 3 and "error" not in s for s in listed)
    def stored_generations():
        db = sqlite3.connect(daemon.db_path())
        try:
            return sorted(row[0] for row in db.execute("SELECT key FROM meta WHERE key LIKE 'vault.dek.%'"))
        finally:
            db.close()
    wait_for(lambda: stored_generations() == ["vault.dek.3"], 10, "generation 2's key to leave the database")
    daemon.cli("audit", "verify", check=0)
    assert any("retired key generation 2" in (r["reason"] or "") for r in daemon.audit(limit=50))


def test_a_rotation_interrupted_by_kill_9_resumes_at_unseal(broker_factory):
    d = broker_factory({"job.toml": role_toml("job", ["uid:0"], {"secret": "s1", "type": "static", "env": {"S1": "v"}})})
    for i in range(400):
        d.cli("secret", "put", f"s{i}", "--type", "static", input=json.dumps({"v": f"value-{i}-0123456789"}), check=0)
    d.cli("vault", "rotate", check=0)
    d.kill9()
    d.start()
    assert d.unseal().returncode == 0
    from conftest import wait_for
    wait_for(lambda: json.loads(d.cli("status", "--json", check=0).out).get("reencrypt_pending") == 0, 30, "the re-encryption to resume")
    listed = json.loads(d.cli("secret", "list", "--json", check=0).out)["secrets"]
    assert all(s["generation"] == 2 and "error" not in s for s in listed)
    rotated_again = json.loads(d.cli("vault", "rotate", "--json", check=0).out)
    assert rotated_again["generation"] == 3
    d.cli("audit", "verify", check=0)


# Shamir shares (SPEC §13)

from conftest import ML_USER  # noqa: E402


def test_a_vault_split_into_shares_unseals_with_k_different_admins(daemon_factory, users, workdir):
    """3-of-5, as three different admins: two shares leave it sealed, the third unseals; a
    typo is refused by the checksum; the same admin (or share) twice does not count twice."""
    from conftest import ADMIN_GROUP, ensure_user
    third_admin = "mlcred-t-ops2"
    ensure_user(third_admin, groups=[ADMIN_GROUP])
    d = daemon_factory().start()
    files = [os.path.join(d.root, f"share-{i}.txt") for i in range(5)]
    result = d.cli("vault", "init", "--shares", "5", "--threshold", "3", "--share-files", ",".join(files))
    assert result.returncode == 0, result.err
    assert "wrote 5 shares (3 unseal)" in result.out
    shares = []
    for path in files:
        assert os.stat(path).st_mode & 0o777 == 0o600
        shares.append(open(path).read().strip())
        assert shares[-1].startswith("mlcs1-3-")
    d.cli("secret", "put", "kept", "--type", "static", input='{"v": "shares-kept-value"}', check=0)
    d.cli("vault", "seal", check=0)
    typo = shares[0][:-3] + ("a" if shares[0][-3] != "a" else "b") + shares[0][-2:]
    bad = d.cli("vault", "unseal", "--share", input=typo)
    assert bad.returncode == 3 and "checksum" in bad.err, bad.err
    first = d.cli("vault", "unseal", "--share", input=shares[0])
    assert first.returncode == 0 and "1 of 3" in first.out, first.out + first.err
    twice = d.cli("vault", "unseal", "--share", input=shares[1])
    assert twice.returncode == 1 and "already brought a share" in twice.err, twice.err
    again = d.cli("vault", "unseal", "--share", input=shares[0], user=ADMIN_GROUP_USER)
    assert again.returncode == 1 and "share number" in again.err, again.err
    second = d.cli("vault", "unseal", "--share", input=shares[1], user=ADMIN_GROUP_USER)
    assert second.returncode == 0 and "2 of 3" in second.out, second.out + second.err
    status = json.loads(d.cli("status", "--json", check=0).out)
    assert status["sealed"] and status["unseal_progress"] == {"received": 2, "threshold": 3, "shares": 5, "sealed": True}
    assert "unseal shares: 2 of 3 brought (5 exist)" in d.cli("status", check=0).out
    third = d.cli("vault", "unseal", "--share", input=shares[4], user=third_admin)
    assert third.returncode == 0 and "vault unsealed" in third.out, third.out + third.err
    assert [s["name"] for s in json.loads(d.cli("secret", "list", "--json", check=0).out)["secrets"]] == ["kept"]
    submitted = [r for r in d.audit(limit=100) if r["action"] == "vault.share" and r["result"] == "allowed"]
    assert {r["principal"]["user"] for r in submitted} == {"root", ADMIN_GROUP_USER, third_admin}
    unseal = [r for r in d.audit(limit=100) if r["action"] == "vault.unseal"][-1]
    assert unseal["result"] == "allowed" and "shares of uids" in unseal["reason"]
    # No share appears in anything the daemon wrote.
    for share in shares:
        assert files_containing(share.split("-", 3)[3], d.written_files()) == []
    d.cli("audit", "verify", check=0)


def test_shares_reset_and_a_passphrase_is_refused_with_shares(daemon_factory, users):
    d = daemon_factory().start()
    refused = d.cli("vault", "init", "--shares", "3", "--threshold", "2", "--passphrase-stdin", input=PASSPHRASE)
    assert refused.returncode == 2, refused.err
    result = d.cli("vault", "init", "--shares", "2", "--threshold", "2", "--json")
    assert result.returncode == 0, result.err
    shares = json.loads(result.out)["shares"]
    assert len(shares) == 2
    d.cli("vault", "seal", check=0)
    d.cli("vault", "unseal", "--share", input=shares[0], check=0)
    d.cli("vault", "unseal", "--reset", check=0)
    assert "unseal_progress" not in json.loads(d.cli("status", "--json", check=0).out)
    d.cli("vault", "unseal", "--share", input=shares[0], check=0)
    done = d.cli("vault", "unseal", "--share", input=shares[1], user=ADMIN_GROUP_USER)
    assert done.returncode == 0 and "vault unsealed" in done.out, done.err


def test_a_share_reset_is_refused_where_there_are_no_shares(daemon_factory):
    """`unseal --reset` answered 200 `initialized: true` on a vault without shares, and on one not
    initialized at all (hostile-input review): it is refused as a share would be."""
    d = daemon_factory().start()
    fresh = d.cli("vault", "unseal", "--reset")
    assert fresh.returncode == 4 and "not initialized" in fresh.err, fresh.err  # SPEC: 4 sealed or uninitialized
    d.init()
    d.cli("vault", "seal", check=0)
    plain = d.cli("vault", "unseal", "--reset")
    assert plain.returncode == 1 and "not unsealed with shares" in plain.err, plain.err
    assert d.unseal(PASSPHRASE).returncode == 0


def test_rekey_moves_a_vault_from_a_passphrase_to_shares_and_back(daemon):
    old = passphrase_file(daemon, "old.txt", PASSPHRASE)
    files = [os.path.join(daemon.root, f"rk-{i}.txt") for i in range(3)]
    moved = daemon.cli("vault", "rekey", "--passphrase-file", old, "--shares", "3", "--threshold", "2",
                       "--new-share-files", ",".join(files), "--json")
    assert moved.returncode == 0, moved.err
    assert json.loads(moved.out)["unlocks"] == ["shares"]
    daemon.cli("vault", "seal", check=0)
    assert daemon.unseal(PASSPHRASE).returncode == 1, "the passphrase no longer unseals"
    # Back to a passphrase, proving the current unlock with two shares.
    back = daemon.cli("vault", "rekey", "--share-files", ",".join(files[:2]), "--new-passphrase-stdin", input=NEW_PASSPHRASE)
    assert back.returncode == 0, back.err
    assert "unseals with passphrase" in back.out, back.out
    assert daemon.unseal(NEW_PASSPHRASE).returncode == 0
    daemon.cli("audit", "verify", check=0)


# A wrong passphrase's back-off is the guesser's own (hostile-input review)

def test_an_admin_guessing_passphrases_cannot_stop_another_from_sealing_and_gets_one_guess_per_back_off(glass):
    """An admin looping wrong unseals held the vault through each back-off (1, 2, 4 ... 30 s):
    every other admin's seal and unseal answered 409 vault_busy. Parallel guesses of one uid
    still get one try per back-off."""
    import threading
    answers = []

    def guess():
        started = time.monotonic()
        status, body = glass.http("POST", "/v1/vault/unseal", {"passphrase": "wrong-guess-123"}, user=ADMIN_GROUP_USER)
        answers.append((status, body["error"]["reason"], time.monotonic() - started))

    guessers = [threading.Thread(target=guess) for _ in range(3)]
    for g in guessers:
        g.start()
    time.sleep(0.5)
    started = time.monotonic()
    sealed = glass.cli("vault", "seal")
    assert sealed.returncode == 0, sealed.err
    assert time.monotonic() - started < 3, "seal waited for another admin's back-off"
    assert glass.unseal().returncode == 0
    for g in guessers:
        g.join(timeout=60)
    assert sorted(reason for _, reason, _ in answers) == ["wrong_passphrase"] * 3, answers
    assert sorted(took for _, _, took in answers)[-1] >= 6.5, "1 s, 2 s and 4 s back-offs, one guess after each: " + str(answers)
    denials = [r for r in glass.audit(limit=50) if r["action"] == "vault.unseal" and r["result"] == "denied"]
    assert len(denials) == 3, denials
    times = sorted(parse_time(r["time"]).timestamp() for r in denials)
    assert times[1] - times[0] >= 0.9 and times[2] - times[1] >= 1.9, times


def test_a_wrong_rekey_passphrase_backs_off_without_holding_the_vault(glass):
    """Rekey checks the current unlock as unseal does, and shares its back-off: it too held the
    vault through the delay."""
    import threading
    answers = []

    def wrong_rekey():
        answers.append(glass.http("POST", "/v1/vault/rekey", {"passphrase": "wrong-guess-123", "new_passphrase": "another-one-456"},
                                  user=ADMIN_GROUP_USER))

    for _ in range(2):  # the second waits out the first's 1 s back-off, then fails: a 2 s back-off
        thread = threading.Thread(target=wrong_rekey)
        thread.start()
        thread.join(timeout=30)
    guesser = threading.Thread(target=wrong_rekey)
    guesser.start()
    time.sleep(0.5)
    started = time.monotonic()
    sealed = glass.cli("vault", "seal")
    assert sealed.returncode == 0 and time.monotonic() - started < 3, sealed.err
    assert glass.unseal().returncode == 0
    guesser.join(timeout=30)
    assert [body["error"]["reason"] for _, body in answers] == ["wrong_passphrase"] * 3, answers
