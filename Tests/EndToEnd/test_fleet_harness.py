"""Self-test of fleet_pg.StoreCluster, the PostgreSQL store the fleet tests share: TLS with the
test CA (and not with another), streaming synchronous replication, fail-over by promotion.
Needs root (a system user runs PostgreSQL, entered with setpriv), not the mlcred binaries.

The tests share one cluster and run in file order: the last one stops the primary for good."""
import os
import stat
import urllib.parse

import pytest

from conftest import is_root, wait_for

pytestmark = pytest.mark.skipif(not is_root(), reason="running PostgreSQL as its own system user needs root "
                                                      "(useradd, setpriv); CI runs as root")


@pytest.fixture(scope="module")
def cluster():
    from fleet_pg import StoreCluster
    c = StoreCluster.start(standby=True, tls=True)
    yield c
    c.stop()
    assert not os.path.exists(c.base) and not os.path.exists(c.public_dir)


def test_tls_verify_full_with_the_test_ca_only(cluster):
    for path in (cluster.ca_path, cluster.wrong_ca_path):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o755
    for host in ("localhost", "127.0.0.1"):  # the certificate names both (CN/SAN DNS, SAN IP)
        ok = cluster.psql_tcp("SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", host=host,
                              sslmode="verify-full", sslrootcert=cluster.ca_path)
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.strip() == "mlcred|t"
    wrong = cluster.psql_tcp("SELECT 1", sslmode="verify-full", sslrootcert=cluster.wrong_ca_path)
    assert wrong.returncode != 0
    assert "certificate verify failed" in wrong.stderr, wrong.stderr
    bad_password = cluster.psql_tcp("SELECT 1", password="not-" + cluster.password)
    assert bad_password.returncode != 0 and "password authentication failed" in bad_password.stderr
    plain = cluster.psql_tcp("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", sslmode="disable")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip() == "f"
    # The role owns its database and nothing more.
    assert cluster.sql("SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication FROM pg_roles "
                       "WHERE rolname = 'mlcred'") == [("f", "f", "f", "f")]
    owns = cluster.psql_tcp("CREATE SCHEMA fleet_probe; CREATE TABLE fleet_probe.t (x int); DROP SCHEMA fleet_probe CASCADE")
    assert owns.returncode == 0, owns.stderr


def test_url_reaches_the_writable_server_without_a_password_inside(cluster, tmp_path):
    url = cluster.url()
    parts = urllib.parse.urlsplit(url)
    assert parts.scheme == "postgres" and parts.username == "mlcred" and parts.password is None
    assert cluster.password not in url
    assert parts.netloc == f"mlcred@127.0.0.1:{cluster.port},127.0.0.1:{cluster.standby_port}"
    assert urllib.parse.parse_qs(parts.query) == {"target_session_attrs": ["read-write"], "sslmode": ["verify-full"],
                                                  "sslrootcert": [cluster.ca_path]}
    assert "sslrootcert" not in cluster.url(sslmode="disable")
    # libpq takes the same URL: standby first, target_session_attrs=read-write picks the primary.
    reversed_url = cluster.url(hosts=[cluster.standby_port, cluster.port])
    result = cluster.psql_tcp("SELECT pg_is_in_recovery(), inet_server_port()",
                              dsn=reversed_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"f|{cluster.port}"
    path = cluster.write_password_file(str(tmp_path / "password"))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert open(path).read() == cluster.password


def test_synchronous_replication_to_the_standby(cluster, tmp_path):
    assert cluster.replication() == [("standby1", "streaming", "sync")]
    assert cluster.in_recovery(standby=True) and not cluster.in_recovery()
    written = cluster.psql_tcp("CREATE TABLE fleet_rows (id int PRIMARY KEY, note text); "
                               "INSERT INTO fleet_rows VALUES (1, 'from the primary')")
    assert written.returncode == 0, written.stderr
    # synchronous_commit=on waits for the standby's flush, not its replay: poll for the row.
    def on_standby():
        try:
            return cluster.sql("SELECT note FROM fleet_rows WHERE id = 1", standby=True) == [("from the primary",)]
        except RuntimeError:  # the table is not replayed yet
            return False
    wait_for(on_standby, 10, "the row inserted on the primary to show on the standby")
    refused = cluster.psql_tcp("INSERT INTO fleet_rows VALUES (2, 'x')", standby=True)
    assert refused.returncode != 0 and "read-only transaction" in refused.stderr
    dump = open(cluster.pg_dump(str(tmp_path / "dump.sql"))).read()
    assert "CREATE TABLE public.fleet_rows" in dump and "from the primary" in dump


def test_promoted_standby_takes_writes_after_the_primary_stops(cluster):
    cluster.stop_primary()
    cluster.promote_standby()
    assert not cluster.in_recovery(standby=True)
    written = cluster.psql_tcp("INSERT INTO fleet_rows VALUES (2, 'after fail-over') RETURNING id", standby=True)
    assert written.returncode == 0, written.stderr
    assert cluster.sql("SELECT id, note FROM fleet_rows ORDER BY id", standby=True) == [
        ("1", "from the primary"), ("2", "after fail-over")]
    # The default URL (primary first, now down) reaches the promoted standby.
    result = cluster.psql_tcp("SELECT inet_server_port()", dsn=cluster.url())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(cluster.standby_port)
