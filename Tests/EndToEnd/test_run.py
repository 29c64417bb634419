"""`mlcred run` end to end (SPEC §8): the job's environment, exit codes, revocation when the
job ends, signal forwarding, the daemon revoking the token of a SIGKILLed `run`, output
masking, and the phi and environment rules as `run`, `env` and `token` meet them."""
import json
import os
import re
import signal
import subprocess
from datetime import datetime, timezone

import pytest

from conftest import (DUMP_ENV, MASK, WRITE_REPORT, end_process, one_error_line, parse_time, read_complete, read_json,
                      role_toml, run_job_report, wait_for)

PYTHON = "/usr/bin/python3"
HF_VALUE = "hf_SOMEVALUE123456"

TRACKING = {"secret": "tracking", "type": "jwt", "audience": "mlflow"}
ROLES = {
    "job.toml": role_toml("job", ["uid:0"], TRACKING, {"secret": "hf", "type": "static", "env": {"HF_TOKEN": "token"}},
                          ttl="15m", max_ttl="1h"),
    "phi.toml": role_toml("phi-train", ["uid:0"], {**TRACKING, "env": {"MLFLOW_TRACKING_TOKEN": "token"}}, phi=True, ttl="15m"),
    "prod.toml": role_toml("prod-only", ["uid:0"], TRACKING, environments=["prod"]),
    "short.toml": role_toml("short", ["uid:0"], TRACKING, ttl="3s", max_ttl="1h"),
}


def start_broker(broker_factory, phi=False, phi_secret=False):
    d = broker_factory(ROLES, phi=phi)
    d.cli("secret", "generate", "tracking", "--type", "jwt-signer", *(["--phi"] if phi_secret else []), check=0)
    if not phi:
        d.cli("secret", "put", "hf", "--type", "static", input=json.dumps({"token": HF_VALUE}), check=0)
    return d


@pytest.fixture
def broker(broker_factory, users):
    """A dev daemon (not --phi) with the roles job, phi-train and prod-only, and their secrets."""
    return start_broker(broker_factory)


def process_gone(pid):
    """True once `pid` no longer runs (gone, or a zombie nobody has reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return True


def handles_signal(pid, signum):
    """Whether process `pid` has taken over `signum` (a handler installed, or blocked to be waited for)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
    except FileNotFoundError:
        return False
    bit = 1 << (signum - 1)
    return bool(int(fields["SigCgt"], 16) & bit or int(fields["SigBlk"], 16) & bit)


def parse_rfc3339(text):
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", text), text
    return parse_time(text)


# 1. The job's environment

def test_the_job_sees_its_credentials_the_role_an_absolute_socket_and_an_rfc3339_expiry(broker, scratch):
    # A relative socket path: the job must still get an absolute one.
    _, env = run_job_report(broker, scratch, "job", PYTHON, "-c", DUMP_ENV, timeout=30,
                            cwd=broker.root, env_extra={"MLCRED_SOCKET": os.path.basename(broker.socket)})
    assert env["HF_TOKEN"] == HF_VALUE
    assert env["MLCRED_JWT"].count(".") == 2 and len(env["MLCRED_JWT"]) > 100
    assert re.fullmatch(r"mlc_[0-9A-Za-z]+", env["MLCRED_TOKEN"])
    assert env["MLCRED_ROLE"] == "job"
    # SPEC §8: the job's socket is run's own, in its private directory, gone when run ends.
    assert os.path.isabs(env["MLCRED_SOCKET"]) and os.path.basename(env["MLCRED_SOCKET"]) == "mlcred.sock"
    assert os.path.dirname(env["MLCRED_SOCKET"]) != os.path.dirname(broker.socket)
    assert not os.path.exists(env["MLCRED_SOCKET"])
    expires = parse_rfc3339(env["MLCRED_EXPIRES_AT"])
    remaining = (expires - datetime.now(timezone.utc)).total_seconds()
    assert 14 * 60 - 60 < remaining <= 15 * 60 + 5, env["MLCRED_EXPIRES_AT"]  # the role's ttl = 15m
    # The job's own environment survives (run adds to it, does not replace it).
    assert env["PATH"] == "/usr/bin:/bin" and env["HOME"] == "/nonexistent"


