"""Shared fixtures and helpers for the end-to-end tests: real mlcredd and mlcred binaries, real
sockets, real SQLite files, real users (created with useradd, entered with setpriv). Every helper
more than one test module needs lives here, once."""
import glob
import grp
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from datetime import datetime

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SOURCE_BIN_DIR = os.environ.get("MLCRED_BIN_DIR", os.path.join(REPO, ".build", "debug"))
NONADMIN_USER = "mlcred-t-alice"
ADMIN_GROUP_USER = "mlcred-t-ops"
ADMIN_GROUP = "mlcred-t-admins"
ML_USER = "mlcred-t-mlbob"
ML_GROUP = "mlcred-t-ml"
PASSPHRASE = "e2e-Passphrase-7f3a9c"  # a value to search for: it must never appear anywhere
MASK = "<mlcred:masked>"
RUN_GROUP = "mlcred-run"  # the daemon's default --run-group

# The end of a Python job that reports to the test: the dict `report` written whole to argv[1], then
# renamed into place (the test reads a file, not the job's stdout, which run masks).
WRITE_REPORT = """
tmp = sys.argv[1] + ".tmp"
json.dump(report, open(tmp, "w"))
os.rename(tmp, sys.argv[1])
"""
# A job that reports its environment.
DUMP_ENV = "import json, os, sys\nreport = dict(os.environ)" + WRITE_REPORT


def is_root():
    return os.geteuid() == 0


# Waiting, files, times

def wait_for(predicate, timeout, what, interval=0.05):
    """Polls `predicate` until it returns something truthy and returns that; fails naming `what`
    after `timeout` s. For conditions that have no readiness signal of their own."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def read_complete(path):
    """The content of a file a job wrote and renamed into place (so never half written), or None."""
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def read_text(path):
    """A log file's content ('' if it does not exist yet)."""
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def read_json(path):
    with open(path) as f:
        return json.load(f)


def files_containing(needle, paths):
    """The paths among `paths` whose bytes contain `needle`."""
    hits = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                if needle.encode() in f.read():
                    hits.append(path)
        except (FileNotFoundError, IsADirectoryError):
            pass
    return hits


def parse_time(text):
    """An RFC 3339 time as the daemon writes it (`Z` or an offset) as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def end_process(proc):
    """Kills `proc` if it still runs and reaps it (clean-up after a test that failed half way)."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()


# Users and the CLI

def as_user(user, groups="--init-groups"):
    """The setpriv prefix that runs a command as `user` (with its groups, or `--clear-groups`)."""
    return ["setpriv", f"--reuid={user}", f"--regid={user}", groups, "--"]


def cli_env(socket_path=None, extra=None):
    """The bare environment the CLI runs with in these tests."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}
    if socket_path:
        env["MLCRED_SOCKET"] = socket_path
    return {**env, **(extra or {})}


def run_mlcred(bins, *args, socket_path=None, user=None, input=None, env_extra=None, cwd=None, timeout=120):
    """Runs the mlcred in `bins`, optionally as `user`; the result carries decoded .out and .err."""
    cmd = [os.path.join(bins, "mlcred"), *args]
    if user:
        cmd = as_user(user) + cmd
    result = subprocess.run(cmd, input=input.encode() if isinstance(input, str) else input, capture_output=True,
                            env=cli_env(socket_path, env_extra), cwd=cwd, timeout=timeout)
    result.out = result.stdout.decode(errors="replace")
    result.err = result.stderr.decode(errors="replace")
    return result


def run_job_report(d, scratch, role, *job, **cli_kwargs):
    """Runs `mlcred run --role ROLE -- JOB... REPORT` against daemon `d` for a job that writes a
    JSON report to its last argument (see WRITE_REPORT), a fresh file in `scratch`; asserts run
    exited 0 and returns (run's result, the report)."""
    handle, report = tempfile.mkstemp(prefix="report-", suffix=".json", dir=scratch)
    os.close(handle)
    os.unlink(report)  # a name the job creates: it may run as another user
    result = d.cli("run", "--role", role, "--", *job, report, **cli_kwargs)
    assert result.returncode == 0, result.err
    return result, read_json(report)


def one_error_line(stderr):
    """The single `mlcred: error:` line a refusal prints; fails if there is anything else."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlcred: error: "), f"expected one 'mlcred: error:' line, got {stderr!r}"
    return lines[0]


# HTTP over the socket

def exchange(socket_path, raw, timeout=30):
    """Sends `raw` on a fresh connection to `socket_path` and returns every byte until the daemon closes."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(socket_path)
        try:
            if raw:
                sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon answered (a refusal) and closed before reading: read what it sent
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    finally:
        sock.close()
    return response


def parse_response(response):
    if not response:
        return None, None
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, None


def wait_serving(proc, log_path, probe, timeout=15, what="mlcredd to answer"):
    """Waits until `probe()` is true (the readiness signal: the socket answers), failing at once
    with the log if `proc` exits first, or with the log after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"mlcredd exited with {proc.returncode}: {read_text(log_path)}")
        if probe():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}: {read_text(log_path)}")
        time.sleep(0.02)


# Roles

def toml_value(value):
    """`value` (str, bool, int, list, dict) as TOML: a JSON string is a TOML basic string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, str)):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def role_toml(name, principals, *grants, **settings):
    """The text of a role file: its name, principals and top-level `settings` (ttl, max_ttl, phi,
    environments ...), then one [[grant]] table per dict in `grants`."""
    lines = [f"name = {toml_value(name)}", f"principals = {toml_value(principals)}"]
    lines += [f"{key} = {toml_value(value)}" for key, value in settings.items()]
    for grant in grants:
        lines += ["", "[[grant]]"] + [f"{key} = {toml_value(value)}" for key, value in grant.items()]
    return "\n".join(lines) + "\n"


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


