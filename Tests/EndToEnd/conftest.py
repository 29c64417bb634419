"""Shared fixtures for the end-to-end tests: real mlcredd and mlcred binaries, real sockets,
real SQLite files, real users (created with useradd, entered with setpriv)."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

SOURCE_BIN_DIR = os.environ.get("MLCRED_BIN_DIR", os.path.join(os.path.dirname(__file__), "..", "..", ".build", "debug"))
NONADMIN_USER = "mlcred-t-alice"
ADMIN_GROUP_USER = "mlcred-t-ops"
ADMIN_GROUP = "mlcred-t-admins"
ML_USER = "mlcred-t-mlbob"
ML_GROUP = "mlcred-t-ml"
PASSPHRASE = "e2e-Passphrase-7f3a9c"  # a value to search for: it must never appear anywhere


def is_root():
    return os.geteuid() == 0


@pytest.fixture(scope="session")
def workdir():
    """A world-traversable scratch directory (pytest's own tmp dirs are 0700, closed to test users)."""
    path = tempfile.mkdtemp(prefix="mlcred-e2e-", dir="/tmp")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def bins(workdir):
    """The binaries copied where users created by the tests can run them."""
    target = os.path.join(workdir, "bin")
    os.makedirs(target)
    for name in ("mlcred", "mlcredd"):
        src = os.path.join(SOURCE_BIN_DIR, name)
        if not os.path.exists(src):
            pytest.fail(f"{src} is missing: run 'swift build' first (scripts/test does)")
        shutil.copy2(src, os.path.join(target, name))
        os.chmod(os.path.join(target, name), 0o755)
    os.chmod(target, 0o755)
    return target


def ensure_group(name):
    if subprocess.run(["getent", "group", name], capture_output=True).returncode != 0:
        subprocess.run(["groupadd", "--system", name], check=True)


def ensure_user(name, groups=()):
    if subprocess.run(["id", name], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
    for group in groups:
        subprocess.run(["usermod", "-a", "-G", group, name], check=True)


@pytest.fixture(scope="session")
def users():
    """Test users: a plain one and a member of the admin group. Needs root; skips otherwise."""
    if not is_root():
        pytest.skip("creating users needs root (CI runs as root)")
    ensure_group(ADMIN_GROUP)
    ensure_group(ML_GROUP)
    ensure_user(NONADMIN_USER)
    ensure_user(ADMIN_GROUP_USER, groups=[ADMIN_GROUP])
    ensure_user(ML_USER, groups=[ML_GROUP])
    return {"nonadmin": NONADMIN_USER, "admin_group_member": ADMIN_GROUP_USER, "admin_group": ADMIN_GROUP,
            "ml": ML_USER, "ml_group": ML_GROUP}


def write_policies(root, files):
    """Writes role files {relative path: text} into a fresh policy directory under `root`."""
    directory = os.path.join(root, "policies")
    for relative, text in files.items():
        path = os.path.join(directory, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    for base, dirs, names in os.walk(directory):
        os.chmod(base, 0o755)
        for name in names:
            os.chmod(os.path.join(base, name), 0o644)
    return directory


class Daemon:
    """One mlcredd process with its own state directory and socket."""

    def __init__(self, bins, root, environment="dev", phi=False, extra=()):
        self.bins = bins
        self.root = root
        os.makedirs(root, exist_ok=True)
        os.chmod(root, 0o755)
        self.state_dir = os.path.join(root, "state")
        self.socket = os.path.join(root, "mlcred.sock")
        self.log_path = os.path.join(root, "daemon.log")
        self.environment = environment
        self.phi = phi
        self.extra = list(extra)
        self.proc = None
        self.outputs = []  # every CLI stdout/stderr, for leak checks

    def command(self, environment=None, phi=None, extra=None):
        cmd = [os.path.join(self.bins, "mlcredd"), "--state-dir", self.state_dir, "--socket", self.socket,
               "--socket-mode", "0666", "--environment", environment or self.environment,
               "--admin-group", ADMIN_GROUP]
        if self.phi if phi is None else phi:
            cmd.append("--phi")
        return cmd + (self.extra if extra is None else list(extra))

    def start(self, wait=True, **kwargs):
        env = dict(os.environ, MLCRED_UNSAFE_TEST_KDF="1")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command(**kwargs), stdout=self.log, stderr=self.log, env=env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=15):
        """Readiness = the socket answers /v1/status (no fixed sleeps)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"mlcredd exited with {self.proc.returncode}: {self.read_log()}")
            try:
                status, _ = self.http("GET", "/v1/status", timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError("mlcredd did not become ready: " + self.read_log())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def cli(self, *args, input=None, user=None, check=None, timeout=120, env_extra=None):
        """Runs mlcred against this daemon, optionally as `user` (setpriv, with its groups)."""
        cmd = [os.path.join(self.bins, "mlcred"), *args]
        env = {"PATH": "/usr/bin:/bin", "MLCRED_SOCKET": self.socket, "HOME": "/nonexistent", **(env_extra or {})}
        if user:
            cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"] + cmd
        result = subprocess.run(cmd, input=input.encode() if isinstance(input, str) else input,
                                capture_output=True, env=env, timeout=timeout)
        result.out = result.stdout.decode(errors="replace")
        result.err = result.stderr.decode(errors="replace")
        self.outputs.append(result.out + result.err)
        if check is not None:
            assert result.returncode == check, f"mlcred {' '.join(args)} exited {result.returncode}, expected {check}: {result.err}"
        return result

    def init(self, passphrase=PASSPHRASE):
        self.cli("vault", "init", "--passphrase-stdin", input=passphrase, check=0)

    def unseal(self, passphrase=PASSPHRASE):
        return self.cli("vault", "unseal", "--passphrase-stdin", input=passphrase)

    def http(self, method, path, body=None, timeout=30, raw=None, token=None, user=None):
        """One HTTP/1.1 request over the socket; returns (status, parsed JSON or None). With
        `user`, curl sends it as that user (setpriv, with its groups)."""
        if user:
            assert raw is None, "raw requests are sent as the test's own uid"
            cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--",
                   "curl", "-s", "-i", "--unix-socket", self.socket, "-X", method]
            if token:
                cmd += ["-H", f"Authorization: Bearer {token}"]
            if body is not None:
                cmd += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
            answer = subprocess.run(cmd + ["http://mlcred" + path], capture_output=True, timeout=timeout)
            return parse_response(answer.stdout)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(self.socket)
            if raw is None:
                data = b"" if body is None else json.dumps(body).encode()
                auth = f"Authorization: Bearer {token}\r\n" if token else ""
                raw = (f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}"
                       f"Content-Length: {len(data)}\r\n\r\n").encode() + data
            sock.sendall(raw)
            response = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                response += chunk
        finally:
            sock.close()
        return parse_response(response)

    def db_path(self):
        return os.path.join(self.state_dir, "mlcred.db")


def parse_response(response):
    if not response:
        return None, None
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, None


@pytest.fixture
def daemon_factory(bins, workdir, request):
    """Makes daemons in fresh directories; stops them all at the end of the test."""
    made = []

    def make(**kwargs):
        root = tempfile.mkdtemp(prefix="d-", dir=workdir)
        daemon = Daemon(bins, root, **kwargs)
        made.append(daemon)
        return daemon

    yield make
    for daemon in made:
        daemon.stop()


@pytest.fixture
def daemon(daemon_factory):
    """A running daemon, vault initialized and unsealed."""
    d = daemon_factory().start()
    d.init()
    return d


# Real peers for the dynamic credentials (issue 4): see peers.py.

@pytest.fixture(scope="session")
def moto(workdir):
    """moto_server on loopback playing AWS IAM and STS, signature checking on after its set-up;
    a peers.Moto (endpoint_url, region, account_id, access_key_id, secret_access_key, role_arn,
    recording(), calls(action), reset_recording(), client(service, ...))."""
    from peers import Moto
    directory = os.path.join(workdir, "moto")
    os.makedirs(directory)
    server = Moto.start(directory)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL cluster on loopback run by an unprivileged user (initdb once per session);
    a peers.Postgres (host, port, dbname, broker_user, broker_password, sql(), roles(prefix),
    psql_tcp(), secret_fields()). Needs root (useradd, setpriv); skips otherwise."""
    if not is_root():
        pytest.skip("running PostgreSQL as its own system user needs root (CI runs as root)")
    from peers import Postgres
    server = Postgres.start()
    yield server
    server.stop()