# 2. Exit codes

def test_the_jobs_exit_code_passes_through(broker):
    assert broker.cli("run", "--role", "job", "--", "sh", "-c", "exit 7").returncode == 7
    assert broker.cli("run", "--role", "job", "--", "sh", "-c", "exit 0").returncode == 0
    assert broker.cli("run", "--role", "job", "--", "false").returncode == 1


def test_a_job_killed_by_a_signal_gives_128_plus_the_signal(broker):
    assert broker.cli("run", "--role", "job", "--", "sh", "-c", "kill -TERM $$").returncode == 128 + signal.SIGTERM
    assert broker.cli("run", "--role", "job", "--", "sh", "-c", "kill -KILL $$").returncode == 128 + signal.SIGKILL


def test_a_command_that_does_not_exist_fails_with_one_error_line_and_leaves_no_token(broker):
    for command in ("mlcred-no-such-command-x", "/nonexistent/dir/job"):
        result = broker.cli("run", "--role", "job", "--", command, "arg")
        assert result.returncode == 127, result  # as a shell reports a command not found
        line = one_error_line(result.err)
        assert command in line, line
    assert broker.tokens() == []


# 3. Revocation when the job exits

def test_after_the_job_exits_its_token_and_leases_are_revoked(broker, scratch):
    tokens_file = os.path.join(scratch, "tokens.json")
    leases_file = os.path.join(scratch, "leases.json")
    ppid_file = os.path.join(scratch, "ppid")
    token_file = os.path.join(scratch, "token")
    # The job is root, hence admin: it lists the live tokens and leases while it runs.
    script = ('echo $PPID > "$4"; printf %s "$MLCRED_TOKEN" > "$5"; '
              '"$1" token list --json > "$2" && "$1" lease list --all --json > "$3"')
    result = broker.cli("run", "--role", "job", "--", "sh", "-c", script, "job",
                        broker.mlcred, tokens_file, leases_file, ppid_file, token_file)
    assert result.returncode == 0, result.err
    with open(ppid_file) as f:
        run_pid = int(f.read())
    during = read_json(tokens_file)
    mine = [t for t in during if t["pid"] == run_pid]
    assert len(mine) == 1, during
    token = mine[0]
    accessor = token["accessor"]
    assert token["role"] == "job" and token["bound"] is True and token["state"] == "active"
    with open(leases_file) as f:
        leases_during = [lease for lease in json.load(f) if lease["accessor"] == accessor]
    assert sorted(lease["type"] for lease in leases_during) == ["jwt", "static"], leases_during
    assert all(lease["state"] == "active" for lease in leases_during), leases_during

    # After: the token is no longer live, every lease under it is revoked, the audit says so.
    assert accessor not in {t["accessor"] for t in broker.tokens()}
    after = [lease for lease in broker.leases() if lease["accessor"] == accessor]
    assert {lease["id"] for lease in after} == {lease["id"] for lease in leases_during}
    assert after and all(lease["state"] == "revoked" for lease in after), after
    records = broker.audit(limit=200)
    issued = [r for r in records if r["action"] == "token.issue" and r["accessor"] == accessor]
    assert len(issued) == 1 and issued[0]["result"] == "allowed" and issued[0]["role"] == "job"
    revoked = [r for r in records if r["action"] == "token.revoke" and r["accessor"] == accessor]
    assert revoked and revoked[-1]["result"] == "allowed", [r for r in records if r["accessor"] == accessor]
    # The token text itself is now useless.
    with open(token_file) as f:
        text = f.read()
    assert text.startswith("mlc_")
    status, body = broker.http("POST", "/v1/credentials", body={}, token=text)
    assert status == 401 and body["error"]["code"] == "unauthenticated", body


# Credentials stay valid while the job runs

OUTLIVE = r'''
import json, os, socket, sys, time
from datetime import datetime
first = datetime.fromisoformat(os.environ["MLCRED_EXPIRES_AT"].replace("Z", "+00:00")).timestamp()
deadline = time.time() + 10
while time.time() < first + 1.5 and time.time() < deadline:  # past the token's first expiry
    time.sleep(0.1)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(os.environ["MLCRED_SOCKET"])
s.sendall(("POST /v1/credentials HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n"
           "Authorization: Bearer " + os.environ["MLCRED_TOKEN"] + "\r\n\r\n{}").encode())
data = b""
while chunk := s.recv(65536):
    data += chunk
report = {"first": first, "now": time.time(), "status": int(data.split(b" ")[1])}
''' + WRITE_REPORT


