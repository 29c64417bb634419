"""A PostgreSQL *store* cluster for the fleet tests (several mlcredd daemons sharing one
PostgreSQL database as their store), started on loopback by the tests themselves:

- a primary on 127.0.0.1 (a free port), run as peers.py's unprivileged system user, durable
  (fsync=on, synchronous_commit=on, full_page_writes=on: nothing of peers.Postgres' speed-ups),
  wal_level=replica, with a database `mlcred` owned by the LOGIN role `mlcred` (random password,
  scram-sha-256 over TCP; no superuser, no CREATEROLE: it only owns its database);
- optionally a streaming standby (pg_basebackup -R, application_name `standby1`, a replication
  slot), confirmed streaming, and optionally synchronous (synchronous_standby_names on the
  primary, confirmed `sync_state = 'sync'`);
- optionally TLS on both servers: a throwaway test CA and a server certificate for `localhost`
  and 127.0.0.1 made with openssl, plus an unrelated "wrong" CA (ca_path, wrong_ca_path are
  readable by any user). pg_hba then has a `hostssl` and a `hostnossl` line, so both
  sslmode=verify-full and sslmode=disable can be tried.

The superuser `postgres` is reached only through the Unix socket (trust; the socket directory is
closed to everyone but the cluster's user and root); replication too. Nothing listens anywhere
but 127.0.0.1.

    cluster = StoreCluster.start(standby=True, tls=True)
    try:
        url = cluster.url()            # postgres://mlcred@127.0.0.1:P1,127.0.0.1:P2/mlcred?...
        cluster.write_password_file(path)
        ...
        cluster.stop_primary()
        cluster.promote_standby()
    finally:
        cluster.stop()
"""
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse

from peers import (PG_OS_USER, PG_SUPERUSER, _tail, _wait, ensure_system_user, free_port, postgres_bin_dir,
                   quote_ident, quote_literal, run_as_pg_user)

STORE_DB = "mlcred"
STORE_USER = "mlcred"
STANDBY_NAME = "standby1"  # the standby's application_name, named in synchronous_standby_names
SLOT_NAME = "standby1_slot"

START_TIMEOUT = 60     # pg_ctl start/stop/promote -t, seconds
REPLICA_TIMEOUT = 30   # for the standby to stream (and be sync) / to leave recovery
COMMAND_TIMEOUT = 120  # any one helper command (initdb, pg_basebackup, psql, pg_dump, openssl)

# Settings common to both servers (postgresql.conf, which pg_basebackup copies to the standby);
# port, listen address and socket directory go on each server's command line.
BASE_SETTINGS = {
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "wal_level": "replica",
    "max_wal_senders": "10",
    "max_replication_slots": "10",
    "wal_keep_size": "'64MB'",
    "hot_standby": "on",
    "max_connections": "100",
    "shared_buffers": "'32MB'",
    "password_encryption": "'scram-sha-256'",
    "log_line_prefix": "'%m [%p] %q%u@%d '",
}


class Server:
    """One PostgreSQL server of the cluster: its data directory, port, log."""

    def __init__(self, cluster, name, port):
        self.cluster = cluster
        self.name = name
        self.port = port
        self.data_dir = os.path.join(cluster.base, name)
        self.log_path = os.path.join(cluster.base, name + ".log")

    def options(self):
        c = self.cluster
        return (f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                f"-c unix_socket_directories={c.socket_dir} -c unix_socket_permissions=0700")

    def start(self):
        c = self.cluster
        result = c._pg("pg_ctl", "start", "-w", "-t", str(START_TIMEOUT), "-D", self.data_dir, "-l", self.log_path,
                       "-o", self.options())
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl start of the {self.name} (port {self.port}) failed: "
                               f"{_decode(result.stderr)}{_tail(self.log_path)}")

    def running(self):
        """Whether a postmaster runs on this data directory (pg_ctl status)."""
        return self.cluster._pg("pg_ctl", "status", "-D", self.data_dir).returncode == 0

    def stop(self, mode="fast"):
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"unknown pg_ctl stop mode {mode!r}")
        result = self.cluster._pg("pg_ctl", "stop", "-m", mode, "-w", "-t", str(START_TIMEOUT), "-D", self.data_dir)
        if result.returncode != 0 and self.running():
            raise RuntimeError(f"pg_ctl stop -m {mode} of the {self.name} (port {self.port}) failed: "
                               f"{_decode(result.stderr)}{_tail(self.log_path)}")

    def pids(self):
        """The postmaster and its children (backends, walsender, background workers)."""
        with open(os.path.join(self.data_dir, "postmaster.pid")) as f:
            postmaster = int(f.readline().strip())
        children = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                children.append(int(entry))
        return [postmaster, *children]

    @contextlib.contextmanager
    def frozen(self):
        """The server stopped dead (SIGSTOP to it and its children): connections stay open, nothing
        answers, until the block ends."""
        pids = self.pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGCONT)
                except OSError:
                    pass

    def kill(self):
        """Last resort at clean-up: SIGKILL to the postmaster (its children exit with it)."""
        try:
            with open(os.path.join(self.data_dir, "postmaster.pid")) as f:
                pid = int(f.readline().strip())
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass


