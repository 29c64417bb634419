"""The daemon as a service: systemd units, socket activation, sd_notify, signals, install."""
import grp
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import (ADMIN_GROUP, ML_GROUP, PASSPHRASE, RELEASE_BUILD_TIMEOUT, REPO, Progress, ensure_user, exchange,
                      kept_log_path, read_text, run_mlcred, run_with_progress, wait_serving, write_policies)


def staged_units(workdir, bins):
    target = os.path.join(workdir, "units")
    os.makedirs(target, exist_ok=True)
    with open(os.path.join(REPO, "systemd/mlcredd.service")) as f:
        text = f.read().replace("/usr/local/bin/mlcredd", os.path.join(bins, "mlcredd"))
    with open(os.path.join(target, "mlcredd.service"), "w") as f:
        f.write(text)
    shutil.copy(os.path.join(REPO, "systemd/mlcredd.socket"), target)
    return target


def test_units_verify_and_score_2_or_lower(workdir, bins):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed (scripts/bootstrap installs it)")
    units = staged_units(workdir, bins)
    verify = subprocess.run(["systemd-analyze", "verify", os.path.join(units, "mlcredd.service"), os.path.join(units, "mlcredd.socket")],
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr
    security = subprocess.run(["systemd-analyze", "security", "--offline=true", os.path.join(units, "mlcredd.service")],
                              capture_output=True, text=True)
    score = float(re.search(r"Overall exposure level for mlcredd.service: ([0-9.]+)", security.stdout).group(1))
    assert score <= 2.0, security.stdout
    with open(os.path.join(REPO, "systemd/mlcredd.service")) as f:
        active = [line for line in f if not line.lstrip().startswith("#")]
    for forbidden in ("PrivateUsers=", "ProtectProc=invisible", "ProcSubset=pid"):
        assert not any(forbidden in line for line in active), forbidden
    socket_unit = open(os.path.join(REPO, "systemd/mlcredd.socket")).read()
    assert "SocketMode=0660" in socket_unit and "ListenStream=/run/mlcred/mlcred.sock" in socket_unit


class Activated:
    """A daemon started the way systemd starts it: listening socket on fd 3, LISTEN_PID/FDS, NOTIFY_SOCKET."""

    def __init__(self, bins, root, policies, group, watchdog_usec=None):
        self.root = root
        self.socket_path = os.path.join(root, "activated.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.socket_path)
        self.listener.listen(64)
        os.chown(self.socket_path, 0, grp.getgrnam(group).gr_gid)
        os.chmod(self.socket_path, 0o660)
        self.notify_path = os.path.join(root, "notify.sock")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.notify.settimeout(15)
        env = dict(os.environ, MLCRED_UNSAFE_TEST_KDF="1", NOTIFY_SOCKET=self.notify_path, LISTEN_FDS="1")
        if watchdog_usec:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        listener_fd = self.listener.fileno()
        self.log_path = os.path.join(root, "activated.log")
        log = open(self.log_path, "wb")
        command = ['sh', '-c', 'export LISTEN_PID=$$; exec "$@"', 'sh', os.path.join(bins, "mlcredd"),
                   "--state-dir", os.path.join(root, "state"), "--policies", policies,
                   "--socket", "/nonexistent/not-used.sock", "--admin-group", ADMIN_GROUP]
        self.proc = subprocess.Popen(command, env=env, stdout=log, stderr=log, pass_fds=(listener_fd, 3),
                                     preexec_fn=lambda: os.dup2(listener_fd, 3))

    def messages_until(self, wanted, timeout=15):
        seen = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.notify.settimeout(max(0.1, deadline - time.time()))
            try:
                message = self.notify.recv(4096).decode()
            except socket.timeout:
                break
            seen.append(message)
            if wanted in message.split("\n"):
                return seen
        raise AssertionError(f"never got {wanted!r}; got {seen!r}; log: {read_text(self.log_path)}")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.listener.close()
        self.notify.close()


def cli(bins, socket_path, *args, user=None, input=None):
    return run_mlcred(bins, *args, socket_path=socket_path, user=user, input=input)


def test_socket_activation_notify_reload_and_draining_stop(workdir, bins, users):
    root = os.path.join(workdir, "activated")
    os.makedirs(root, exist_ok=True)
    os.chmod(root, 0o755)
    policies = write_policies(root, {"r.toml": 'name = "r"\nprincipals = ["uid:0"]\n'})
    daemon = Activated(bins, root, policies, ML_GROUP, watchdog_usec=400_000)
    try:
        daemon.messages_until("READY=1")
        daemon.messages_until("WATCHDOG=1", timeout=3)
        assert cli(bins, daemon.socket_path, "status").returncode == 0
        # The socket's file mode and group decide who may connect, before the daemon sees anyone.
        assert cli(bins, daemon.socket_path, "status", user=users["ml"]).returncode == 0
        denied = cli(bins, daemon.socket_path, "status", user=users["nonadmin"])
        assert denied.returncode == 5 and b"Permission denied" in denied.stderr
        assert cli(bins, daemon.socket_path, "vault", "init", "--passphrase-stdin", input=PASSPHRASE).returncode == 0

        daemon.proc.send_signal(signal.SIGHUP)
        daemon.messages_until("RELOADING=1")
        daemon.messages_until("READY=1")
        audit = json.loads(cli(bins, daemon.socket_path, "audit", "show", "--json").stdout)
        assert any(r["action"] == "policy.reload" and r["result"] == "allowed" for r in audit)

        # A request in flight when SIGTERM arrives is still answered; then the daemon exits 0.
        assert cli(bins, daemon.socket_path, "vault", "seal").returncode == 0
        answer = {}

        def slow_unseal():
            body = json.dumps({"passphrase": "wrong-passphrase"}).encode()
            answer["raw"] = exchange(daemon.socket_path, b"POST /v1/vault/unseal HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)

        worker = threading.Thread(target=slow_unseal)
        worker.start()
        time.sleep(0.5)  # the unseal is now waiting out its 1 s back-off inside the daemon (mid-way: room either side)
        daemon.proc.send_signal(signal.SIGTERM)
        daemon.messages_until("STOPPING=1")
        worker.join(timeout=15)
        assert answer["raw"].startswith(b"HTTP/1.1 403"), answer
        assert daemon.proc.wait(timeout=15) == 0
        assert os.path.exists(daemon.socket_path), "a socket systemd passed is left to systemd"
    finally:
        daemon.close()


@pytest.mark.release_build
def test_install_yields_a_daemon_an_admin_group_member_can_init_and_unseal(request, workdir, users, release_build):
    destdir = os.path.join(workdir, "install-root")
    # The release build is the session's (made once, with progress): scripts/install finds it up to date.
    status, output = run_with_progress([os.path.join(REPO, "scripts/install"), "--destdir", destdir], Progress(request.config),
                                       kept_log_path(workdir, "install.log"), RELEASE_BUILD_TIMEOUT)
    assert status == 0, "\n".join(output)
    daemon_bin = os.path.join(destdir, "usr/local/bin/mlcredd")
    cli_bin = os.path.join(destdir, "usr/local/bin/mlcred")
    bindir = os.path.dirname(cli_bin)
    for binary in (daemon_bin, cli_bin):
        assert os.stat(binary).st_mode & 0o777 == 0o755
        linked = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
        assert "libswiftCore" not in linked, f"{binary} needs a Swift runtime:\n{linked}"
    for path in ("etc/systemd/system/mlcredd.service", "etc/systemd/system/mlcredd.socket", "usr/lib/sysusers.d/mlcred.conf",
                 "usr/lib/tmpfiles.d/mlcred.conf", "etc/mlcred/policies/demo.toml", "etc/mlcred/mlcredd.env"):
        assert os.path.exists(os.path.join(destdir, path)), path
    assert subprocess.run([cli_bin, "policy", "validate", os.path.join(destdir, "etc/mlcred/policies")]).returncode == 0

    # The service's user and groups, as systemd-sysusers makes them on a real host.
    subprocess.run(["systemd-sysusers", os.path.join(destdir, "usr/lib/sysusers.d/mlcred.conf")], check=True)
    operator = "mlcred-t-operator"
    ensure_user(operator, groups=["mlcred-admin", "mlcred"])

    service = pwd.getpwnam("mlcred")
    run_dir = os.path.join(workdir, "install-run")
    state_dir = os.path.join(workdir, "install-state")
    for directory in (run_dir, state_dir):
        os.makedirs(directory, exist_ok=True)
        os.chown(directory, service.pw_uid, service.pw_gid)
    os.chmod(run_dir, 0o755)
    os.chmod(state_dir, 0o700)
    socket_path = os.path.join(run_dir, "mlcred.sock")
    log_path = os.path.join(workdir, "install-daemon.log")
    log = open(log_path, "wb")
    proc = subprocess.Popen(["setpriv", "--reuid=mlcred", "--regid=mlcred", "--init-groups", "--", daemon_bin,
                             "--state-dir", state_dir, "--socket", socket_path,
                             "--policies", os.path.join(destdir, "etc/mlcred/policies")],
                            env={"PATH": "/usr/bin:/bin", "MLCRED_UNSAFE_TEST_KDF": "1"}, stdout=log, stderr=log)
    try:
        wait_serving(proc, log_path, lambda: cli(bindir, socket_path, "status", user=operator).returncode == 0, timeout=30)
        me = json.loads(cli(bindir, socket_path, "whoami", "--json", user=operator).stdout)
        assert me["admin"] is True, "a member of mlcred-admin is an admin"
        assert cli(bindir, socket_path, "vault", "init", "--passphrase-stdin", user=operator, input=PASSPHRASE).returncode == 0
        assert cli(bindir, socket_path, "vault", "seal", user=operator).returncode == 0
        assert cli(bindir, socket_path, "vault", "unseal", "--passphrase-stdin", user=operator, input=PASSPHRASE).returncode == 0
        assert cli(bindir, socket_path, "vault", "seal", user=users["nonadmin"]).returncode == 5, "not in the mlcred group: no connection"
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    subprocess.run([os.path.join(REPO, "scripts/uninstall"), "--destdir", destdir], check=True, capture_output=True)
    assert not os.path.exists(daemon_bin) and os.path.exists(os.path.join(destdir, "etc/mlcred/policies/demo.toml"))
    assert os.path.exists(os.path.join(state_dir, "mlcred.db")), "uninstall keeps the state"
