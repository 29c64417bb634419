"""Real peers for the dynamic-credential tests, started on loopback by the tests themselves:

- moto_server (from the test virtualenv) playing AWS IAM and STS, with signature checking ON
  once the set-up calls are done, and its request recorder on, so a test can read the form
  parameters that reached STS;
- a throwaway PostgreSQL cluster, run as an unprivileged system user (PostgreSQL refuses root),
  with a `warehouse` database, a CREATEROLE broker role and two schemas (ml, phi).

Both are made once per pytest session (conftest.py's `moto` and `postgres` fixtures)."""
import base64
import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

VENV = os.environ.get("MLCRED_VENV", "/opt/mlcred-venv")

MOTO_ACCOUNT_ID = "123456789012"  # moto's default account
MOTO_REGION = "us-east-1"
BROKER_IAM_USER = "mlcred-broker"
ASSUMED_ROLE = "ml-train"
EXTERNAL_ID_ROLE = "mlcred-t-partner"
EXTERNAL_ID = "mlcred-t-ext-7c1e"
ALLOW_ALL = json.dumps({"Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})

PG_OS_USER = "mlcred-t-pg"
PG_SUPERUSER = "postgres"
PG_DB = "warehouse"
PG_BROKER = "mlcred_broker"


def free_port():
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout, what, proc=None, log=None, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}: {_tail(log)}")
        if predicate():
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}: {_tail(log)}")
        time.sleep(interval)


def _tail(path, size=4000):
    if not path:
        return ""
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")[-size:]
    except FileNotFoundError:
        return ""


# --------------------------------------------------------------------------------------------
# moto

