"""postgres-role grants end to end against a real PostgreSQL on loopback: `mlcred run` gives the
job a login made for it alone that reads only what the grant allows, the role is dropped when
the job ends (also after a daemon crash and restart, and on an admin's `lease revoke`), a long
job's role is renewed past its first TTL, and bad grants fail clearly without leaving a
half-made role (SPEC §6-§8, issue 4)."""
import json
import os
import subprocess
from datetime import datetime, timezone

import pytest

from conftest import (DUMP_ENV, WRITE_REPORT, assert_still_serving, assert_unreachable_peer_is_a_prompt_clear_error,
                      drop_job_roles, end_process, files_containing, one_error_line, parse_time, read_complete, role_toml,
                      run_job_report, wait_for)
from peers import PG_BROKER

PYTHON = "/usr/bin/python3"
PREFIX = "mlc_"

CREATE = ["CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'",
          "GRANT USAGE ON SCHEMA ml TO \"{{name}}\"",
          "GRANT SELECT ON ml.features TO \"{{name}}\""]
NO_SUCH_TABLE = "GRANT SELECT ON ml.no_such_table TO \"{{name}}\""


def policy_files(group):
    def role(name, grant=None, *more, principals=("uid:0",), secret="warehouse", **settings):
        first = {"secret": secret, "type": "postgres-role", "create": CREATE, **(grant or {})}
        return role_toml(name, list(principals), first, *more, **settings)

    return {
        "analyst.toml": role("analyst", principals=["uid:0", f"group:{group}"], ttl="15m", max_ttl="1h"),
        "short.toml": role("short", ttl="6s", max_ttl="2m"),
        "keep.toml": role("keep", {"revoke": ["REVOKE SELECT ON ml.features FROM \"{{name}}\"",
                                              "ALTER ROLE \"{{name}}\" NOLOGIN"]}, ttl="15m"),
        "broken.toml": role("broken", {"create": [*CREATE[:2], NO_SUCH_TABLE]}),
        "partial.toml": role("partial", {"name": "good", "env": {"GOOD_PGUSER": "user", "GOOD_PGPASSWORD": "password"}},
                             {"name": "bad", "secret": "warehouse", "type": "postgres-role", "create": [CREATE[0], NO_SUCH_TABLE]}),
        "stuck.toml": role("stuck", {"revoke": ["SELECT no_such_function_e2e()"]}),
        "capped.toml": role("capped", ttl="5s", max_ttl="7s"),  # 5 s: run renews at 2/3, with room for a slow role creation
        "wrongtype.toml": role("wrongtype", secret="not-postgres"),
        "unreachable.toml": role("unreachable", secret="warehouse-down"),
    }


@pytest.fixture
def broker(broker_factory, users, postgres):
    """A daemon with the roles above, the `warehouse` secret (the broker login) and two bad ones.
    Any mlc_ role a failed test left behind is dropped afterwards."""
    d = broker_factory(policy_files(users["ml_group"]))
    d.cli("secret", "put", "warehouse", "--type", "postgres", input=json.dumps(postgres.secret_fields()), check=0)
    d.cli("secret", "put", "warehouse-down", "--type", "postgres",
          input=json.dumps({**postgres.secret_fields(), "port": 1}), check=0)
    d.cli("secret", "put", "not-postgres", "--type", "aws",
          input=json.dumps({"access_key_id": "AKIAE2ENOTPOSTGRES00", "secret_access_key": "not-postgres-secret"}),
          check=0)
    yield d
    d.stop()
    drop_job_roles(postgres, PREFIX)


def lease_for(d, name, all=True):
    found = [lease for lease in d.leases(all=all) if lease["provider_id"] == name]
    assert len(found) <= 1, found
    return found[0] if found else None


def role_gone(postgres, name, timeout=10):
    """Revocation happens right after the job exits: poll pg_roles briefly."""
    wait_for(lambda: name not in postgres.roles(name), timeout, f"role {name} to be dropped", interval=0.1)


# A job that publishes its PGUSER (atomically) and then waits until the test creates `release`.
WAITING_JOB = ('printf %s "$PGUSER" > "$1.tmp" && mv "$1.tmp" "$1"; '
               'while [ ! -e "$2" ]; do sleep 0.05; done')


