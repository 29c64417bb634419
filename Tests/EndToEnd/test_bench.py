"""The benchmark driver's modes (scripts/bench, docs/performance.md), briefly, against a debug
daemon: each runs, counts its operations, and reports no error. Figures are not checked here
(performance is measured by the benchmark, not by timed tests); what is checked is that every
floor and load really did its work, so a figure printed by `scripts/bench` means what it says."""
import os
import re
import sqlite3
import subprocess

from conftest import SOURCE_BIN_DIR, role_toml

BENCH = os.path.join(SOURCE_BIN_DIR, "mlcred-bench")


def bench(*args, timeout=120):
    result = subprocess.run([BENCH, *args], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, result.stderr


def first_rate(text):
    rate = re.search(r"\s(\d+)/s\s", text)
    assert rate, text
    return int(rate.group(1))


def test_load_modes_count_operations_and_the_writer_account(broker_factory):
    d = broker_factory({"bench.toml": role_toml("bench", [f"uid:{os.getuid()}"],
                                                {"secret": "signer", "type": "jwt", "audience": "bench"})})
    d.cli("secret", "generate", "signer", "--type", "jwt-signer", check=0)

    out, err = bench("--load", d.socket, "4", "1")
    assert "errors 0" in out and first_rate(out) > 0, out + err
    # The writer's share of the wall time and its group commits, read from /v1/metrics.
    writer = re.search(r"store writer: busy (\d+) % of the time; ([\d.]+) writes per group commit", out)
    assert writer, out
    assert float(writer.group(2)) >= 1.0

    # The same load from one polling thread driving all four connections.
    out, err = bench("--load-polled", d.socket, "4", "1", "1")
    assert "errors 0" in out and first_rate(out) > 0, out + err

    # Every operation was a token and a lease, each with its audit record.
    tokens = len(d.tokens())
    assert tokens > 0
    assert len([lease for lease in d.leases() if lease["type"] == "jwt"]) == tokens


def test_both_floors_commit_what_they_claim(scratch):
    out, err = bench("--floor", scratch, "4", "1")
    assert "errors 0" in out and first_rate(out) > 0, out + err

    out, err = bench("--floor-shape", scratch, "4", "1")
    assert "errors 0" in out and "FAILED" not in out and not err, out + err
    assert first_rate(out) > 0
    # Its commits really hold the daemon's rows: one token and one lease per operation, each
    # with its audit record, in the daemon's own schema.
    database = sqlite3.connect(os.path.join(scratch, "shaped-floor.db"))
    tokens, = database.execute("SELECT COUNT(*) FROM tokens").fetchone()
    leases, = database.execute("SELECT COUNT(*) FROM leases").fetchone()
    audits, = database.execute("SELECT COUNT(*) FROM audit").fetchone()
    assert tokens > 0 and leases == tokens and audits == tokens + leases
    # Its connection commits as the daemon's does.
    assert database.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