def test_the_token_is_renewed_while_the_job_runs_past_its_first_expiry(broker, scratch):
    _, seen = run_job_report(broker, scratch, "short", PYTHON, "-c", OUTLIVE)
    assert seen["now"] > seen["first"] + 1, seen  # the job really asked after the first expiry
    assert seen["status"] == 200, f"the job's token was not kept valid while it ran: {seen}"
    assert broker.tokens() == []


# 4. Signal forwarding

@pytest.mark.parametrize("name", ["TERM", "INT", "HUP", "QUIT"])
def test_a_signal_sent_to_run_is_forwarded_to_the_job(broker, scratch, name):
    signum = getattr(signal, "SIG" + name)
    marker = os.path.join(scratch, "marker")
    started = os.path.join(scratch, "started")
    script = (f'trap "echo got-{name} > {marker}; exit 3" {name}; '
              f'echo $$ > {started}.tmp && mv {started}.tmp {started}; '
              'while :; do sleep 0.05; done')
    proc = broker.popen_run("job", "sh", "-c", script)
    try:
        wait_for(lambda: read_complete(started), 10, "the job to start")
        # Readiness of run itself: it has taken the signal over (not its default action).
        wait_for(lambda: handles_signal(proc.pid, signum), 5, f"mlcred run to handle SIG{name}")
        os.kill(proc.pid, signum)
        out, err = proc.communicate(timeout=10)
    finally:
        end_process(proc)
    assert proc.returncode == 3, (proc.returncode, err)
    assert read_complete(marker) == f"got-{name}\n"
    assert broker.tokens() == []  # run went through its normal end: revoked


# 5. run killed with SIGKILL

def test_when_run_is_sigkilled_the_daemon_revokes_its_token_and_the_job_dies(broker, scratch):
    pid_file = os.path.join(scratch, "job.pid")
    proc = broker.popen_run("job", "sh", "-c", f'echo $$ > {pid_file}.tmp && mv {pid_file}.tmp {pid_file}; '
                                         'while :; do sleep 0.05; done')
    job_pid = None
    try:
        job_pid = int(wait_for(lambda: read_complete(pid_file), 10, "the job to start"))
        tokens = [t for t in broker.tokens() if t["pid"] == proc.pid]
        assert len(tokens) == 1 and tokens[0]["bound"] is True, tokens
        accessor = tokens[0]["accessor"]
        proc.kill()
        proc.wait(timeout=5)
        wait_for(lambda: accessor not in {t["accessor"] for t in broker.tokens()}, 5,
                 "the daemon to revoke the token of the killed run", interval=0.1)
        wait_for(lambda: process_gone(job_pid), 3, f"job {job_pid} to die with its run (PR_SET_PDEATHSIG)")
    finally:
        end_process(proc)
        if job_pid and not process_gone(job_pid):
            os.kill(job_pid, signal.SIGKILL)
    after = [lease for lease in broker.leases() if lease["accessor"] == accessor]
    assert after and all(lease["state"] == "revoked" for lease in after), after
    revoked = [r for r in broker.audit(limit=200) if r["action"] == "token.revoke" and r["accessor"] == accessor]
    assert revoked, "the daemon's revocation of a vanished run is audited"


# The job's end is the end of run

def test_run_ends_when_the_job_exits_even_if_a_background_child_keeps_writing(broker, scratch):
    """A grandchild that inherited stdout and keeps writing must not keep run (and its token) alive."""
    pid_file = os.path.join(scratch, "writer.pid")
    script = (f"(while :; do echo tick; sleep 0.05; done) & echo $! > {pid_file}.tmp && mv {pid_file}.tmp {pid_file}; "
              "exit 5")
    for extra in (["--no-mask"], []):
        proc = broker.popen("run", "--role", "job", *extra, "--", "sh", "-c", script,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        writer = None
        try:
            writer = int(wait_for(lambda: read_complete(pid_file), 10, "the job to start its writer"))
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"run {extra} still runs 5 s after its job exited, token states "
                                     f"{[t['state'] for t in broker.tokens()]}") from None
            assert proc.returncode == 5, extra
            assert broker.tokens() == [], extra
        finally:
            if writer:
                os.kill(writer, signal.SIGKILL)
            os.unlink(pid_file)
            end_process(proc)