class WaitingJob:
    def __init__(self, d, scratch, role="analyst"):
        self.user_file = os.path.join(scratch, "pguser")
        self.release_file = os.path.join(scratch, "release")
        self.proc = d.popen_run(role, "sh", "-c", WAITING_JOB, "job", self.user_file, self.release_file)
        self.name = wait_for(lambda: read_complete(self.user_file) or self._died(), 20, "the job to start")

    def _died(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"run exited with {self.proc.returncode}: {self.proc.stderr.read().decode()}")
        return None

    def release(self, timeout=30):
        with open(self.release_file, "w"):
            pass
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, err.decode(errors="replace")

    def kill(self):
        end_process(self.proc)


@pytest.fixture
def jobs():
    made = []
    yield lambda *args, **kwargs: made.append(WaitingJob(*args, **kwargs)) or made[-1]
    for job in made:
        job.kill()


# 1. What the job gets

def test_the_job_gets_pg_variables_for_a_login_made_for_it_alone(broker, postgres, scratch):
    _, env = run_job_report(broker, scratch, "analyst", PYTHON, "-c", DUMP_ENV)
    assert env["PGHOST"] == postgres.host and env["PGPORT"] == str(postgres.port)
    assert env["PGDATABASE"] == postgres.dbname and env["PGSSLMODE"] == "disable"
    assert env["PGUSER"].startswith(PREFIX + "analyst_") and env["PGUSER"] != postgres.broker_user
    assert len(env["PGPASSWORD"]) >= 32 and env["PGPASSWORD"] != postgres.broker_password
    assert not any(postgres.broker_password in value for value in env.values())
    assert env["MLCRED_ROLE"] == "analyst" and env["MLCRED_TOKEN"].startswith("mlc_")
    assert env["MLCRED_SOCKET"].endswith("/mlcred.sock") and env["MLCRED_EXPIRES_AT"]
    role_gone(postgres, env["PGUSER"])


def test_run_psql_select_current_user_works_as_the_jobs_own_role(broker, postgres):
    result = broker.cli("run", "--role", "analyst", "--no-mask", "--", "psql", "-X", "-At", "-c", "select current_user")
    assert result.returncode == 0, result.err
    name = result.out.strip()
    assert name.startswith(PREFIX + "analyst_"), result.out
    role_gone(postgres, name)


def test_the_job_reads_ml_features_but_not_phi_patients(broker):
    ok = broker.cli("run", "--role", "analyst", "--", "psql", "-X", "-At", "-c", "select count(*) from ml.features")
    assert ok.returncode == 0, ok.err
    assert ok.out.strip() == "3"
    denied = broker.cli("run", "--role", "analyst", "--", "psql", "-X", "-At", "-c", "select * from phi.patients")
    assert denied.returncode != 0
    assert "permission denied for schema phi" in denied.err, denied.err
    assert "MRN-" not in denied.out
    # Nor can it widen its own rights.
    widen = broker.cli("run", "--role", "analyst", "--", "sh", "-c",
                       'psql -X -At -c "GRANT SELECT ON phi.patients TO \\"$PGUSER\\""')
    assert widen.returncode != 0, widen.out


# 2. The role lives and dies with the job

def test_lease_list_shows_the_role_while_the_job_runs_and_it_is_dropped_after(broker, postgres, scratch, jobs):
    job = jobs(broker, scratch)
    assert job.name.startswith(PREFIX + "analyst_")
    assert postgres.roles(job.name) == [job.name]
    lease = lease_for(broker, job.name, all=False)
    assert lease is not None, broker.leases(all=False)
    assert (lease["role"], lease["grant"], lease["type"], lease["state"]) == ("analyst", "warehouse", "postgres-role", "active")
    assert lease["last_error"] is None and lease["accessor"]
    expires = parse_time(lease["expires_at"])
    assert 13 * 60 < (expires - datetime.now(timezone.utc)).total_seconds() <= 15 * 60 + 5
    # VALID UNTIL is the lease's expiry.
    assert abs(postgres.role_valid_until(job.name) - expires.timestamp()) <= 2

    code, err = job.release()
    assert code == 0, err
    role_gone(postgres, job.name)
    assert lease_for(broker, job.name, all=False) is None
    assert lease_for(broker, job.name)["state"] == "revoked"
    ended = [r for r in broker.audit(limit=200) if job.name in (r.get("reason") or "")]
    assert ended, "issuing and ending the role are audited"