# Session fixtures

@pytest.fixture(scope="session")
def workdir():
    """A world-traversable scratch directory (pytest's own tmp dirs are 0700, closed to test users)."""
    path = tempfile.mkdtemp(prefix="mlcred-e2e-", dir="/tmp")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def scratch(workdir):
    """A fresh directory for one test's files, writable by the users the tests create."""
    path = tempfile.mkdtemp(prefix="scratch-", dir=workdir)
    os.chmod(path, 0o777)
    return path


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
    if is_root():
        # Installed as scripts/install does: mlcred setgid to the run group, the daemon's sign
        # that a caller is `mlcred run` (phi tokens and credentials go only to it, SPEC §3).
        ensure_group(RUN_GROUP)
        shutil.chown(os.path.join(target, "mlcred"), group=RUN_GROUP)
        os.chmod(os.path.join(target, "mlcred"), 0o2755)
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


# The daemon

class Daemon:
    """One mlcredd process with its own state directory and socket."""

    def __init__(self, bins, root, environment="dev", phi=False, extra=()):
        self.bins = bins
        self.mlcred = os.path.join(bins, "mlcred")
        self.root = root
        os.makedirs(root, exist_ok=True)
        os.chmod(root, 0o755)
        self.state_dir = os.path.join(root, "state")
        self.socket = os.path.join(root, "mlcred.sock")
        self.log_path = os.path.join(root, "daemon.log")
        self.environment = environment
        self.phi = phi
        self.extra = list(extra)
        self.policies = None  # the policy directory, when made by broker_factory
        self.proc = None
        self.outputs = []  # every CLI stdout/stderr, for leak checks

    def command(self, environment=None, phi=None, extra=None):
        cmd = [os.path.join(self.bins, "mlcredd"), "--state-dir", self.state_dir, "--socket", self.socket,
               "--socket-mode", "0666", "--environment", environment or self.environment,
               "--admin-group", ADMIN_GROUP]
        if not is_root():
            # Without root the tests cannot install mlcred setgid: the caller's own group stands in.
            cmd += ["--run-group", grp.getgrgid(os.getgid()).gr_name]
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
        def answers():
            try:
                return self.http("GET", "/v1/status", timeout=2)[0] == 200
            except OSError:
                return False
        wait_serving(self.proc, self.log_path, answers, timeout=timeout, what="mlcredd to become ready")

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
        return read_text(self.log_path)

    def written_files(self):
        """Every file the daemon wrote: its state directory's and its log (for leak checks)."""
        return glob.glob(os.path.join(self.state_dir, "*")) + [self.log_path]

    def env(self, extra=None):
        """The environment the CLI gets to reach this daemon."""
        return cli_env(self.socket, extra)

    def cli(self, *args, input=None, user=None, check=None, timeout=120, env_extra=None, cwd=None):
        """Runs mlcred against this daemon, optionally as `user` (setpriv, with its groups)."""
        result = run_mlcred(self.bins, *args, socket_path=self.socket, user=user, input=input, env_extra=env_extra,
                            cwd=cwd, timeout=timeout)
        self.outputs.append(result.out + result.err)
        if check is not None:
            assert result.returncode == check, f"mlcred {' '.join(args)} exited {result.returncode}, expected {check}: {result.err}"
        return result

    def popen(self, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE):
        """Starts mlcred against this daemon without waiting for it."""
        return subprocess.Popen([self.mlcred, *args], env=self.env(), stdout=stdout, stderr=stderr)

    def popen_run(self, role, *job):
        """Starts `mlcred run --role ROLE -- JOB...` without waiting for it, its output piped."""
        return self.popen("run", "--role", role, "--", *job)

    def init(self, passphrase=PASSPHRASE):
        self.cli("vault", "init", "--passphrase-stdin", input=passphrase, check=0)

    def unseal(self, passphrase=PASSPHRASE):
        return self.cli("vault", "unseal", "--passphrase-stdin", input=passphrase)

    def tokens(self):
        """The live tokens (`token list --json`)."""
        return json.loads(self.cli("token", "list", "--json", check=0).out)

    def leases(self, all=True):
        """`lease list --json`, with `--all` unless all=False."""
        return json.loads(self.cli("lease", "list", *(["--all"] if all else []), "--json", check=0).out)

    def audit(self, limit=None):
        """`audit show --json`, the last `limit` records (the CLI's default without one)."""
        return json.loads(self.cli("audit", "show", "--json", *(["--limit", str(limit)] if limit else []), check=0).out)

    def http(self, method, path, body=None, timeout=30, raw=None, token=None, user=None):
        """One HTTP/1.1 request over the socket; returns (status, parsed JSON or None). With
        `user`, curl sends it as that user (setpriv, with its groups)."""
        if user:
            assert raw is None, "raw requests are sent as the test's own uid"
            cmd = as_user(user) + ["curl", "-s", "-i", "--unix-socket", self.socket, "-X", method]
            if token:
                cmd += ["-H", f"Authorization: Bearer {token}"]
            if body is not None:
                cmd += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
            answer = subprocess.run(cmd + ["http://mlcred" + path], capture_output=True, timeout=timeout)
            return parse_response(answer.stdout)
        if raw is None:
            data = b"" if body is None else json.dumps(body).encode()
            auth = f"Authorization: Bearer {token}\r\n" if token else ""
            raw = (f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}"
                   f"Content-Length: {len(data)}\r\n\r\n").encode() + data
        return parse_response(exchange(self.socket, raw, timeout=timeout))

    def db_path(self):
        return os.path.join(self.state_dir, "mlcred.db")