def test_a_job_writing_into_a_closed_pipe_ends_as_it_would_without_run(broker):
    """`mlcred run -- yes | head -1`: when run's stdout reader goes away, the job gets SIGPIPE."""
    for extra in (["--no-mask"], []):
        proc = broker.popen("run", "--role", "job", *extra, "--", "yes", stderr=subprocess.DEVNULL)
        try:
            assert proc.stdout.read(2) == b"y\n"
            proc.stdout.close()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"run {extra} still runs 5 s after its stdout was closed (the job never sees EPIPE)") from None
            assert proc.returncode == 128 + signal.SIGPIPE, (extra, proc.returncode)
            assert broker.tokens() == [], extra
        finally:
            end_process(proc)


# 6. Masking

PIECES = r'''
import os, sys, time
jwt = os.environ["MLCRED_JWT"]
open(sys.argv[1], "w").write(jwt)
for i in range(0, len(jwt), 40):
    sys.stdout.write(jwt[i:i + 40])
    sys.stdout.flush()
    time.sleep(0.2)
sys.stdout.write("\nend of jwt\n")
sys.stdout.write("token=" + os.environ["MLCRED_TOKEN"] + "\n")
sys.stdout.flush()
sys.stderr.write("hf=" + os.environ["HF_TOKEN"] + "\n")
sys.stderr.flush()
'''


def substrings(value, size=20):
    return {value[i:i + size] for i in range(len(value) - size + 1)}


def test_credentials_in_the_jobs_output_are_masked_even_when_written_in_pieces(broker, scratch):
    jwt_file = os.path.join(scratch, "jwt")
    result = broker.cli("run", "--role", "job", "--", PYTHON, "-c", PIECES, jwt_file)
    assert result.returncode == 0, result.err
    with open(jwt_file) as f:
        jwt = f.read()
    assert jwt.count(".") == 2 and len(jwt) > 80  # several 40-character pieces
    assert "end of jwt" in result.out and MASK in result.out.split("end of jwt")[0]
    leaked = [piece for piece in substrings(jwt) if piece in result.out + result.err]
    assert not leaked, f"pieces of the JWT reached run's output: {leaked[:3]}"
    assert "token=" + MASK in result.out and "mlc_" not in result.out
    assert "hf=" + MASK in result.err and HF_VALUE not in result.err + result.out


def test_no_mask_lets_the_values_through(broker, scratch):
    jwt_file = os.path.join(scratch, "jwt")
    result = broker.cli("run", "--role", "job", "--no-mask", "--", PYTHON, "-c", PIECES, jwt_file)
    assert result.returncode == 0, result.err
    with open(jwt_file) as f:
        jwt = f.read()
    assert jwt + "\nend of jwt\n" in result.out
    assert "hf=" + HF_VALUE + "\n" in result.err
    assert MASK not in result.out + result.err


# 7. phi roles

def test_a_phi_role_is_refused_by_a_daemon_without_phi_and_the_denial_is_audited(broker):
    result = broker.cli("run", "--role", "phi-train", "--", "true")
    assert result.returncode == 3, result.err
    line = one_error_line(result.err)
    assert "phi" in line.lower(), line
    denied = [r for r in broker.audit(limit=200) if r["action"] == "token.issue" and r["role"] == "phi-train"]
    assert denied and all(r["result"] == "denied" for r in denied), denied
    assert "phi" in denied[-1]["reason"].lower()
    assert broker.tokens() == []