def test_a_grants_own_revoke_statements_are_used_instead_of_the_default(broker, postgres, scratch):
    name = run_job_report(broker, scratch, "keep", PYTHON, "-c", DUMP_ENV)[1]["PGUSER"]
    wait_for(lambda: postgres.sql(f"SELECT rolcanlogin FROM pg_roles WHERE rolname = '{name}'") == [("f",)], 10,
             "the custom revoke statements to run")
    assert postgres.sql(f"SELECT has_table_privilege('{name}', 'ml.features', 'SELECT')") == [("f",)]
    assert lease_for(broker, name)["state"] == "revoked"


LONG_JOB = r'''
import json, os, subprocess, sys, time
from datetime import datetime
QUERY = "select current_user, extract(epoch from rolvaliduntil) from pg_roles where rolname = current_user"
def psql():
    r = subprocess.run(["psql", "-X", "-At", "-c", QUERY], capture_output=True, text=True)
    return {"rc": r.returncode, "out": r.stdout.strip(), "err": r.stderr.strip(), "at": time.time()}
first_expiry = datetime.fromisoformat(os.environ["MLCRED_EXPIRES_AT"].replace("Z", "+00:00")).timestamp()
before = psql()
deadline = time.time() + 30
while time.time() < first_expiry + 2 and time.time() < deadline:
    time.sleep(0.1)
after = psql()
report = {"first_expiry": first_expiry, "before": before, "after": after}
''' + WRITE_REPORT


def test_a_long_jobs_role_is_renewed_and_still_logs_in_after_its_first_ttl(broker, postgres, scratch):
    _, seen = run_job_report(broker, scratch, "short", PYTHON, "-c", LONG_JOB)
    first = seen["first_expiry"]
    assert seen["before"]["rc"] == 0, seen
    assert seen["after"]["at"] > first + 1, f"the job did not outlive the first TTL: {seen}"
    assert seen["after"]["rc"] == 0, f"the role could not log in after its first TTL: {seen}"
    name, valid_until = seen["after"]["out"].split("|")
    assert name == seen["before"]["out"].split("|")[0], "the same role, renewed, not a new one"
    assert float(valid_until) > first + 1, f"VALID UNTIL was not moved: {seen}"
    assert float(seen["before"]["out"].split("|")[1]) <= first + 1
    role_gone(postgres, name)
    lease = lease_for(broker, name)
    assert lease["state"] == "revoked"


# 3. Revocation survives a daemon crash; an admin can revoke

def test_killing_the_daemon_mid_job_and_restarting_it_still_drops_the_role(broker, postgres, scratch, jobs):
    job = jobs(broker, scratch)
    lease_id = lease_for(broker, job.name, all=False)["id"]
    broker.kill9()
    broker.start()
    assert broker.unseal().returncode == 0
    assert postgres.roles(job.name) == [job.name], "the job still runs: its role stays"
    assert lease_for(broker, job.name, all=False)["id"] == lease_id, "the lease survived the crash"

    code, err = job.release()
    assert code == 0, err
    role_gone(postgres, job.name, timeout=30)
    assert lease_for(broker, job.name)["state"] == "revoked"


def test_a_run_killed_while_the_daemon_is_down_has_its_role_dropped_after_the_next_unseal(broker, postgres, scratch, jobs):
    job = jobs(broker, scratch)
    broker.kill9()
    job.kill()  # run gone (SIGKILL): nobody but the daemon can revoke now
    assert postgres.roles(job.name) == [job.name]
    broker.start()
    assert broker.unseal().returncode == 0
    role_gone(postgres, job.name, timeout=15)
    assert lease_for(broker, job.name)["state"] == "revoked"


