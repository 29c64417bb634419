"""Start-up rules: recorded environment and phi, socket ownership, hardening."""
import json
import os
import sqlite3
import subprocess
import time

from conftest import PASSPHRASE, as_user, exchange, wait_serving


def test_restart_with_another_environment_or_phi_refuses_to_start(daemon_factory):
    d = daemon_factory(environment="staging").start()
    d.init()
    d.stop()
    for kwargs, expected in (({"environment": "prod"}, "environment 'staging'"), ({"phi": True}, "phi off")):
        d.start(wait=False, **kwargs)
        assert d.proc.wait(timeout=15) == 1
        log = d.read_log()
        assert "mlcredd: error:" in log and expected in log and "--environment staging" in log
    d.start()  # the original settings still work
    assert json.loads(d.cli("status", "--json", check=0).out)["environment"] == "staging"


def test_settings_edited_in_the_database_make_unseal_fail(daemon_factory):
    d = daemon_factory(environment="staging").start()
    d.init()
    d.stop()
    db = sqlite3.connect(d.db_path())
    with db:
        db.execute("""UPDATE meta SET value = '{"environment":"prod","phi":false}' WHERE key = 'vault.settings'""")
    db.close()
    d.start(environment="prod")
    result = d.unseal()
    assert result.returncode == 3, "settings are bound to the wrapped root key"
    assert json.loads(d.cli("status", "--json", check=0).out)["sealed"] is True


def test_a_second_daemon_on_the_same_socket_refuses_and_a_stale_socket_is_replaced(daemon_factory, bins):
    d = daemon_factory().start()
    second = subprocess.run(d.command() + ["--state-dir", d.state_dir + "-2"], capture_output=True, timeout=15,
                            env=dict(os.environ, MLCRED_UNSAFE_TEST_KDF="1"))
    assert second.returncode == 1 and b"already listening" in second.stderr
    d.cli("status", check=0)
    d.kill9()
    assert os.path.exists(d.socket), "a killed daemon leaves its socket file"
    d.start()
    d.cli("status", check=0)


def test_daemon_has_no_core_limit(daemon):
    with open(f"/proc/{daemon.proc.pid}/limits") as f:
        core = [line for line in f if line.startswith("Max core file size")][0].split()
    assert core[4:6] == ["0", "0"], core


def test_dev_mode_works_unprivileged_and_the_daemon_is_not_dumpable(users, workdir, bins):
    """An ordinary user runs `mlcredd --dev`; even that user cannot read the daemon's memory
    maps or environment (PR_SET_DUMPABLE 0 hands /proc/PID to root)."""
    user = users["nonadmin"]
    home = os.path.join(workdir, "home-" + user)
    os.makedirs(home, exist_ok=True)
    subprocess.run(["chown", f"{user}:{user}", home], check=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": home, "MLCRED_UNSAFE_TEST_KDF": "1"}
    log_path = os.path.join(home, "daemon.log")
    log = open(log_path, "wb")
    proc = subprocess.Popen(as_user(user) + [os.path.join(bins, "mlcredd"), "--dev"], stdout=log, stderr=log, cwd=home, env=env)
    try:
        socket_path = os.path.join(home, ".local/share/mlcred/mlcred.sock")
        cli = as_user(user) + [os.path.join(bins, "mlcred")]
        wait_serving(proc, log_path, lambda: subprocess.run(cli + ["status"], env=env, capture_output=True).returncode == 0,
                     timeout=30)
        assert os.path.exists(socket_path), "the --dev socket lives in the state dir when XDG_RUNTIME_DIR is unset"
        init = subprocess.run(cli + ["vault", "init", "--passphrase-stdin"], input=PASSPHRASE.encode(), env=env, capture_output=True)
        assert init.returncode == 0, init.stderr  # the daemon's own uid is an admin
        assert os.stat(os.path.join(home, ".local/share/mlcred")).st_mode & 0o777 == 0o700
        peek = subprocess.run(as_user(user) + ["cat", f"/proc/{proc.pid}/environ"], capture_output=True)
        assert peek.returncode != 0 and b"Permission denied" in peek.stderr
        assert os.stat(f"/proc/{proc.pid}/environ").st_uid == 0
    finally:
        proc.terminate()
        assert proc.wait(timeout=15) == 0


def test_sigterm_exits_zero_and_removes_the_socket(daemon):
    assert daemon.stop() == 0
    assert not os.path.exists(daemon.socket)


def test_a_daemon_without_roles_says_so_at_start_and_denies(daemon_factory, workdir):
    # Default --policies is /etc/mlcred/policies; point it at a directory that does not exist.
    missing = os.path.join(workdir, "no-such-policies")
    d = daemon_factory(extra=["--policies", missing]).start()
    d.init()
    log = d.read_log()
    assert "the policy directory does not exist" in log and missing in log, log
    denied = d.cli("token", "--role", "anything")
    assert denied.returncode == 3, denied.err
    os.makedirs(missing)
    empty = daemon_factory(extra=["--policies", missing]).start()
    assert "the policy directory holds no role" in empty.read_log()


def code_rss_kib(pid):
    """Resident kB of the executable's own code (its r-xp mappings, from /proc/PID/smaps)."""
    exe = os.readlink(f"/proc/{pid}/exe")
    total, inside = 0, False
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5 and ":" not in fields[0]:
                inside = fields[1] == "r-xp" and len(fields) >= 6 and fields[5] == exe
            elif inside and fields[0] == "Rss:":
                total += int(fields[1])
    return total


def test_an_idle_daemon_gives_back_its_start_up_code_and_serves_as_before(daemon, bins):
    """IdleTrim: 5 s without a request, the daemon drops its code mappings (clean pages, mapped
    again from the page cache on use) and returns free heap pages; nothing it holds is lost."""
    daemon.cli("secret", "generate", "signer", "--type", "jwt-signer", check=0)
    pid = daemon.proc.pid
    busy = code_rss_kib(pid)
    assert busy > 1024, busy
    # Watched through /proc, not the API: a request would start the idle period again.
    deadline = time.monotonic() + 20
    while code_rss_kib(pid) > busy * 3 // 4 and time.monotonic() < deadline:
        time.sleep(0.2)
    trimmed = code_rss_kib(pid)
    # What the idle sweeper touches comes back at once (a debug build touches megabytes).
    assert trimmed <= busy * 3 // 4, (busy, trimmed)
    answer = exchange(daemon.socket, b"GET /v1/metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").decode()
    assert answer.startswith("HTTP/1.1 200") and "mlcred_idle_trims_total 1\n" in answer, answer
    # Everything still works: the vault's keys, the store, signing.
    listed = daemon.cli("secret", "list", check=0).out.splitlines()
    assert listed[1].split()[:2] == ["signer", "jwt-signer"] and listed[1].split()[-1] == "ok", listed
    assert daemon.cli("audit", "verify", check=0).returncode == 0
    assert daemon.proc.poll() is None
