"""Records edited behind the daemon's back are detected and named; the daemon keeps serving."""
import json
import sqlite3

import pytest


def put(d, name, value, phi=False):
    args = ["secret", "put", name, "--type", "static"] + (["--phi"] if phi else [])
    d.cli(*args, input=json.dumps({"token": value}), check=0)


def edit(d, sql, *params):
    table = "secrets" if " secrets " in f" {sql} " else "audit"
    db = sqlite3.connect(d.db_path(), timeout=10)
    with db:
        before = db.execute(f"SELECT * FROM {table}").fetchall()
        changed = db.execute(sql, params).rowcount
        after = db.execute(f"SELECT * FROM {table}").fetchall()
    db.close()
    assert changed >= 1, sql
    assert before != after, f"the edit changed nothing: {sql}"


def listing(d):
    result = d.cli("secret", "list", "--json")
    return result, {s["name"]: s for s in json.loads(result.out)["secrets"]}


# What is edited behind the daemon's back, and the secret whose record it breaks.
EDITS = {
    # byte 31 is set to a value it does not already have (a fixed X'00' left one record in 256 intact)
    "ciphertext": ("UPDATE secrets SET sealed = CAST(substr(sealed, 1, 30) "
                   "|| CASE WHEN substr(sealed, 31, 1) = X'00' THEN X'01' ELSE X'00' END "
                   "|| substr(sealed, 32) AS BLOB) WHERE name = 'alpha'", "alpha"),
    "name": ("UPDATE secrets SET name = 'gamma' WHERE name = 'alpha'", "gamma"),
    "version": ("UPDATE secrets SET version = 7 WHERE name = 'alpha'", "alpha"),
    "phi": ("UPDATE secrets SET phi = 1 WHERE name = 'alpha'", "alpha"),
    # a ciphertext moved from one record to another
    "swap": ("UPDATE secrets SET sealed = (SELECT sealed FROM secrets WHERE name = 'beta') WHERE name = 'alpha'", "alpha"),
}


@pytest.mark.parametrize("what", list(EDITS))
def test_edited_secret_record_fails_with_an_error_naming_it(daemon, what):
    put(daemon, "alpha", "value-alpha-111")
    put(daemon, "beta", "value-beta-222")
    sql, broken = EDITS[what]
    edit(daemon, sql)
    result, secrets = listing(daemon)
    assert result.returncode == 1
    assert f"secret '{broken}'" in secrets[broken]["error"] and "failed to decrypt" in secrets[broken]["error"]
    assert f"secret '{broken}'" in result.err and result.err.startswith("mlcred: error: ")
    assert "error" not in secrets["beta"], "an intact record is unaffected"
    assert "value-" not in result.out + result.err
    # The daemon keeps serving, and keeps working for new writes.
    assert daemon.proc.poll() is None
    daemon.cli("status", check=0)
    put(daemon, "delta", "value-delta-333")
    assert "error" not in listing(daemon)[1]["delta"]


def put_four(d):
    for i in range(4):
        put(d, f"s{i}", f"v{i}")


def test_editing_an_audit_row_breaks_verify_at_that_record(daemon):
    put_four(daemon)
    daemon.cli("audit", "verify", check=0)
    edit(daemon, "UPDATE audit SET reason = 'nothing to see' WHERE seq = 3")
    result = daemon.cli("audit", "verify")
    assert result.returncode == 1
    assert "record 3" in result.err and "edited" in result.err
    verdict = json.loads(daemon.cli("audit", "verify", "--json").out)
    assert verdict["ok"] is False and verdict["first_broken"]["seq"] == 3 and verdict["head"]["seq"] == 2


def test_deleting_an_audit_row_breaks_verify_at_the_gap(daemon):
    put_four(daemon)
    edit(daemon, "DELETE FROM audit WHERE seq = 2")
    result = daemon.cli("audit", "verify")
    assert result.returncode == 1 and "record 2" in result.err and "missing" in result.err


def test_renumbering_after_a_deletion_is_still_detected(daemon):
    put_four(daemon)
    edit(daemon, "DELETE FROM audit WHERE seq = 2")
    edit(daemon, "UPDATE audit SET seq = seq - 1 WHERE seq > 2")
    result = daemon.cli("audit", "verify")
    assert result.returncode == 1 and "record 2" in result.err


def test_verify_prints_the_head_to_compare_with_a_copy_kept_elsewhere(daemon):
    put(daemon, "a", "b")
    ok = daemon.cli("audit", "verify", check=0)
    records = daemon.audit()
    assert f"head seq {records[-1]['seq']} mac {records[-1]['mac']}" in ok.out


def test_audit_verify_needs_the_vault_unsealed_but_show_works_sealed(daemon):
    daemon.cli("vault", "seal", check=0)
    assert daemon.cli("audit", "verify").returncode == 4
    shown = daemon.audit()
    assert shown[-1]["action"] == "vault.seal"


def test_control_characters_a_caller_sends_are_shown_not_obeyed_by_audit_show(daemon, users):
    # Threat: a user with no role writes an escape sequence and a forged record into the audit
    # log through a denied role name; an admin's terminal must show it, not obey it.
    forged = "x\x1b[2K\r2 2026-01-01T00:00:00.000Z allowed vault.unseal root(0) pid=1\n\u202etxet"
    before = len(daemon.audit(limit=1000))
    status, body = daemon.http("POST", "/v1/tokens", {"role": forged}, user=users["ml"])
    # First line of defence (issue 13 item 1): such a name is outside the grammar, refused
    # before anything is audited.
    assert status == 400 and body["error"]["reason"] == "invalid_name", body
    assert len(daemon.audit(limit=1000)) == before
    # Second: whatever text reaches the log anyway (an edited row here) is shown, not obeyed.
    seq = daemon.audit(limit=1)[-1]["seq"] + 1
    edit(daemon, "INSERT INTO audit(seq, time, principal, action, role, result, reason) "
                 "SELECT ?, time, principal, 'token.issue', ?, 'denied', ? FROM audit WHERE seq = 1", seq, forged, forged)
    shown = daemon.cli("audit", "show", check=0).out
    assert "\x1b" not in shown and "\r" not in shown and "\u202e" not in shown, repr(shown)
    assert not any(line.startswith("2 2026-01-01") for line in shown.splitlines()), "no forged line"
    assert "\\x1b[2K\\x0d2 2026-01-01" in shown and "\\x0a\\u{202e}txet" in shown, repr(shown)
    # The JSON form keeps the exact text for tools.
    records = json.loads(daemon.cli("audit", "show", "--json", check=0).out)
    assert any(record.get("role") == forged for record in records)