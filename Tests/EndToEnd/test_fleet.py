"""The fleet (SPEC §12, issue 12): several mlcredd daemons, each with its own socket, state
directory and node name, sharing one PostgreSQL 15 store (a primary and a synchronous streaming
standby on loopback, TLS verify-full against a CA made for the test). The store's own PostgreSQL
is not the `postgres` fixture (the database the jobs get roles on): that one is a provider.

Each test gets a database of its own in the store cluster, so one test's nodes never judge
another's as silent."""
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time

import pytest

from conftest import (PASSPHRASE, drop_job_roles, end_process, files_containing, is_root, read_complete, role_toml, wait_for,
                      write_policies)

pytestmark = pytest.mark.skipif(not is_root(), reason="PostgreSQL runs as its own system user: needs root (CI runs as root)")

NODE_TIMEOUT = 4  # seconds: heartbeats every second, takeover a few seconds after a node dies
PG_PREFIX = "mlc_"
CREATE = ["CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'",
          "GRANT USAGE ON SCHEMA ml TO \"{{name}}\"",
          "GRANT SELECT ON ml.features TO \"{{name}}\""]
STATIC_VALUE = "hf_FLEETSECRET_" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def cluster():
    from fleet_pg import StoreCluster
    c = StoreCluster.start(standby=True, tls=True, synchronous=True)
    yield c
    c.stop()


class Fleet:
    """Daemons of one test sharing one database of the store cluster."""

    def __init__(self, cluster, daemon_factory, workdir, database, url=None):
        self.cluster = cluster
        self.daemon_factory = daemon_factory
        self.database = database
        self.url = url or cluster.url().replace(f"/{cluster.dbname}?", f"/{database}?")
        self.password_file = os.path.join(workdir, f"store-password-{database}")
        cluster.write_password_file(self.password_file)
        self.policy_root = None
        self.nodes = {}

    def start(self, name, policies, extra=(), wait=True, init=False):
        d = self.daemon_factory()
        d.policies = write_policies(d.root, policies)
        d.node = name
        d.store_args = ["--policies", d.policies, "--store", self.url, "--store-password-file", self.password_file,
                        "--node", name, "--node-timeout", f"{NODE_TIMEOUT}s", *extra]
        d.start(extra=d.store_args, wait=wait)
        if init:
            d.init()
        self.nodes[name] = d
        return d

    def join(self, *nodes):
        """Each node sees the vault another node initialized (by itself, at a heartbeat) and is unsealed."""
        for d in nodes:
            wait_for(lambda: json.loads(d.cli("status", "--json", check=0).out)["initialized"], 10, f"{d.node} to see the vault")
            d.unseal()

    def restart(self, d):
        d.start(extra=d.store_args)
        return d

    def sql(self, query):
        return self.cluster.sql(query, db=self.database)


@pytest.fixture
def fleet_factory(cluster, daemon_factory, workdir):
    made = []

    def make(url=None):
        database = "t_" + secrets.token_hex(4)
        cluster.sql(f"CREATE DATABASE {database} OWNER {cluster.user}", db="postgres")
        made.append(database)
        return Fleet(cluster, daemon_factory, workdir, database, url=url)

    yield make


def roles(group="", phi=False):
    first = {"secret": "warehouse", "type": "postgres-role", "create": CREATE}
    static = {"secret": "hf", "type": "static", "env": {"HF_TOKEN": "token"}}
    return {
        "analyst.toml": role_toml("analyst", ["uid:0"], first, ttl="15m", max_ttl="1h"),
        "notebook.toml": role_toml("notebook", ["uid:0"], static, ttl="15m"),
    }


# A job that publishes its PGUSER (atomically) and then waits until the test creates its release file.
WAITING_JOB = ('printf %s "$PGUSER" > "$1.tmp" && mv "$1.tmp" "$1"; '
               'while [ ! -e "$2" ]; do sleep 0.05; done')