class Moto:
    """A running moto_server. Signature checking is on once `start` returns.

    Attributes: endpoint_url, region, account_id, user_name, user_arn, access_key_id,
    secret_access_key (the broker's long-lived IAM key), role_name, role_arn (trusts the broker
    user, allows everything), external_id_role_arn + external_id (its trust policy requires
    sts:ExternalId = external_id)."""

    # The set-up calls made without signatures; INITIAL_NO_AUTH_ACTION_COUNT is exactly this.
    SETUP_CALLS = 7

    def __init__(self, directory):
        self.directory = directory
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.region = MOTO_REGION
        self.account_id = MOTO_ACCOUNT_ID
        self.user_name = BROKER_IAM_USER
        self.user_arn = f"arn:aws:iam::{MOTO_ACCOUNT_ID}:user/{BROKER_IAM_USER}"
        self.role_name = ASSUMED_ROLE
        self.role_arn = f"arn:aws:iam::{MOTO_ACCOUNT_ID}:role/{ASSUMED_ROLE}"
        self.external_id_role_arn = f"arn:aws:iam::{MOTO_ACCOUNT_ID}:role/{EXTERNAL_ID_ROLE}"
        self.external_id = EXTERNAL_ID
        self.access_key_id = None
        self.secret_access_key = None
        self.recording_path = os.path.join(directory, "recording.jsonl")
        self.log_path = os.path.join(directory, "moto.log")
        self.proc = None

    @classmethod
    def start(cls, directory):
        moto = cls(directory)
        try:
            moto._launch()
            moto._set_up()
            moto._check_signatures_are_enforced()
        except BaseException:
            moto.stop()
            raise
        return moto

    def _launch(self):
        binary = os.path.join(VENV, "bin", "moto_server")
        if not os.access(binary, os.X_OK):
            raise RuntimeError(f"{binary} is missing: run scripts/bootstrap")
        env = {"PATH": "/usr/bin:/bin", "HOME": self.directory,
               "INITIAL_NO_AUTH_ACTION_COUNT": str(self.SETUP_CALLS),
               "MOTO_ENABLE_RECORDING": "True", "MOTO_RECORDER_FILEPATH": self.recording_path}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(self.port)], cwd=self.directory,
                                         env=env, stdout=log, stderr=log, start_new_session=True)
        # Readiness: /moto-api/ (the dashboard) is no AWS action and does not count against
        # INITIAL_NO_AUTH_ACTION_COUNT; a probe on / would.
        _wait(lambda: self._api_get("/moto-api/") is not None, 30, "moto_server to answer /moto-api/",
              proc=self.proc, log=self.log_path)

    def _api_get(self, path):
        try:
            with urllib.request.urlopen(self.endpoint_url + path, timeout=2) as response:
                return response.read()
        except (urllib.error.URLError, ConnectionError, OSError):
            return None

    def _api_post(self, path, data=b""):
        request = urllib.request.Request(self.endpoint_url + path, data=data, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read()

    def client(self, service, access_key_id=None, secret_access_key=None, session_token=None):
        """A boto3 client at this moto, with the broker's key unless told otherwise; one attempt,
        no retries (a retried set-up call would be counted twice)."""
        import boto3
        from botocore.config import Config
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=self.region,
                            aws_access_key_id=access_key_id or self.access_key_id or "AKIAMOTOSETUP0000000",
                            aws_secret_access_key=secret_access_key or self.secret_access_key or "setup",
                            aws_session_token=session_token,
                            config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))

    def _set_up(self):
        iam = self.client("iam")
        iam.create_user(UserName=self.user_name)                                   # 1
        key = iam.create_access_key(UserName=self.user_name)["AccessKey"]          # 2
        iam.put_user_policy(UserName=self.user_name, PolicyName="broker-all",       # 3
                            PolicyDocument=ALLOW_ALL)
        # moto matches an AWS principal by equality (or membership in a list): the account root
        # alone would not match the user's ARN, so both are listed.
        principals = [f"arn:aws:iam::{self.account_id}:root", self.user_arn]
        trust = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": principals}, "Action": "sts:AssumeRole"}]}
        iam.create_role(RoleName=self.role_name, AssumeRolePolicyDocument=json.dumps(trust))  # 4
        iam.put_role_policy(RoleName=self.role_name, PolicyName="train-all", PolicyDocument=ALLOW_ALL)  # 5
        trust_ext = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": principals}, "Action": "sts:AssumeRole",
             "Condition": {"StringEquals": {"sts:ExternalId": self.external_id}}}]}
        iam.create_role(RoleName=EXTERNAL_ID_ROLE, AssumeRolePolicyDocument=json.dumps(trust_ext))  # 6
        iam.put_role_policy(RoleName=EXTERNAL_ID_ROLE, PolicyName="partner-all", PolicyDocument=ALLOW_ALL)  # 7
        self.access_key_id = key["AccessKeyId"]
        self.secret_access_key = key["SecretAccessKey"]

    def _check_signatures_are_enforced(self):
        """After exactly SETUP_CALLS unsigned calls, a wrong secret must be refused (were the count
        too high, this call would be let through)."""
        from botocore.exceptions import ClientError
        sts = self.client("sts", secret_access_key="wrong" + self.secret_access_key)
        try:
            sts.get_caller_identity()
        except ClientError as e:
            if e.response["Error"]["Code"] != "SignatureDoesNotMatch":
                raise
        else:
            raise RuntimeError("moto_server accepted a wrong signature after set-up: "
                               "INITIAL_NO_AUTH_ACTION_COUNT does not match the set-up calls")

    # The request recorder (MOTO_ENABLE_RECORDING): every request moto_server receives, as one
    # JSON line {headers, method, url, body, body_encoded} in MOTO_RECORDER_FILEPATH.

    def reset_recording(self):
        """Forgets what was recorded so far (POST /moto-api/recorder/reset-recording)."""
        self._api_post("/moto-api/recorder/reset-recording")

    def recording(self):
        """Every request recorded since the last reset, as dicts {method, url, headers, params},
        `params` being the query string and form body merged ({name: first value})."""
        raw = self._api_get("/moto-api/recorder/download-recording")
        if raw is None:
            raise RuntimeError("moto_server did not answer /moto-api/recorder/download-recording")
        requests = []
        for line in raw.decode().splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            body = entry.get("body") or ""
            if entry.get("body_encoded"):
                body = base64.b64decode(body).decode(errors="replace")
            params = {}
            query = urllib.parse.urlsplit(entry.get("url") or "").query
            for source in (query, body):
                try:
                    for name, values in urllib.parse.parse_qs(source, keep_blank_values=True).items():
                        params.setdefault(name, values[0])
                except ValueError:
                    pass
            requests.append({"method": entry.get("method"), "url": entry.get("url"),
                             "headers": entry.get("headers") or {}, "body": body, "params": params})
        return requests

    def calls(self, action=None):
        """The recorded AWS API calls (those with an Action parameter), optionally of one action."""
        return [r for r in self.recording() if "Action" in r["params"]
                and (action is None or r["params"]["Action"] == action)]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


# --------------------------------------------------------------------------------------------
# PostgreSQL

