"""Vault operations (issue 15, SPEC §13): rekey and backup/restore."""
import json
import os
import sqlite3
import subprocess

import pytest

from conftest import PASSPHRASE, NONADMIN_USER, files_containing, one_error_line

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