class Job:
    """`mlcred run --role analyst` on node `d`, holding its PostgreSQL role until released."""

    def __init__(self, d, scratch):
        self.marker = os.path.join(scratch, f"pguser-{d.node}")
        self.release_file = os.path.join(scratch, f"release-{d.node}")
        self.proc = d.popen_run("analyst", "sh", "-c", WAITING_JOB, "job", self.marker, self.release_file)
        self.pg_user = wait_for(lambda: read_complete(self.marker) or self._died(), 20, f"the job on {d.node} to start")

    def _died(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"run exited with {self.proc.returncode}: {self.proc.stderr.read().decode()}")
        return None

    def release(self, timeout=30):
        open(self.release_file, "w").close()
        _, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, err.decode(errors="replace")


def audit_records(d, node=None):
    return [json.loads(line) for line in d.cli("audit", "export", *(["--node", node] if node else []), check=0).out.splitlines()]


# Tests


def test_one_vault_for_the_fleet_a_secret_put_on_a_is_used_on_c_and_listed_on_b(fleet_factory, postgres, scratch):
    f = fleet_factory()
    a = f.start("node-a", roles(), init=True)
    b = f.start("node-b", roles())
    c = f.start("node-c", roles())
    # init once, from any node; each node unseals itself (the others learn of the vault by themselves).
    f.join(b, c)
    a.cli("secret", "put", "warehouse", "--type", "postgres", input=json.dumps(postgres.secret_fields()), check=0)
    a.cli("secret", "put", "hf", "--type", "static", input=json.dumps({"token": STATIC_VALUE}), check=0)

    # A job on C gets a PostgreSQL role made from A's secret, and reads with it.
    job = Job(c, scratch)
    pg_user = job.pg_user
    try:
        assert pg_user.startswith(PG_PREFIX) and pg_user in postgres.roles(PG_PREFIX)
        # B lists the lease, owned by C.
        listed = [lease for lease in b.leases() if lease["provider_id"] == pg_user]
        assert len(listed) == 1 and listed[0]["node"] == "node-c" and listed[0]["state"] == "active", listed
        text = b.cli("lease", "list", check=0).out
        assert pg_user in text and "node-c" in text
    finally:
        code, err = job.release()
        assert code == 0, err
    wait_for(lambda: pg_user not in postgres.roles(PG_PREFIX), 10, "the role to be dropped when the job ends")

    # Sealing one node seals only it.
    c.cli("vault", "seal", check=0)
    assert json.loads(c.cli("status", "--json", check=0).out)["sealed"] is True
    assert json.loads(a.cli("status", "--json", check=0).out)["sealed"] is False
    out = b.cli("run", "--role", "notebook", "--", "sh", "-c", 'test "$HF_TOKEN" = "$1" && echo same', "x", STATIC_VALUE, check=0).out
    assert "same" in out
    drop_job_roles(postgres, PG_PREFIX)


def test_a_token_works_only_on_the_node_that_issued_it(fleet_factory):
    f = fleet_factory()
    a = f.start("node-a", roles(), init=True)
    b = f.start("node-b", roles())
    f.join(b)
    a.cli("secret", "put", "hf", "--type", "static", input=json.dumps({"token": STATIC_VALUE}), check=0)
    token = a.cli("token", "--role", "notebook", check=0).out.strip()
    status, body = a.http("POST", "/v1/credentials", token=token)
    assert status == 200, body
    status, body = b.http("POST", "/v1/credentials", token=token)
    assert status == 401 and body["error"]["reason"] == "token_other_node", body
    assert "node-a" in body["error"]["message"]
    refusals = [r for r in audit_records(b, "node-b") if r["result"] == "denied" and "node node-a presented on node node-b" in (r["reason"] or "")]
    assert len(refusals) == 1, refusals
    assert refusals[0]["node"] == "node-b"

    # A second daemon under a name in use is refused at start (its chain and leases would mix).
    twin = f.daemon_factory()
    twin.policies = write_policies(twin.root, roles())
    proc = subprocess.run(twin.command(extra=["--policies", twin.policies, "--store", f.url, "--store-password-file", f.password_file,
                                              "--node", "node-a"]),
                          capture_output=True, text=True, timeout=60, env=dict(os.environ, MLCRED_UNSAFE_TEST_KDF="1"))
    assert proc.returncode == 1 and "node name 'node-a' is in use" in proc.stderr, proc.stderr
    # Once node-a's daemon is gone (even killed), its name is free again.
    a.kill9()
    restarted = f.restart(a)
    assert json.loads(restarted.cli("status", "--json", check=0).out)["initialized"]