def assert_still_serving(d):
    """The daemon answers an unsealed status and lists leases (after a peer or input misbehaved)."""
    assert json.loads(d.cli("status", "--json", check=0).out)["sealed"] is False
    d.cli("lease", "list", "--json", check=0)


def assert_unreachable_peer_is_a_prompt_clear_error(d, role="unreachable"):
    """`mlcred env` for a role whose secret points at 127.0.0.1:1 fails within 12 s with one error
    line naming that address, and the daemon keeps serving."""
    started = time.monotonic()
    refused = d.cli("env", "--role", role)
    elapsed = time.monotonic() - started
    assert refused.returncode == 1, refused.err
    line = one_error_line(refused.err)
    assert "127.0.0.1:1" in line, line
    assert elapsed < 12, f"took {elapsed:.1f} s"
    assert_still_serving(d)


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


@pytest.fixture
def broker_factory(daemon_factory):
    """Makes running daemons that load the role files {relative path: text} written for them
    (their directory is `d.policies`), vault initialized and unsealed. `extra` goes to this start
    only; other keywords to the Daemon."""
    def make(roles, extra=(), **kwargs):
        d = daemon_factory(**kwargs)
        d.policies = write_policies(d.root, roles)
        d.start(extra=["--policies", d.policies, *extra])
        d.init()
        return d
    return make


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