def postgres_bin_dir():
    """/usr/lib/postgresql/<newest major>/bin."""
    candidates = [d for d in glob.glob("/usr/lib/postgresql/*/bin") if os.path.exists(os.path.join(d, "postgres"))]
    if not candidates:
        raise RuntimeError("no PostgreSQL server under /usr/lib/postgresql: run scripts/bootstrap")
    return max(candidates, key=lambda d: int(d.split("/")[-2]))


def ensure_system_user(name):
    if subprocess.run(["id", name], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)


def run_as_pg_user(os_user, cwd, *cmd, **kwargs):
    """Runs `cmd` as the cluster's system user `os_user` (setpriv) in `cwd` with a bare environment;
    returns the CompletedProcess, output captured (PostgreSQL's programs refuse root)."""
    return subprocess.run(["setpriv", f"--reuid={os_user}", f"--regid={os_user}", "--init-groups", "--", *cmd],
                          cwd=cwd, env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}, capture_output=True, **kwargs)


SETUP_SQL = """
CREATE ROLE {broker} LOGIN CREATEROLE PASSWORD '{password}';
CREATE SCHEMA ml;
CREATE TABLE ml.features (id int PRIMARY KEY, name text NOT NULL, value double precision NOT NULL);
INSERT INTO ml.features VALUES (1, 'age_bucket', 0.25), (2, 'visits_90d', 3), (3, 'bmi_z', -0.4);
CREATE SCHEMA phi;
CREATE TABLE phi.patients (id int PRIMARY KEY, mrn text NOT NULL, name text NOT NULL);
INSERT INTO phi.patients VALUES (1, 'MRN-0001', 'Ada Example'), (2, 'MRN-0002', 'Bo Example');
REVOKE ALL ON SCHEMA ml, phi FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA ml FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA phi FROM PUBLIC;
-- What the broker may hand on: it needs the privilege WITH GRANT OPTION to grant it to the
-- roles it creates (it owns neither the schema nor the table).
GRANT USAGE ON SCHEMA ml TO {broker} WITH GRANT OPTION;
GRANT SELECT ON ml.features TO {broker} WITH GRANT OPTION;
"""