def test_an_admin_lease_revoke_drops_the_role_and_ends_its_sessions_at_once(broker, postgres, scratch):
    user_file = os.path.join(scratch, "pguser")
    rc_file = os.path.join(scratch, "psql-rc")
    job = ('printf %s "$PGUSER" > "$1.tmp" && mv "$1.tmp" "$1"; '
           'psql -X -q -c "select pg_sleep(120)" >/dev/null 2>&1; echo $? > "$2"')
    proc = broker.popen_run("analyst", "sh", "-c", job, "job", user_file, rc_file)
    try:
        name = wait_for(lambda: read_complete(user_file), 20, "the job to start")
        wait_for(lambda: postgres.sql(f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{name}'") == [("1",)],
                 20, "the job's session")
        lease = lease_for(broker, name, all=False)
        revoked = broker.cli("lease", "revoke", lease["id"])
        assert revoked.returncode == 0, revoked.err
        assert postgres.roles(name) == [], "lease revoke returns once the role is dropped"
        assert lease_for(broker, name)["state"] == "revoked"
        # The job's open session was terminated: its psql ends long before its 120 s sleep.
        proc.wait(timeout=20)
        assert read_complete(rc_file).strip() != "0"
    finally:
        end_process(proc)


def test_non_admins_may_not_list_or_revoke_leases(broker, users):
    for args in (["lease", "list", "--json"], ["lease", "revoke", "nonexistent"]):
        assert broker.cli(*args, user=users["ml"]).returncode == 3, args


def test_neither_the_broker_password_nor_a_roles_password_reach_the_log_or_the_state(broker, postgres, scratch):
    role_password = run_job_report(broker, scratch, "analyst", PYTHON, "-c", DUMP_ENV)[1]["PGPASSWORD"]
    broker.cli("env", "--role", "broken")  # an error path too
    broker.stop()
    paths = broker.written_files()
    for needle in (postgres.broker_password, role_password):
        assert files_containing(needle, paths) == []
    assert not any(postgres.broker_password in output for output in broker.outputs)


# 4. Bad input

def test_a_failing_create_statement_is_a_clear_error_and_leaves_no_role(broker, postgres, scratch):
    before = set(postgres.roles(PREFIX))
    refused = broker.cli("env", "--role", "broken")
    assert refused.returncode == 1, refused.err
    line = one_error_line(refused.err)
    assert "no_such_table" in line, line
    assert postgres.broker_password not in refused.err and refused.out == ""
    marker = os.path.join(scratch, "ran")
    refused = broker.cli("run", "--role", "broken", "--", "touch", marker)
    assert refused.returncode == 1, refused.err
    assert "no_such_table" in one_error_line(refused.err)
    assert not os.path.exists(marker), "the job must not run without its credentials"
    assert set(postgres.roles(PREFIX)) == before, "a half-made role was left behind"
    assert not [lease for lease in broker.leases() if lease["role"] == "broken" and lease["state"] == "active"]
    assert broker.tokens() == []
    assert_still_serving(broker)


def test_a_postgres_grant_naming_an_aws_secret_is_refused_clearly(broker, postgres):
    before = set(postgres.roles(PREFIX))
    refused = broker.cli("run", "--role", "wrongtype", "--", "true")
    assert refused.returncode == 1, refused.err
    line = one_error_line(refused.err)
    assert "not-postgres" in line and "aws" in line, line
    assert "not-postgres-secret" not in refused.err
    assert set(postgres.roles(PREFIX)) == before
    assert_still_serving(broker)


def test_an_unreachable_database_is_a_prompt_clear_error(broker):
    assert_unreachable_peer_is_a_prompt_clear_error(broker)


def test_a_request_that_fails_part_way_drops_the_roles_it_already_made(broker, postgres):
    before = set(postgres.roles(PREFIX))
    refused = broker.cli("env", "--role", "partial")
    assert refused.returncode == 1, refused.err
    assert "no_such_table" in one_error_line(refused.err)
    assert set(postgres.roles(PREFIX)) == before, "the role made for the first grant was left behind"
    made = [lease for lease in broker.leases() if lease["role"] == "partial"]
    assert [lease["grant"] for lease in made] == ["good"], made
    assert made[0]["state"] == "revoked", made
    assert_still_serving(broker)


def audit_records(d):
    return [json.loads(line) for line in d.cli("audit", "export", check=0).out.splitlines() if line.strip()]


def test_a_revocation_that_fails_stays_visible_and_is_retried_until_it_succeeds(broker, postgres, scratch, jobs):
    from peers import quote_literal
    job = jobs(broker, scratch)
    # The broker's login stops working: the role cannot be dropped when the job ends.
    postgres.sql(f"ALTER ROLE {PG_BROKER} PASSWORD {quote_literal('mlcred-t-changed-for-now')}")
    try:
        code, err = job.release()
        assert code == 0, err
        failed = wait_for(lambda: (lease := lease_for(broker, job.name, all=False)) and lease["state"] == "revoke_failed" and lease,
                          15, "the lease to show its failed revocation")
        assert "password authentication failed" in failed["last_error"], failed
        assert postgres.roles(job.name) == [job.name]
        assert postgres.broker_password not in json.dumps(failed)
        pending = subprocess.run(["curl", "-s", "--unix-socket", broker.socket, "http://x/v1/metrics"],
                                 capture_output=True, text=True).stdout
        assert "mlcred_leases_revocation_pending 1" in pending, pending
        errors = [r for r in audit_records(broker) if r["action"] == "provider.revoke" and r["result"] == "error"]
        assert errors and "next attempt" in errors[-1]["reason"], errors
    finally:
        postgres.sql(f"ALTER ROLE {PG_BROKER} PASSWORD {quote_literal(postgres.broker_password)}")
    # Fixed: the sweeper's next attempt (backoff 1, 2, 4 ... s) drops the role.
    role_gone(postgres, job.name, timeout=30)
    lease = wait_for(lambda: (found := lease_for(broker, job.name)) and found["state"] == "revoked" and found, 10, "the lease to be revoked")
    assert lease["last_error"] is None
    done = [r for r in audit_records(broker) if r["action"] == "provider.revoke" and r["result"] == "allowed"]
    assert any(job.name in r["reason"] for r in done), done



def test_a_revocation_that_fails_after_the_lockout_leaves_a_login_that_no_longer_works(broker, postgres, scratch, jobs):
    job = jobs(broker, scratch, role="stuck")
    code, err = job.release()
    assert code == 0, err
    assert "is not revoked at its provider yet" in err and "no_such_function_e2e" in err, err
    assert lease_for(broker, job.name, all=False)["state"] == "revoke_failed"
    assert postgres.roles(job.name) == [job.name], "its revoke statements failed: the role stays"
    password_hint = postgres.sql(f"SELECT rolcanlogin FROM pg_roles WHERE rolname = '{job.name}'")
    assert password_hint == [("f",)], "the lockout (NOLOGIN) was committed before the failing statements"


def test_a_secret_that_now_points_elsewhere_does_not_count_a_missing_role_as_revoked(broker, postgres, scratch, jobs):
    job = jobs(broker, scratch)
    elsewhere = {**postgres.secret_fields(), "port": 1}
    assert broker.cli("secret", "put", "warehouse", "--type", "postgres", input=json.dumps(elsewhere)).returncode == 0
    try:
        code, err = job.release()
        assert code == 0, err
        assert "now points to 127.0.0.1:1/" in err, err
        lease = lease_for(broker, job.name, all=False)
        assert lease["state"] == "revoke_failed" and "was made on" in lease["last_error"], lease
        assert postgres.roles(job.name) == [job.name]
        refused = broker.cli("secret", "rm", "warehouse")
        assert refused.returncode == 1 and "needed to revoke 1 live lease" in refused.err, refused.err
    finally:
        # Put back as it was: the failed revocation is retried at once, not after its backoff.
        assert broker.cli("secret", "put", "warehouse", "--type", "postgres",
                          input=json.dumps(postgres.secret_fields())).returncode == 0
    role_gone(postgres, job.name, timeout=10)
    assert lease_for(broker, job.name)["state"] == "revoked"


def test_parallel_jobs_each_get_their_own_role_and_none_is_left(broker, postgres):
    before = set(postgres.roles(PREFIX))
    procs = [broker.popen_run("analyst", "psql", "-X", "-At", "-c", "SELECT count(*) FROM ml.features") for _ in range(10)]
    results = [(p.wait(timeout=120), p.stdout.read().decode(), p.stderr.read().decode()) for p in procs]
    failures = [r for r in results if r[0] != 0]
    assert failures == [], failures
    assert all(r[1].strip() == "3" for r in results), results
    wait_for(lambda: set(postgres.roles(PREFIX)) == before, 20, "every role to be dropped")


def test_a_burst_of_jobs_queues_for_broker_connections_instead_of_failing(broker, postgres):
    # The broker login may hold only 8 sessions; 30 jobs start at once. The daemon opens at most
    # 8 broker connections per server and login and queues the rest, so none fails with 53300.
    postgres.sql(f"ALTER ROLE {postgres.broker_user} CONNECTION LIMIT 8")
    try:
        before = set(postgres.roles(PREFIX))
        procs = [broker.popen_run("analyst", "psql", "-X", "-At", "-c", "SELECT 1") for _ in range(30)]
        results = [(p.wait(timeout=180), p.stdout.read().decode(), p.stderr.read().decode()) for p in procs]
        failures = [r for r in results if r[0] != 0 or r[1].strip() != "1"]
        assert failures == [], failures[:3]
        wait_for(lambda: set(postgres.roles(PREFIX)) == before, 60, "every role to be dropped")
    finally:
        postgres.sql(f"ALTER ROLE {postgres.broker_user} CONNECTION LIMIT -1")


def test_run_warns_when_the_token_reaches_max_ttl(broker):
    result = broker.cli("run", "--role", "capped", "--", "sleep", "8")
    assert result.returncode == 0, result.err
    assert "reached the role's max_ttl" in result.err, result.err


def test_the_server_gets_a_scram_verifier_never_the_roles_password(broker, postgres, scratch):
    # Statement logging on for this database: what the broker sends is written to the server log.
    postgres.sql(f"ALTER DATABASE {postgres.dbname} SET log_statement = 'ddl'", db="postgres")
    try:
        _, job_env = run_job_report(broker, scratch, "analyst", PYTHON, "-c", DUMP_ENV)
    finally:
        postgres.sql(f"ALTER DATABASE {postgres.dbname} RESET log_statement", db="postgres")
    with open(postgres.log_path, errors="replace") as f:
        log = f.read()
    assert f'CREATE ROLE "{job_env["PGUSER"]}"' in log, "the create statement was logged"
    assert "PASSWORD 'SCRAM-SHA-256$4096:" in log
    assert job_env["PGPASSWORD"] not in log


# Issue 15: secret rotate for postgres secrets

def test_secret_rotate_changes_the_brokers_password_and_the_old_one_stops_working(broker, postgres):
    login = "rotating_" + os.urandom(3).hex()
    old_password = "OldPassword" + os.urandom(4).hex()
    postgres.sql(f"CREATE ROLE {login} LOGIN CREATEROLE PASSWORD '{old_password}'")
    fields = {**postgres.secret_fields(), "user": login, "password": old_password}
    broker.cli("secret", "put", "pg-rotating", "--type", "postgres", input=json.dumps(fields), check=0)
    with open(os.path.join(broker.policies, "rotating.toml"), "w") as f:
        f.write(role_toml("rotating", ["uid:0"], {"secret": "pg-rotating", "type": "postgres-role", "create": [
            "CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'"]}))
    os.chmod(os.path.join(broker.policies, "rotating.toml"), 0o644)
    broker.cli("policy", "reload", check=0)
    result = broker.cli("secret", "rotate", "pg-rotating", "--json")
    assert result.returncode == 0, result.err
    answer = json.loads(result.out)
    assert answer["version"] == 2 and answer["replaced"] == "password" and answer["old_removed"] is True, answer
    refused = postgres.psql_tcp(login, old_password, "SELECT 1")
    assert refused.returncode != 0 and "password authentication failed" in refused.stderr, refused.stderr
    # New leases work: the broker logs in with the new password (sent to the server only as its
    # SCRAM verifier) and makes a role for the job.
    env = json.loads(broker.cli("env", "--role", "rotating", "--format", "json", check=0).out)
    assert postgres.psql_tcp(env["PGUSER"], env["PGPASSWORD"], "SELECT 1").returncode == 0
    verifier = postgres.sql(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{login}'", db="postgres")[0][0]
    assert verifier.startswith("SCRAM-SHA-256$4096:"), verifier
    record = [r for r in broker.audit(limit=100) if r["action"] == "secret.rotate"][-1]
    assert record["result"] == "allowed" and f"new password for login {login}" in record["reason"]
    assert old_password not in result.out + result.err
    assert files_containing(old_password, broker.written_files()) == []
    broker.cli("token", "revoke", "--current", env_extra={"MLCRED_TOKEN": env["MLCRED_TOKEN"]}, check=0)