def test_on_a_phi_daemon_a_phi_role_runs_masked_but_no_mask_env_and_token_are_refused(broker_factory, users, scratch):
    d = start_broker(broker_factory, phi=True, phi_secret=True)
    script = DUMP_ENV + "print('jwt=' + os.environ['MLFLOW_TRACKING_TOKEN'], flush=True)\n"
    result, env = run_job_report(d, scratch, "phi-train", PYTHON, "-c", script)
    assert env["MLCRED_ROLE"] == "phi-train" and env["MLFLOW_TRACKING_TOKEN"].count(".") == 2
    assert "jwt=" + MASK in result.out and env["MLFLOW_TRACKING_TOKEN"] not in result.out
    assert d.tokens() == []

    not_run = os.path.join(scratch, "phi-env-2.json")
    refused = d.cli("run", "--role", "phi-train", "--no-mask", "--", PYTHON, "-c", script, not_run)
    assert refused.returncode == 3, refused.err
    assert "mask" in one_error_line(refused.err)
    assert not os.path.exists(not_run), "the job must not have run"
    assert d.tokens() == [], "the token obtained before refusing --no-mask must be revoked"

    for args in (["env", "--role", "phi-train"], ["env", "--role", "phi-train", "--format", "json"],
                 ["token", "--role", "phi-train"]):
        refused = d.cli(*args)
        assert refused.returncode == 3, (args, refused.err)
        assert "phi" in one_error_line(refused.err).lower()
        assert refused.out == "" and "mlc_" not in refused.out + refused.err
        assert d.tokens() == [], args
    denied = [r for r in d.audit(limit=200) if r["action"] == "token.issue" and r["result"] == "denied"]
    assert len(denied) >= 3


# 8. environments

def test_a_role_limited_to_prod_is_refused_on_a_dev_daemon_naming_the_environment(broker):
    result = broker.cli("run", "--role", "prod-only", "--", "true")
    assert result.returncode == 3, result.err
    line = one_error_line(result.err)
    assert "prod" in line and "dev" in line, line
    denied = [r for r in broker.audit(limit=200) if r["action"] == "token.issue" and r["role"] == "prod-only"]
    assert denied and denied[-1]["result"] == "denied" and "prod" in denied[-1]["reason"]
    assert broker.tokens() == []


def test_a_bad_ttl_is_a_usage_error_before_anything_is_issued(broker):
    for value in ("bogus", "0s", "-5m"):
        assert broker.cli("run", "--role", "job", "--ttl", value, "--", "true").returncode == 2, value
    assert broker.tokens() == []


# 9. parsing: the plain forms of `run` skip ArgumentParser (FastPath); every other form goes
# through it. Both must mean the same.

def test_every_spelling_of_run_means_the_same_and_bad_ones_are_usage_errors(broker):
    show = ["sh", "-c", 'echo "role=$MLCRED_ROLE args=$*"', "sh", "--role", "x", "--"]
    expected = "role=job args=--role x --"
    for spelling in (["run", "--role", "job", "--"] + show,                      # fast path, with --
                     ["run", "--role", "job"] + show,                            # fast path, no --
                     ["run", "--no-mask", "--role", "job", "--ttl", "5m", "--"] + show,
                     ["run", "--socket", broker.socket, "--role", "job", "--"] + show,
                     ["--socket", broker.socket, "run", "--role", "job", "--"] + show,   # global option first
                     ["--socket=" + broker.socket, "run", "--role", "job", "--"] + show,
                     ["run", "--role=job", "--"] + show,                         # ArgumentParser
                     ["run", "--ttl=5m", "--role", "job", "--"] + show):
        result = broker.cli(*spelling)
        assert result.returncode == 0 and result.out.strip() == expected, (spelling, result.out, result.err)
    for spelling in (["run", "--role", "job"],                  # no command
                     ["run", "--role", "job", "--"],            # no command after --
                     ["run", "--", "--role", "job", "true"],    # options after -- are the command's
                     ["run", "--role"],                         # a missing value
                     ["run", "--role", "job", "--bogus", "--", "true"],
                     ["credential-process", "--grant"],
                     ["credential-process", "--bogus"]):
        result = broker.cli(*spelling)
        assert result.returncode == 2, (spelling, result.returncode, result.err)
        assert one_error_line(result.err).startswith("mlcred: error: "), spelling
    helped = broker.cli("run", "--help")
    assert helped.returncode == 0 and "--role" in helped.out and "--no-mask" in helped.out, helped.err
    assert broker.tokens() == []