class Postgres:
    """A running PostgreSQL cluster on 127.0.0.1:port (scram-sha-256 over TCP), with the database
    `warehouse`, the broker role `mlcred_broker` (LOGIN CREATEROLE, password broker_password),
    ml.features (3 rows, the broker may grant SELECT on it) and phi.patients (2 rows, nobody
    but the superuser may read it).

    Attributes: host, port, dbname, broker_user, broker_password, superuser, socket_dir, bin_dir."""

    def __init__(self, base):
        self.base = base
        self.data_dir = os.path.join(base, "data")
        self.socket_dir = os.path.join(base, "sock")
        self.log_path = os.path.join(base, "postgres.log")
        self.bin_dir = postgres_bin_dir()
        self.host = "127.0.0.1"
        self.port = free_port()
        self.dbname = PG_DB
        self.superuser = PG_SUPERUSER
        self.broker_user = PG_BROKER
        self.broker_password = secrets.token_urlsafe(24)
        self.os_user = PG_OS_USER
        self.started = False

    @classmethod
    def start(cls):
        ensure_system_user(PG_OS_USER)
        # Closed to everyone but the cluster's user (and root): the socket there is trusted.
        base = tempfile.mkdtemp(prefix="mlcred-pg-", dir="/var/tmp")
        pg = cls(base)
        try:
            pg._init_and_start()
            pg._set_up()
        except BaseException:
            pg.stop()
            raise
        return pg

    def _as_pg_user(self, *cmd, **kwargs):
        return run_as_pg_user(self.os_user, self.base, *cmd, **kwargs)

    def _init_and_start(self):
        os.makedirs(self.socket_dir)
        shutil.chown(self.base, self.os_user, self.os_user)
        shutil.chown(self.socket_dir, self.os_user, self.os_user)
        os.chmod(self.base, 0o700)
        os.chmod(self.socket_dir, 0o700)
        result = self._as_pg_user(os.path.join(self.bin_dir, "initdb"), "-D", self.data_dir, "-U", self.superuser,
                                  "--auth=trust", "--encoding=UTF8", "--no-sync")
        if result.returncode != 0:
            raise RuntimeError("initdb failed: " + result.stderr.decode(errors="replace"))
        with open(os.path.join(self.data_dir, "pg_hba.conf"), "w") as f:
            f.write("# TYPE  DATABASE  USER  ADDRESS       METHOD\n"
                    "local   all       all                 trust\n"          # the socket dir is 0700
                    "host    all       all   127.0.0.1/32  scram-sha-256\n")
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.socket_dir} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100 "
                   "-c password_encryption=scram-sha-256 -c log_connections=off")
        # pg_ctl -w returns once the server accepts connections: that is the readiness signal.
        result = self._as_pg_user(os.path.join(self.bin_dir, "pg_ctl"), "start", "-w", "-t", "60", "-D",
                                  self.data_dir, "-l", self.log_path, "-o", options)
        if result.returncode != 0:
            raise RuntimeError("pg_ctl start failed: " + result.stderr.decode(errors="replace") + _tail(self.log_path))
        self.started = True

    def _set_up(self):
        self.sql(f"CREATE DATABASE {self.dbname}", db="postgres")
        self.sql(SETUP_SQL.format(broker=self.broker_user, password=self.broker_password))

    def psql_super(self, query, db=None):
        """psql as the superuser through the Unix socket; returns the CompletedProcess."""
        cmd = [os.path.join(self.bin_dir, "psql"), "-X", "-q", "-A", "-t", "-F", "\x1f", "-v", "ON_ERROR_STOP=1",
               "-h", self.socket_dir, "-p", str(self.port), "-U", self.superuser, "-d", db or self.dbname,
               "-c", query]
        return subprocess.run(cmd, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "HOME": self.base},
                              timeout=60)

    def sql(self, query, db=None):
        """Runs `query` as the superuser; returns the rows as tuples of strings. Raises on error."""
        result = self.psql_super(query, db=db)
        if result.returncode != 0:
            raise RuntimeError(f"psql failed ({result.returncode}) on {query!r}: {result.stderr}")
        return [tuple(line.split("\x1f")) for line in result.stdout.splitlines() if line]

    def psql_tcp(self, user, password, query, db=None, extra_env=None):
        """psql as `user` with `password` over TCP (scram-sha-256); returns the CompletedProcess."""
        cmd = [os.path.join(self.bin_dir, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", query]
        env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "PGHOST": self.host, "PGPORT": str(self.port),
               "PGDATABASE": db or self.dbname, "PGUSER": user, "PGPASSWORD": password, "PGSSLMODE": "disable",
               "PGCONNECT_TIMEOUT": "10", **(extra_env or {})}
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)

    def roles(self, prefix=""):
        """Names of the roles in pg_roles that start with `prefix`."""
        return [row[0] for row in self.sql("SELECT rolname FROM pg_roles ORDER BY rolname", db="postgres")
                if row[0].startswith(prefix)]

    def drop_role(self, name):
        """Removes role `name` whatever it holds (clean-up after a failed test). As the superuser,
        DROP OWNED BY leaves the privileges the broker granted, so those go first as the broker."""
        ident = quote_ident(name)
        if not self.sql("SELECT 1 FROM pg_roles WHERE rolname = " + quote_literal(name), db="postgres"):
            return
        self.sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = {quote_literal(name)}")
        self.sql(f"SET ROLE {quote_ident(self.broker_user)}; REVOKE ALL ON ALL TABLES IN SCHEMA ml FROM {ident}; "
                 f"REVOKE ALL ON SCHEMA ml FROM {ident}; RESET ROLE; DROP OWNED BY {ident}; DROP ROLE {ident}")

    def role_valid_until(self, name):
        """pg_roles.rolvaliduntil of role `name` as epoch seconds (None: no limit or no such role)."""
        rows = self.sql("SELECT extract(epoch FROM rolvaliduntil) FROM pg_roles WHERE rolname = "
                        + quote_literal(name), db="postgres")
        return float(rows[0][0]) if rows and rows[0][0] else None

    def secret_fields(self):
        """The broker's connection, as the JSON fields of an mlcred `postgres` secret."""
        return {"host": self.host, "port": self.port, "dbname": self.dbname, "user": self.broker_user,
                "password": self.broker_password, "sslmode": "disable"}

    def stop(self):
        if self.started:
            self._as_pg_user(os.path.join(self.bin_dir, "pg_ctl"), "stop", "-m", "fast", "-w", "-D", self.data_dir)
            self.started = False
        shutil.rmtree(self.base, ignore_errors=True)


def quote_literal(text):
    return "'" + text.replace("'", "''") + "'"


def quote_ident(text):
    return '"' + text.replace('"', '""') + '"'