def drop_job_roles(postgres, prefix="mlc_"):
    """Drops every role a job was given (named with `prefix`) that a failed test left behind."""
    for name in postgres.roles(prefix):
        postgres.drop_role(name)


# Long steps: progress on the terminal

PROGRESS_EVERY = 30  # seconds between two progress lines of a long step: a sign of life, not a flood
# A static release build from scratch took about 25 minutes on a loaded 2-core machine (issue 16);
# this bounds a stuck one.
RELEASE_BUILD_TIMEOUT = 1800
RELEASE_PRODUCTS = ("mlcredd", "mlcred")  # what scripts/install builds, with the same flags


def kept_log_path(workdir, name):
    """Where a long step's log goes: $MLCRED_TEST_LOG_DIR (scripts/test's run directory, kept when
    the run fails) when set, else the session's scratch directory."""
    return os.path.join(os.environ.get("MLCRED_TEST_LOG_DIR") or workdir, name)


class Progress:
    """Writes lines straight to the terminal while a test runs, past pytest's output capture
    (what `capsys.disabled()` does, for session fixtures too), so a step of many minutes shows
    that it is alive without `-s`."""

    def __init__(self, config):
        self.capture = config.pluginmanager.getplugin("capturemanager")
        self.reporter = config.pluginmanager.getplugin("terminalreporter")

    def say(self, line):
        with self.capture.global_and_fixture_disabled():
            if self.reporter is not None:
                self.reporter.write_line(line)
                self.reporter.flush()
            else:
                print(line, flush=True)


def run_with_progress(cmd, progress, log_path, timeout, env=None, cwd=REPO, every_line=False):
    """Runs `cmd`, all its output into `log_path`. Shows the first line, a progress line (SwiftPM's
    `[i/n] Compiling ...`) at most every PROGRESS_EVERY s, every error line and the last line; with
    `every_line`, every line (for a command that paces its own output, as scripts/fuzz does).
    Returns (exit status, the last 40 lines); a run past `timeout` s is killed (status -9)."""
    started = time.monotonic()
    last_said = started
    tail = []
    shown = False  # whether the last line read was shown
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                                env=env, cwd=cwd)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            for line in proc.stdout:
                log.write(line)
                line = line.rstrip()
                tail = (tail + [line])[-40:]
                now = time.monotonic()
                shown = every_line or (len(tail) == 1 and not line.startswith("warning: ")) or " error:" in line or line.startswith("error:") or bool(
                    re.match(r"\[\d+/\d+\]", line) and now - last_said >= PROGRESS_EVERY)
                if shown:
                    progress.say(f"    {now - started:5.0f} s  {line}")
                    last_said = now
            status = proc.wait()
        finally:
            killer.cancel()
            end_process(proc)
    if tail and not shown:
        progress.say(f"    {time.monotonic() - started:5.0f} s  {tail[-1]}")
    return status, tail


@pytest.fixture(scope="session")
def release_build(request, workdir):
    """The static release build (`swift build -c release --static-swift-stdlib`, as scripts/install
    makes it), made once per run with its progress shown; its bin directory. The first build takes
    many minutes; scripts/install then finds it up to date."""
    progress = Progress(request.config)
    env = dict(os.environ, PATH="/opt/swift/usr/bin:" + os.environ.get("PATH", "/usr/bin:/bin"))
    deadline = time.monotonic() + RELEASE_BUILD_TIMEOUT  # for both products together
    for product in RELEASE_PRODUCTS:
        cmd = ["swift", "build", "-c", "release", "--static-swift-stdlib", "--product", product]
        log_path = kept_log_path(workdir, f"release-build-{product}.log")
        progress.say(f"== release build of {product} ({' '.join(cmd)}): a first build takes many minutes; "
                     f"a line every {PROGRESS_EVERY} s, the whole log in {log_path}")
        status, tail = run_with_progress(cmd, progress, log_path, max(1, deadline - time.monotonic()), env=env)
        assert status == 0, f"{' '.join(cmd)} exited {status}:\n" + "\n".join(tail)
    bin_dir = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=REPO, env=env,
                             capture_output=True, text=True, check=True).stdout.strip()
    return bin_dir