def test_a_token_revoked_while_its_credentials_are_made_ends_them_on_the_fleet_store(fleet_factory, postgres):
    """The fetch's write asserts its token is live in SQL (an optimistic batch reads nothing): a
    revocation that landed while the role was made fails that assertion, the batch runs again and
    reads the token, and what was made is ended; the chain has no gap."""
    f = fleet_factory()
    slow = {"secret": "warehouse", "type": "postgres-role", "create": [CREATE[0], "SELECT pg_sleep(3)"]}
    a = f.start("node-a", {"slow.toml": role_toml("slow", ["uid:0"], slow)}, init=True)
    a.cli("secret", "put", "warehouse", "--type", "postgres", input=json.dumps(postgres.secret_fields()), check=0)
    token = a.cli("token", "--role", "slow", check=0).out.strip()
    answer = {}
    fetch = threading.Thread(target=lambda: answer.update(result=a.http("POST", "/v1/credentials", body={}, token=token)))
    fetch.start()
    try:
        wait_for(lambda: postgres.sql("SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(3)'") == [("1",)], 20,
                 "the role's create statements to start")
        status, body = a.http("POST", "/v1/tokens/revoke", token=token)
        assert status == 200 and body["revoked"], body
    finally:
        fetch.join(30)
    status, body = answer["result"]
    assert status == 401 and body["error"]["code"] == "unauthenticated", body
    leases = [lease for lease in a.leases() if lease["role"] == "slow"]
    assert [lease["state"] for lease in leases] == ["revoked"], leases
    assert postgres.roles("mlc_slow") == []
    assert a.cli("audit", "verify", check=0).returncode == 0


def test_a_killed_nodes_postgres_role_is_dropped_by_exactly_one_other_node(fleet_factory, postgres, scratch):
    f = fleet_factory()
    a = f.start("node-a", roles(), init=True)
    b = f.start("node-b", roles())
    c = f.start("node-c", roles())
    f.join(b, c)
    a.cli("secret", "put", "warehouse", "--type", "postgres", input=json.dumps(postgres.secret_fields()), check=0)
    job = Job(a, scratch)
    pg_user = job.pg_user
    try:
        assert pg_user in postgres.roles(PG_PREFIX)
        lease_id = next(lease["id"] for lease in b.leases() if lease["provider_id"] == pg_user)
        killed_at = time.monotonic()
        a.kill9()
        # Within the timeout plus a few seconds, B or C drops the role.
        wait_for(lambda: pg_user not in postgres.roles(PG_PREFIX), NODE_TIMEOUT + 10, "a live node to drop the silent node's role",
                 interval=0.2)
        took = time.monotonic() - killed_at
        assert took < NODE_TIMEOUT + 10
        fleet = json.loads(b.cli("fleet", "status", "--json", check=0).out)
        silent = {n["name"]: n["silent"] for n in fleet["nodes"]}
        assert silent == {"node-a": True, "node-b": False, "node-c": False}, fleet
        takeovers = [r for node in ("node-b", "node-c") for r in audit_records(b, node)
                     if r["action"] == "lease.takeover" and lease_id in (r["reason"] or "")]
        assert len(takeovers) == 1, takeovers
        taker = takeovers[0]["node"]
        lease = next(lease for lease in b.leases() if lease["id"] == lease_id)
        assert lease["state"] == "revoked" and lease["node"] == taker, lease
        revocations = [r for r in audit_records(b) if r["action"] == "provider.revoke" and lease_id in (r["reason"] or "")]
        assert len(revocations) == 1 and revocations[0]["node"] == taker, revocations

        # A comes back: it finds the lease settled, its run-bound token revoked, and revokes nothing again.
        f.restart(a)
        a.unseal()
        time.sleep(2)
        assert [t for t in a.tokens() if t.get("node") == "node-a" and t["bound"] and t["state"] == "active"] == []
        again = [r for r in audit_records(b) if r["action"] in ("provider.revoke", "lease.takeover") and lease_id in (r["reason"] or "")]
        assert len(again) == 2, again
        assert a.cli("audit", "verify", check=0).returncode == 0
    finally:
        end_process(job.proc)
        drop_job_roles(postgres, PG_PREFIX)