class StoreCluster:
    """A running PostgreSQL store: a primary and, optionally, a streaming standby (see the module's
    docstring). Attributes: host ("127.0.0.1"), port, standby_port (None without a standby), user,
    password, dbname, superuser, socket_dir, bin_dir, tls, synchronous, ca_path and wrong_ca_path
    (None without TLS), primary_log, standby_log."""

    def __init__(self, standby, tls, synchronous):
        self.bin_dir = postgres_bin_dir()
        self.os_user = PG_OS_USER
        self.host = "127.0.0.1"
        self.user = STORE_USER
        self.dbname = STORE_DB
        self.superuser = PG_SUPERUSER
        self.password = secrets.token_urlsafe(24)
        self.tls = tls
        self.synchronous = synchronous and standby
        self.has_standby = standby
        # Closed to everyone but the cluster's user (and root): the socket there is trusted.
        self.base = tempfile.mkdtemp(prefix="mlcred-fleet-pg-", dir="/var/tmp")
        # Open to every user (the CA certificates the daemons read, whoever they run as).
        self.public_dir = tempfile.mkdtemp(prefix="mlcred-fleet-pg-pub-", dir="/var/tmp")
        os.chmod(self.public_dir, 0o755)
        self.socket_dir = os.path.join(self.base, "sock")
        self.tls_dir = os.path.join(self.base, "tls")
        self.ca_path = None
        self.wrong_ca_path = None
        self.server_cert_path = None
        self.server_key_path = None
        self.primary = Server(self, "primary", free_port())
        port = free_port()
        while port == self.primary.port:
            port = free_port()
        self.standby = Server(self, "standby", port) if standby else None

    @property
    def port(self):
        return self.primary.port

    @property
    def standby_port(self):
        return self.standby.port if self.standby else None

    @property
    def primary_log(self):
        return self.primary.log_path

    @property
    def standby_log(self):
        return self.standby.log_path if self.standby else None

    # ---------------------------------------------------------------------------------------
    # Start

    @classmethod
    def start(cls, standby=True, tls=False, synchronous=True):
        """Starts the cluster and returns it once the primary serves `mlcred` (and the standby
        streams, and is sync when `synchronous`). Needs root (useradd, setpriv). Whatever was
        started is stopped again if a step fails."""
        ensure_system_user(PG_OS_USER)
        cluster = cls(standby, tls, synchronous)
        try:
            cluster._prepare_dirs()
            if tls:
                cluster._make_certificates()
            cluster._init_primary()
            cluster.primary.start()
            cluster._create_store()
            if standby:
                cluster._make_standby()
                cluster.standby.start()
                cluster._wait_streaming()
                if cluster.synchronous:
                    cluster._make_synchronous()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _pg(self, program, *args, timeout=COMMAND_TIMEOUT):
        """Runs one of PostgreSQL's programs as the cluster's system user."""
        return run_as_pg_user(self.os_user, self.base, os.path.join(self.bin_dir, program), *args, timeout=timeout)

    def _prepare_dirs(self):
        os.makedirs(self.socket_dir)
        for path in (self.base, self.socket_dir):
            shutil.chown(path, self.os_user, self.os_user)
            os.chmod(path, 0o700)

    def _make_certificates(self):
        """A test CA, a server certificate it signs (CN localhost, SAN DNS:localhost, IP:127.0.0.1)
        and an unrelated CA, with openssl (EC P-256 keys)."""
        os.makedirs(self.tls_dir, mode=0o700)
        work = self.tls_dir

        def openssl(*args):
            result = subprocess.run(["openssl", *args], cwd=work, capture_output=True,
                                    env={"PATH": "/usr/bin:/bin", "HOME": work, "RANDFILE": os.path.join(work, ".rnd")},
                                    timeout=COMMAND_TIMEOUT)
            if result.returncode != 0:
                raise RuntimeError(f"openssl {' '.join(args)} failed: {_decode(result.stderr)}")

        def ca(name, subject):
            openssl("req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "30", "-subj", subject,
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                    "-addext", "subjectKeyIdentifier=hash")

        ca("ca", "/O=mlcred tests/CN=mlcred test CA")
        ca("wrong-ca", "/O=mlcred tests/CN=mlcred wrong CA")
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", "server.key", "-out", "server.csr", "-subj", "/O=mlcred tests/CN=localhost")
        with open(os.path.join(work, "server.ext"), "w") as f:
            f.write("basicConstraints = critical, CA:FALSE\n"
                    "keyUsage = critical, digitalSignature, keyEncipherment\n"
                    "extendedKeyUsage = serverAuth\n"
                    "subjectAltName = DNS:localhost, IP:127.0.0.1\n"
                    "subjectKeyIdentifier = hash\n"
                    "authorityKeyIdentifier = keyid, issuer\n")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", "server.crt", "-days", "30", "-extfile", "server.ext")
        # The server's: key 0600 and owned by the cluster's user (PostgreSQL insists), under base.
        self.server_cert_path = os.path.join(work, "server.crt")
        self.server_key_path = os.path.join(work, "server.key")
        for path in (self.server_cert_path, self.server_key_path):
            shutil.chown(path, self.os_user, self.os_user)
        os.chmod(self.server_cert_path, 0o644)
        os.chmod(self.server_key_path, 0o600)
        shutil.chown(work, self.os_user, self.os_user)
        # Everyone's: the two CA certificates (never their keys).
        self.ca_path = os.path.join(self.public_dir, "ca.crt")
        self.wrong_ca_path = os.path.join(self.public_dir, "wrong-ca.crt")
        shutil.copyfile(os.path.join(work, "ca.crt"), self.ca_path)
        shutil.copyfile(os.path.join(work, "wrong-ca.crt"), self.wrong_ca_path)
        for path in (self.ca_path, self.wrong_ca_path):
            os.chmod(path, 0o644)

    def _init_primary(self):
        data = self.primary.data_dir
        result = self._pg("initdb", "-D", data, "-U", self.superuser, "--auth=trust", "--encoding=UTF8")
        if result.returncode != 0:
            raise RuntimeError("initdb failed: " + _decode(result.stderr))
        if self.tls:
            tcp = ("hostssl    all          all   127.0.0.1/32  scram-sha-256\n"
                   "hostnossl  all          all   127.0.0.1/32  scram-sha-256\n")
        else:
            tcp = "host       all          all   127.0.0.1/32  scram-sha-256\n"
        # Run as root: the files belong to the cluster's user, mode kept (initdb made them 0600).
        with open(os.path.join(data, "pg_hba.conf"), "w") as f:
            f.write("# TYPE    DATABASE     USER  ADDRESS       METHOD\n"
                    "local      all          all                 trust\n"   # the socket dir is 0700
                    "local      replication  all                 trust\n"   # the standby, through it
                    + tcp)
        settings = dict(BASE_SETTINGS)
        if self.tls:
            settings.update({"ssl": "on", "ssl_cert_file": quote_literal(self.server_cert_path),
                             "ssl_key_file": quote_literal(self.server_key_path),
                             "ssl_min_protocol_version": "'TLSv1.2'"})
        with open(os.path.join(data, "postgresql.conf"), "a") as f:
            f.write("\n# mlcred fleet tests (fleet_pg.py)\n")
            f.writelines(f"{name} = {value}\n" for name, value in settings.items())

    def _create_store(self):
        self.sql(f"CREATE ROLE {quote_ident(self.user)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                 f"PASSWORD {quote_literal(self.password)}", db="postgres")
        self.sql(f"CREATE DATABASE {quote_ident(self.dbname)} OWNER {quote_ident(self.user)}", db="postgres")
        # Nobody else may connect to it; its owner may (and, as owner, create schemas; PostgreSQL
        # 15's `public` schema belongs to pg_database_owner, so its owner creates tables there too).
        self.sql(f"REVOKE ALL ON DATABASE {quote_ident(self.dbname)} FROM PUBLIC", db="postgres")

    def _make_standby(self):
        # Through the primary's socket as the superuser; -R writes primary_conninfo (with this
        # application_name) and primary_slot_name into postgresql.auto.conf and standby.signal.
        conninfo = (f"host={self.socket_dir} port={self.primary.port} user={self.superuser} "
                    f"application_name={STANDBY_NAME}")
        result = self._pg("pg_basebackup", "-D", self.standby.data_dir, "-d", conninfo, "-R", "-X", "stream",
                          "-C", "-S", SLOT_NAME, "-c", "fast")
        if result.returncode != 0:
            raise RuntimeError("pg_basebackup failed: " + _decode(result.stderr) + _tail(self.primary.log_path))

    def _replication_rows(self):
        try:
            return self.sql("SELECT application_name, state, sync_state FROM pg_stat_replication", db="postgres")
        except RuntimeError:
            return []

    def _wait_replication(self, predicate, what, log):
        """Waits until `predicate(pg_stat_replication rows)`; fails naming the last rows seen."""
        try:
            _wait(lambda: predicate(self._replication_rows()), REPLICA_TIMEOUT, what, log=log)
        except RuntimeError as e:
            raise RuntimeError(f"{e}\n(pg_stat_replication on the primary: {self._replication_rows()}; "
                               f"primary log: {_tail(self.primary.log_path, 2000)})") from None

    def _wait_streaming(self):
        self._wait_replication(lambda rows: (STANDBY_NAME, "streaming") in [row[:2] for row in rows],
                               f"the standby (port {self.standby.port}) to stream from the primary; standby log",
                               self.standby.log_path)

    def _make_synchronous(self):
        # In the primary's postgresql.auto.conf only (the standby's copy was taken before): once
        # promoted, the standby does not wait for a standby of its own.
        self.sql(f"ALTER SYSTEM SET synchronous_standby_names = {quote_literal(STANDBY_NAME)}", db="postgres")
        self.sql("ALTER SYSTEM SET synchronous_commit = 'on'", db="postgres")
        self.sql("SELECT pg_reload_conf()", db="postgres")
        self._wait_replication(lambda rows: (STANDBY_NAME, "streaming", "sync") in rows,
                               "the standby to be synchronous (sync_state = 'sync'); standby log",
                               self.standby.log_path)

    # ---------------------------------------------------------------------------------------
    # Connecting

    def url(self, hosts=None, sslmode=None, sslrootcert=None):
        """The store's URL for mlcredd, without any password: postgres://mlcred@H1:P1,H2:P2/mlcred?
        target_session_attrs=read-write&sslmode=...[&sslrootcert=...]. `hosts`: a list of ports
        (on 127.0.0.1), (host, port) pairs or "host:port" strings; the default is the primary then
        the standby. `sslmode` defaults to verify-full with TLS (sslrootcert then defaults to
        ca_path) and to disable without; sslrootcert is only added for verify-ca/verify-full or
        when given."""
        if hosts is None:
            hosts = [self.port] + ([self.standby_port] if self.standby else [])
        netlocs = []
        for entry in hosts:
            if isinstance(entry, int):
                netlocs.append(f"{self.host}:{entry}")
            elif isinstance(entry, (tuple, list)):
                netlocs.append(f"{entry[0]}:{entry[1]}")
            else:
                netlocs.append(str(entry))
        if sslmode is None:
            sslmode = "verify-full" if self.tls else "disable"
        if sslrootcert is None and sslmode in ("verify-ca", "verify-full"):
            sslrootcert = self.ca_path
        query = [("target_session_attrs", "read-write"), ("sslmode", sslmode)]
        if sslrootcert:
            query.append(("sslrootcert", sslrootcert))
        return (f"postgres://{urllib.parse.quote(self.user, safe='')}@{','.join(netlocs)}/"
                f"{urllib.parse.quote(self.dbname, safe='')}?{urllib.parse.urlencode(query, safe='/')}")

    def write_password_file(self, path, owner=None):
        """Writes the `mlcred` role's password (no newline) to `path`, mode 0600, owned by `owner`
        (a user name; default: the caller). Returns the path."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, self.password.encode())
        finally:
            os.close(fd)
        if owner is not None:
            shutil.chown(path, owner, owner)
        return path

    def _server(self, standby):
        if standby and not self.standby:
            raise RuntimeError("this cluster has no standby")
        return self.standby if standby else self.primary

    def psql_super(self, query, standby=False, db=None):
        """psql as the superuser through the Unix socket; returns the CompletedProcess."""
        server = self._server(standby)
        cmd = [os.path.join(self.bin_dir, "psql"), "-X", "-q", "-A", "-t", "-F", "\x1f", "-v", "ON_ERROR_STOP=1",
               "-h", self.socket_dir, "-p", str(server.port), "-U", self.superuser, "-d", db or self.dbname,
               "-c", query]
        return subprocess.run(cmd, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "HOME": self.base},
                              timeout=COMMAND_TIMEOUT)

    def sql(self, query, standby=False, db=None):
        """Runs `query` as the superuser on the primary (or the standby) in database `db` (default
        mlcred); returns the rows as tuples of strings. Raises RuntimeError on error."""
        result = self.psql_super(query, standby=standby, db=db)
        if result.returncode != 0:
            which = "standby" if standby else "primary"
            raise RuntimeError(f"psql on the {which} failed ({result.returncode}) on {query!r}: {result.stderr}")
        return [tuple(line.split("\x1f")) for line in result.stdout.splitlines() if line]

    def psql_tcp(self, query, standby=False, host="localhost", sslmode=None, sslrootcert=None, password=None,
                 user=None, dsn=None, extra_env=None):
        """psql over TCP to 127.0.0.1 as `mlcred` (scram-sha-256, PGPASSWORD) with host name `host`
        (what verify-full checks); sslmode defaults as in url(). With `dsn` (a URL such as url()'s
        or a conninfo string), psql connects with that alone (and PGPASSWORD). Returns the
        CompletedProcess."""
        env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "PGUSER": user or self.user,
               "PGPASSWORD": self.password if password is None else password, "PGCONNECT_TIMEOUT": "10"}
        if dsn is None:
            server = self._server(standby)
            if sslmode is None:
                sslmode = "verify-full" if self.tls else "disable"
            if sslrootcert is None and sslmode in ("verify-ca", "verify-full"):
                sslrootcert = self.ca_path
            env.update({"PGHOST": host, "PGHOSTADDR": self.host, "PGPORT": str(server.port),
                        "PGDATABASE": self.dbname, "PGSSLMODE": sslmode,
                        **({"PGSSLROOTCERT": sslrootcert} if sslrootcert else {})})
        env.update(extra_env or {})
        cmd = [os.path.join(self.bin_dir, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", query]
        if dsn is not None:
            cmd += ["-d", dsn]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=COMMAND_TIMEOUT)

    def replication(self):
        """pg_stat_replication on the primary: (application_name, state, sync_state) rows."""
        return self.sql("SELECT application_name, state, sync_state FROM pg_stat_replication", db="postgres")

    def in_recovery(self, standby=False):
        return self.sql("SELECT pg_is_in_recovery()", standby=standby, db="postgres") == [("t",)]

    # ---------------------------------------------------------------------------------------
    # Failures and fail-over

    def stop_primary(self, mode="fast"):
        """Stops the primary (pg_ctl stop -m fast|smart|immediate; immediate is a crash: the
        next start recovers from the WAL)."""
        self.primary.stop(mode)

    def start_primary(self):
        """Starts the primary again (pg_ctl start -w). With a synchronous standby that no longer
        streams (stopped, promoted), commits on it wait. After promote_standby() this starts the
        old primary as a second, diverged primary: the split brain is the test's to want."""
        self.primary.start()

    def promote_standby(self):
        """Promotes the standby (pg_ctl promote) and waits until it has left recovery."""
        server = self._server(True)
        result = self._pg("pg_ctl", "promote", "-w", "-t", str(START_TIMEOUT), "-D", server.data_dir)
        if result.returncode != 0:
            raise RuntimeError("pg_ctl promote failed: " + _decode(result.stderr) + _tail(server.log_path))

        def promoted():
            try:
                return not self.in_recovery(standby=True)
            except RuntimeError:
                return False
        _wait(promoted, REPLICA_TIMEOUT, "the promoted standby to leave recovery; standby log", log=server.log_path)

    def pg_dump(self, path, standby=False, db=None):
        """A plain SQL dump of database `db` (default mlcred; as the superuser, through the socket) to `path`."""
        server = self._server(standby)
        result = subprocess.run([os.path.join(self.bin_dir, "pg_dump"), "-h", self.socket_dir, "-p", str(server.port),
                                 "-U", self.superuser, "-d", db or self.dbname, "--format=plain", "-f", path],
                                capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "HOME": self.base},
                                timeout=COMMAND_TIMEOUT)
        if result.returncode != 0:
            raise RuntimeError(f"pg_dump failed ({result.returncode}): {result.stderr}")
        return path

    # ---------------------------------------------------------------------------------------
    # Clean-up

    def stop(self):
        """Stops both servers (fast, then immediate, then SIGKILL) and removes every directory.
        Safe after a partial start and when called twice."""
        for server in (self.standby, self.primary):
            if server is None or not os.path.exists(os.path.join(server.data_dir, "postmaster.pid")):
                continue
            for mode in ("fast", "immediate"):
                try:
                    server.stop(mode)
                    break
                except (RuntimeError, subprocess.TimeoutExpired):
                    pass
            else:
                server.kill()
                time.sleep(0.5)
        shutil.rmtree(self.base, ignore_errors=True)
        shutil.rmtree(self.public_dir, ignore_errors=True)


def _decode(data):
    return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")