def test_fleet_status_shows_every_node_and_flags_policy_drift_within_an_environment(fleet_factory, users):
    f = fleet_factory()
    a = f.start("node-a", roles(), init=True)
    b = f.start("node-b", roles())
    extra_role = {**roles(), "extra.toml": role_toml("extra", ["uid:0"], {"secret": "hf", "type": "static", "env": {"X": "token"}})}
    c = f.start("node-c", extra_role)
    wait_for(lambda: len(json.loads(a.cli("fleet", "status", "--json", check=0).out)["nodes"]) == 3, 10, "three rows")
    status = json.loads(a.cli("fleet", "status", "--json", check=0).out)
    assert status["store"] == "postgres"
    rows = {node["name"]: node for node in status["nodes"]}
    assert rows["node-a"]["answering"] and not rows["node-b"]["answering"]
    assert rows["node-a"]["sealed"] is False and rows["node-b"]["sealed"] is True  # b never unsealed
    assert rows["node-a"]["policy_digest"] == rows["node-b"]["policy_digest"] != rows["node-c"]["policy_digest"]
    assert all(row["drift"] for row in rows.values()) and all(row["environment"] == "dev" for row in rows.values())
    assert len(status["drift"]) == 1 and "node-c" in status["drift"][0]
    text = a.cli("fleet", "status", check=0).out
    assert "DRIFT" in text and "this node" in text and "drift: environment 'dev'" in text
    # Admin only, like every fleet-wide view.
    refused = a.cli("fleet", "status", user=users["nonadmin"])
    assert refused.returncode == 3 and "admin" in refused.err, refused.err
    # Same policies again: no drift.
    c.stop()
    f.start("node-c", roles())
    wait_for(lambda: not json.loads(a.cli("fleet", "status", "--json", check=0).out)["drift"], 10, "drift to clear")
    # A single node's status names its store.
    single = f.daemon_factory().start()
    single.init()
    alone = json.loads(single.cli("fleet", "status", "--json", check=0).out)
    assert alone["store"] == "sqlite" and len(alone["nodes"]) == 1 and alone["nodes"][0]["answering"]


def test_a_retired_node_is_forgotten_only_once_silent_and_taken_over_and_its_chain_stays(fleet_factory):
    f = fleet_factory()
    a = f.start("node-a", roles(), init=True)
    b = f.start("node-b", roles())
    f.join(b)
    a.cli("secret", "put", "hf", "--type", "static", input=json.dumps({"token": STATIC_VALUE}), check=0)
    token = a.cli("token", "--role", "notebook", check=0).out.strip()
    status, body = a.http("POST", "/v1/credentials", body={}, token=token)
    assert status == 200, body  # node-a now holds a live token and an active lease

    refused = b.cli("fleet", "forget", "node-a")
    assert refused.returncode == 1 and "node 'node-a' is live" in refused.err, refused.err
    assert "stop that node's daemon" in refused.err  # the hint follows the reason
    own = b.cli("fleet", "forget", "node-b")
    assert own.returncode == 1 and "is the node answering" in own.err, own.err
    missing = b.cli("fleet", "forget", "node-z")
    assert missing.returncode == 1 and "no node 'node-z'" in missing.err, missing.err
    assert b.http("DELETE", "/v1/fleet/nodes/node-a")[1]["error"]["reason"] == "node_live"

    # Stalled (SIGSTOP), not stopped: silent, but its session still holds its name: refused.
    b.cli("vault", "seal", check=0)
    a.proc.send_signal(signal.SIGSTOP)
    stalled = wait_for(lambda: (lambda body: "still holds its name" in body["error"]["message"] and body)(
        b.http("DELETE", "/v1/fleet/nodes/node-a")[1]), NODE_TIMEOUT + 10, "node-a to go silent while stalled", interval=0.5)
    assert stalled["error"]["reason"] == "node_live", stalled
    # Killed, its lease not yet taken over (the only other node is sealed): refused.
    a.kill9()
    wait_for(lambda: b.http("DELETE", "/v1/fleet/nodes/node-a")[1]["error"]["reason"] == "node_has_leases", NODE_TIMEOUT + 10,
             "node-a to go silent with its lease still owed", interval=0.5)
    # Unsealed, node-b takes the lease over; then node-a can be forgotten, and its token ends.
    b.unseal()
    forgotten = wait_for(lambda: (lambda r: r.returncode == 0 and r)(b.cli("fleet", "forget", "node-a", "--json")), NODE_TIMEOUT + 10,
                         "node-b to take over node-a's lease", interval=0.5)
    assert json.loads(forgotten.out) == {"node": "node-a", "revoked_tokens": 1}
    nodes = json.loads(b.cli("fleet", "status", "--json", check=0).out)["nodes"]
    assert [n["name"] for n in nodes] == ["node-b"], nodes
    assert [t for t in b.tokens() if t.get("node") == "node-a" and t["state"] == "active"] == []
    records = audit_records(b, "node-b")
    forgets = [r for r in records if r["action"] == "fleet.forget"]
    results = [r["result"] for r in forgets]
    # The refusals above can pass the per-uid denial limit: their merged record ("N more denials")
    # is written once its window closes, which may come after the forget: look past it.
    allowed = [r for r in forgets if r["result"] == "allowed"]
    assert len(allowed) == 1 and results.count("denied") >= 5, forgets
    assert all(r["result"] == "denied" and "more denial" in (r.get("reason") or "")
               for r in forgets[forgets.index(allowed[0]) + 1:]), forgets
    assert "node node-a forgotten" in allowed[0]["reason"], allowed[0]
    verify = b.cli("audit", "verify", check=0)
    assert "node-a" in verify.out, verify.out  # its chain stays, and is checked

    # A daemon started again under that name writes its row again.
    f.restart(a)
    a.unseal()
    wait_for(lambda: "node-a" in [n["name"] for n in json.loads(b.cli("fleet", "status", "--json", check=0).out)["nodes"]], 10,
             "node-a's row to come back")


def test_audit_verify_checks_every_nodes_chain_and_names_the_node_of_an_edited_record(fleet_factory):
    f = fleet_factory()
    a = f.start("node-a", roles(), init=True)
    b = f.start("node-b", roles())
    f.join(b)
    a.cli("secret", "put", "hf", "--type", "static", input=json.dumps({"token": STATIC_VALUE}), check=0)
    for d in (a, b):
        d.cli("run", "--role", "notebook", "--", "true", check=0)
    for d in (a, b):
        verified = json.loads(d.cli("audit", "verify", "--json", check=0).out)
        assert verified["ok"] is True
        chains = {chain["node"]: chain for chain in verified["chains"]}
        assert set(chains) == {"node-a", "node-b"}
        assert all(chain["checked"] >= 3 and chain["head"]["mac"] for chain in chains.values())
        text = d.cli("audit", "verify", check=0).out
        assert "node node-a: OK" in text and "node node-b: OK" in text and text.count("head seq") == 2
    # Sequences are per node, gap-free from 1.
    for node in ("node-a", "node-b"):
        seqs = [r["seq"] for r in audit_records(a, node)]
        assert seqs == list(range(1, len(seqs) + 1)) and all(r["node"] == node for r in audit_records(a, node))

    f.sql("UPDATE audit SET reason = 'forged' WHERE node = 'node-b' AND seq = 2")
    for d in (a, b):
        broken = d.cli("audit", "verify")
        assert broken.returncode == 1
        assert "node-b" in broken.err and "record 2" in broken.err and "edited" in broken.err, broken.err


def test_the_store_is_reached_with_tls_verify_full_and_a_wrong_ca_or_an_exposed_password_is_refused(fleet_factory, cluster, workdir):
    f = fleet_factory()
    # Every fleet here runs verify-full against the test's CA: the first node proves it works.
    assert "sslmode=verify-full" in f.url and cluster.ca_path in f.url
    a = f.start("node-a", roles(), init=True)
    assert "store=postgres" in a.read_log()
    used = cluster.sql("SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                       f"WHERE a.datname = '{f.database}' AND s.ssl", db="postgres")
    assert int(used[0][0]) >= 1, "the store connections are not encrypted"

    def refused_start(url, password_file=None, expect=()):
        d = f.daemon_factory()
        d.policies = write_policies(d.root, roles())
        started = time.monotonic()
        proc = subprocess.run(d.command(extra=["--policies", d.policies, "--store", url, "--store-password-file",
                                                password_file or f.password_file, "--node", "node-x"]),
                              capture_output=True, text=True, timeout=60, env=dict(os.environ, MLCRED_UNSAFE_TEST_KDF="1"))
        assert proc.returncode != 0, proc.stderr
        for word in expect:
            assert word in proc.stderr, proc.stderr
        assert cluster.password not in proc.stderr + proc.stdout
        return proc, time.monotonic() - started

    proc, took = refused_start(f.url.replace(cluster.ca_path, cluster.wrong_ca_path), expect=("TLS",))
    assert took < 10, f"a wrong CA took {took:.1f} s to be refused"
    # A password in the URL (argv is public) is refused before anything is tried.
    proc = subprocess.run([os.path.join(a.bins, "mlcredd"), "--store", f.url.replace("mlcred@", f"mlcred:{cluster.password}@")],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 64 and "password" in proc.stderr and cluster.password not in proc.stderr, proc.stderr
    # A password file others may read is refused.
    loose = os.path.join(workdir, "loose-password")
    cluster.write_password_file(loose)
    os.chmod(loose, 0o644)
    refused_start(f.url, password_file=loose, expect=("chmod 600",))
    # A wrong password: refused clearly, the password never echoed.
    wrong = os.path.join(workdir, "wrong-password")
    with open(wrong, "w") as out:
        out.write("not-the-password")
    os.chmod(wrong, 0o600)
    refused_start(f.url, password_file=wrong, expect=("password authentication failed",))


def test_a_stalled_store_never_holds_an_event_loop(fleet_factory, cluster):
    """Point reads wait on PostgreSQL off the event loops: while the store answers nothing,
    requests waiting on it hold no loop, a request that needs no store is answered at once, and
    each waiting one gets 503 store_unavailable within SPEC §12's 2 s, however many wait."""
    f = fleet_factory()
    a = f.start("node-a", roles(), init=True)
    a.cli("secret", "put", "hf", "--type", "static", input=json.dumps({"token": STATIC_VALUE}), check=0)
    tokens = [a.cli("token", "--role", "notebook", check=0).out.strip() for _ in range(12)]
    answers = []

    def fetch(token):
        started = time.monotonic()
        status, body = a.http("POST", "/v1/credentials", body={}, token=token)
        answers.append((status, body, time.monotonic() - started))

    with cluster.primary.frozen():
        waiting = [threading.Thread(target=fetch, args=(t,)) for t in tokens]
        for thread in waiting:
            thread.start()
        time.sleep(0.3)  # each is waiting on the store now (two event loops, twelve requests)
        for _ in range(4):  # as many connections: the daemon spreads them over its loops
            started = time.monotonic()
            status, body = a.http("POST", "/v1/credentials", body={}, token="not-a-token")
            took = time.monotonic() - started
            assert status == 401 and body["error"]["reason"] == "token_malformed", body
            assert took < 0.5, f"an answer that needs no store took {took:.2f} s behind requests waiting on it"
        for thread in waiting:
            thread.join(4)  # still frozen: every answer comes from the daemon's own deadline
    assert len(answers) == 12, answers
    for status, body, took in answers:
        assert status == 503 and body["error"]["reason"] == "store_unavailable", body
        assert took < 2.5, f"a request waiting on a stalled store was answered after {took:.2f} s"
    wait_for(lambda: a.http("POST", "/v1/credentials", body={}, token=tokens[0])[0] == 200, 10, "the thawed store to serve again",
             interval=0.2)


def test_a_dump_of_the_store_holds_no_secret_passphrase_or_token(fleet_factory, cluster, workdir):
    f = fleet_factory()
    a = f.start("node-a", roles(), init=True)
    a.cli("secret", "put", "hf", "--type", "static", input=json.dumps({"token": STATIC_VALUE}), check=0)
    token = a.cli("token", "--role", "notebook", check=0).out.strip()
    status, body = a.http("POST", "/v1/credentials", token=token)
    assert status == 200 and STATIC_VALUE in json.dumps(body)
    dump = cluster.pg_dump(os.path.join(workdir, f"{f.database}.sql"), db=f.database)
    text = open(dump, "rb").read()
    assert b"INSERT" in text or b"COPY" in text
    for needle in (STATIC_VALUE, PASSPHRASE, token, token.split("_")[-1], cluster.password):
        assert needle.encode() not in text, f"{needle[:6]}... is in the dump"
    assert files_containing(STATIC_VALUE, a.written_files()) == []


def test_a_single_nodes_sqlite_state_moves_into_the_fleet_store_checked_on_both_sides(fleet_factory, daemon_factory):
    # One node, SQLite, with history: a secret, a token still live, a job, audit records.
    single = daemon_factory()
    single.policies = write_policies(single.root, roles())
    single.start(extra=["--policies", single.policies])
    single.init()
    single.cli("secret", "put", "hf", "--type", "static", input=json.dumps({"token": STATIC_VALUE}), check=0)
    token = single.cli("token", "--role", "notebook", check=0).out.strip()
    single.cli("run", "--role", "notebook", "--", "true", check=0)
    head = json.loads(single.cli("audit", "verify", "--json", check=0).out)["head"]
    single.stop()

    f = fleet_factory()
    cmd = single.command(extra=["--store", f.url, "--store-password-file", f.password_file, "--node", "moved",
                                "--import-sqlite", single.db_path()])
    moved = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert moved.returncode == 0, moved.stderr
    assert f"audit head seq {head['seq']} mac {head['mac']}" in moved.stdout, moved.stdout
    assert STATIC_VALUE not in moved.stdout + moved.stderr
    # The copy is all there, as node `moved`, and a second import is refused (nothing copied twice).
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "already holds a vault" in again.stderr, again.stderr
    assert int(f.sql("SELECT count(*) FROM audit WHERE node = 'moved'")[0][0]) == head["seq"]

    # The node, now on the fleet store: same passphrase, same chain head, same secret, the old token.
    d = f.start("moved", roles())
    d.unseal()
    verified = json.loads(d.cli("audit", "verify", "--json", check=0).out)
    chain = next(c for c in verified["chains"] if c["node"] == "moved")
    assert verified["ok"] and chain["checked"] > head["seq"]
    records = audit_records(d, "moved")
    assert next(r for r in records if r["seq"] == head["seq"])["mac"] == head["mac"]
    status, body = d.http("POST", "/v1/credentials", token=token)
    assert status == 200 and STATIC_VALUE in json.dumps(body), body
    # A second node joins the moved vault.
    b = f.start("node-b", roles())
    b.unseal()
    out = b.cli("run", "--role", "notebook", "--", "sh", "-c", 'test "$HF_TOKEN" = "$1" && echo same', "x", STATIC_VALUE, check=0).out
    assert "same" in out


def test_store_outage_answers_503_quickly_keeps_reads_and_loses_nothing_then_failover_resumes(fleet_factory, cluster):
    """Last in the module: it stops the primary and promotes the standby."""
    f = fleet_factory()
    a = f.start("node-a", roles(), init=True)
    a.cli("secret", "put", "hf", "--type", "static", input=json.dumps({"token": STATIC_VALUE}), check=0)
    acknowledged, refused, errors = [], [], []
    stop = threading.Event()

    def load():
        while not stop.is_set():
            started = time.monotonic()
            status, body = a.http("POST", "/v1/tokens", body={"role": "notebook"}, timeout=30)
            took = time.monotonic() - started
            if status == 200:
                acknowledged.append(body["accessor"])
            elif status == 503:
                refused.append((took, body["error"]["reason"]))
            else:
                errors.append((status, body))
            time.sleep(0.02)

    workers = [threading.Thread(target=load) for _ in range(4)]
    for w in workers:
        w.start()
    try:
        time.sleep(1.5)
        cluster.stop_primary()
        down_at = time.monotonic()
        time.sleep(3)
        # Reads that need no write keep working.
        if a.proc.poll() is not None:
            raise AssertionError("the daemon died while its store was down:\n" + a.read_log()[-3000:])
        try:
            status, body = a.http("GET", "/v1/status")
        except OSError as error:
            log = a.read_log()
            crash = log.find("Crash") if "Crash" in log else log.find("Fatal")
            raise AssertionError(f"status failed ({error}) while the store was down:\n" + log[max(crash - 500, 0):crash + 4000])
        if status != 200 and os.environ.get("MLCRED_TEST_KEEP_LOG"):
            shutil.copy(a.log_path, os.environ["MLCRED_TEST_KEEP_LOG"])
        assert status == 200 and body["sealed"] is False, (status, body)
        assert a.cli("whoami", check=0).returncode == 0
        time.sleep(7)
        cluster.start_primary()
        last = []

        def resumed():
            last[:] = [a.http("POST", "/v1/tokens", body={"role": "notebook"})]
            return last[0][0] == 200
        try:
            wait_for(resumed, 15, "writes to resume", interval=0.2)
        except AssertionError:
            raise AssertionError(f"writes did not resume: last answer {last}; log:\n" + a.read_log()[-2000:])
    finally:
        stop.set()
        for w in workers:
            w.join()
    if os.environ.get("MLCRED_TEST_KEEP_LOG"):
        shutil.copy(a.log_path, os.environ["MLCRED_TEST_KEEP_LOG"])
    assert errors == [], errors[:3]
    assert refused, "no write was refused while the store was down"
    assert all(reason == "store_unavailable" for _, reason in refused), set(r for _, r in refused)
    assert max(took for took, _ in refused) < 2.0, sorted(took for took, _ in refused)[-5:]
    stored = {row[0] for row in f.sql("SELECT accessor FROM tokens")}
    missing = [accessor for accessor in acknowledged if accessor not in stored]
    assert missing == [], f"{len(missing)} acknowledged tokens lost"
    assert "store_unavailable" not in a.read_log() or "heartbeat" in a.read_log()

    # Failover: the standby is promoted and the primary stopped; the URL lists both.
    before = len({row[0] for row in f.sql("SELECT accessor FROM tokens")})
    cluster.stop_primary()
    cluster.promote_standby()
    failed_at = time.monotonic()
    wait_for(lambda: a.http("POST", "/v1/tokens", body={"role": "notebook"})[0] == 200, 10, "service to resume on the promoted standby",
             interval=0.2)
    assert time.monotonic() - failed_at < 10
    after = cluster.sql("SELECT count(*) FROM tokens", standby=True, db=f.database)
    assert int(after[0][0]) > before
    assert a.cli("audit", "verify", check=0).returncode == 0
