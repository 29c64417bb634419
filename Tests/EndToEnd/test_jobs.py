"""Jobs as teams run them (issue 14) and what a job's own process could leak (issue 13, findings
3-5): several roles in one `run`, the job's socket that `run` serves, masking across stdout and
stderr and at the end of the output, and the job's private directory."""
import grp
import json
import os
import subprocess
import tempfile
from datetime import datetime, timezone

import pytest

from conftest import (DUMP_ENV, MASK, NONADMIN_USER, ML_USER, SOURCE_BIN_DIR, WRITE_REPORT, as_user, is_root, one_error_line, parse_time,
                      read_json, role_toml, wait_for)

PYTHON = "/usr/bin/python3"
HF_VALUE = "hf_JOBSVALUE123456789"
WANDB_VALUE = "wandb_JOBSVALUE987654321"
TRACKING = {"secret": "tracking", "type": "jwt", "audience": "mlflow"}

ROLES = {
    "train.toml": role_toml("train", ["uid:0", "group:mlcred-t-ml"], TRACKING,
                            {"secret": "hf", "type": "static", "env": {"HF_TOKEN": "token"}}, ttl="15m"),
    "tracking.toml": role_toml("tracking", ["uid:0", "group:mlcred-t-ml"],
                               {"secret": "wandb", "type": "static", "env": {"WANDB_API_KEY": "token"}}, ttl="10m"),
    "clash.toml": role_toml("clash", ["uid:0"], {"secret": "wandb", "type": "static", "env": {"HF_TOKEN": "token"}}),
    "phi.toml": role_toml("phi-notes", ["uid:0"], {**TRACKING, "env": {"NOTES_JWT": "token"}}, phi=True),
}


@pytest.fixture
def broker(broker_factory, users):
    d = broker_factory(ROLES, phi=True)
    d.cli("secret", "generate", "tracking", "--type", "jwt-signer", check=0)
    d.cli("secret", "put", "hf", "--type", "static", input=json.dumps({"token": HF_VALUE}), check=0)
    d.cli("secret", "put", "wandb", "--type", "static", input=json.dumps({"token": WANDB_VALUE}), check=0)
    return d


def job(scratch, text):
    path = os.path.join(scratch, "job.py")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path


# Several roles

def test_several_roles_give_the_job_each_roles_variables_and_all_tokens_end_with_it(broker, scratch):
    handle, report = tempfile.mkstemp(dir=scratch, suffix=".json")
    os.close(handle)
    os.unlink(report)
    result = broker.cli("run", "--role", "train", "--role", "tracking", "--", PYTHON, "-c", DUMP_ENV, report)
    assert result.returncode == 0, result.err
    env = read_json(report)
    assert env["HF_TOKEN"] == HF_VALUE and env["WANDB_API_KEY"] == WANDB_VALUE
    assert env["MLCRED_JWT"].count(".") == 2
    assert env["MLCRED_ROLE"] == "train,tracking"
    # The earliest expiry: tracking's 10 minutes, not train's 15.
    left = (parse_time(env["MLCRED_EXPIRES_AT"]) - datetime.now(timezone.utc)).total_seconds()
    assert 8 * 60 < left <= 10 * 60, env["MLCRED_EXPIRES_AT"]
    issued = [r for r in broker.audit(limit=100) if r["action"] == "token.issue" and r["result"] == "allowed"]
    assert {r["role"] for r in issued[-2:]} == {"train", "tracking"}
    revoked = [r for r in broker.audit(limit=100) if r["action"] == "token.revoke"]
    assert {r["accessor"] for r in revoked} >= {r["accessor"] for r in issued[-2:]}, "both tokens revoked"
    assert broker.tokens() == []


def test_the_job_token_serves_every_roles_grants_through_runs_socket(broker, scratch):
    text = r'''
import json, os, socket, sys
def post(path, body):
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.environ["MLCRED_SOCKET"])
    data = json.dumps(body).encode()
    s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\nAuthorization: Bearer %s\r\n\r\n"
               % (path, len(data), os.environ["MLCRED_TOKEN"])).encode() + data)
    answer = b""
    while chunk := s.recv(65536):
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)
status, body = post("/v1/credentials", {"grants": ["wandb"]})
report = {"status": status, "has_wandb": body.get("env", {}).get("WANDB_API_KEY") == os.environ["WANDB_API_KEY"]}
''' + WRITE_REPORT
    handle, report = tempfile.mkstemp(dir=scratch, suffix=".json")
    os.close(handle)
    os.unlink(report)
    result = broker.cli("run", "--role", "train", "--role", "tracking", "--", PYTHON, job(scratch, text), report)
    assert result.returncode == 0, result.err
    assert read_json(report) == {"status": 200, "has_wandb": True}


def test_a_variable_two_roles_set_is_refused_naming_it_and_nothing_is_left(broker):
    result = broker.cli("run", "--role", "train", "--role", "clash", "--", "true")
    assert result.returncode == 1
    line = one_error_line(result.err)
    assert "roles 'train' and 'clash' both set HF_TOKEN" in line, line
    assert broker.tokens() == []


def test_a_phi_role_in_the_set_makes_the_whole_run_phi(broker):
    refused = broker.cli("run", "--role", "train", "--role", "phi-notes", "--no-mask", "--", "true")
    assert refused.returncode == 3 and "phi role 'phi-notes'" in refused.err, refused.err
    shown = broker.cli("run", "--role", "train", "--role", "phi-notes", "--", "/bin/sh", "-c", "echo $HF_TOKEN")
    assert shown.returncode == 0, shown.err
    assert shown.out.strip() == MASK, shown.out
    assert broker.tokens() == []


# Masking (issue 13 findings 4 and 5)

def test_a_value_split_between_stdout_and_stderr_is_masked_in_a_2_to_1_log(broker):
    half = len(HF_VALUE) // 2
    script = (f"printf '%s' \"${{HF_TOKEN%{HF_VALUE[half:]}}}\"; sleep 0.2; "
              f"printf '%s\\n' \"${{HF_TOKEN#{HF_VALUE[:half]}}}\" >&2")
    combined = subprocess.run([broker.mlcred, "run", "--role", "train", "--", "/bin/sh", "-c", script],
                              env=broker.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    assert combined.returncode == 0
    text = combined.stdout.decode()
    assert HF_VALUE not in text and MASK in text, repr(text)


def test_a_value_cut_short_at_the_end_of_the_output_is_masked_not_flushed(broker):
    prefix = HF_VALUE[:12]
    result = broker.cli("run", "--role", "train", "--", "/bin/sh", "-c", f"printf '%s' '{prefix}'")
    assert result.returncode == 0
    assert prefix not in result.out and result.out == MASK, repr(result.out)


def test_credentials_the_job_fetches_itself_through_its_socket_are_masked(broker):
    """docs/run.md's refresh: curl through MLCRED_SOCKET prints a fresh JWT, masked because it
    passed through run's socket."""
    script = ('curl -s --unix-socket "$MLCRED_SOCKET" -X POST -H "Authorization: Bearer $MLCRED_TOKEN" '
              '-d \'{"grants": ["tracking"]}\' http://mlcred/v1/credentials')
    result = broker.cli("run", "--role", "train", "--", "/bin/sh", "-c", script)
    assert result.returncode == 0, result.err
    answer = json.loads(result.out)
    assert answer["env"]["MLCRED_JWT"] == MASK, answer
    assert "eyJ" not in result.out


# The job's private directory and who answers credential-process (issue 13 finding 3)

needs_root = pytest.mark.skipif(not is_root(), reason="needs root: runs as test users")


@needs_root
def test_an_xdg_runtime_dir_others_may_write_is_not_used_for_the_jobs_files(broker, users, workdir):
    runtime = tempfile.mkdtemp(prefix="xdg-", dir=workdir)
    subprocess.run(["chown", ML_USER, runtime], check=True)
    os.chmod(runtime, 0o777)  # the user's own, but another user may rename what is in it
    report = os.path.join(runtime, "report.json")
    result = broker.cli("run", "--role", "train", "--", PYTHON, "-c", DUMP_ENV, report, user=ML_USER,
                        env_extra={"XDG_RUNTIME_DIR": runtime})
    assert result.returncode == 0, result.err
    env = read_json(report)
    assert not env["MLCRED_SOCKET"].startswith(runtime), env["MLCRED_SOCKET"]
    assert env["MLCRED_SOCKET"].startswith("/dev/shm/mlcred-run-")
    # The user's own, closed to others: used.
    os.chmod(runtime, 0o700)
    os.remove(report)
    result = broker.cli("run", "--role", "train", "--", PYTHON, "-c", DUMP_ENV, report, user=ML_USER,
                        env_extra={"XDG_RUNTIME_DIR": runtime})
    assert result.returncode == 0, result.err
    assert read_json(report)["MLCRED_SOCKET"].startswith(runtime + "/mlcred-run-")


IMPOSTOR = r"""
import os, socket, sys
server = socket.socket(socket.AF_UNIX)
server.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
server.listen(4)
open(sys.argv[2], "w").close()
conn, _ = server.accept()
data = conn.recv(65536)
if data:
    open(sys.argv[2], "a").write(repr(data))
"""


@needs_root
def test_credential_process_talks_only_to_a_socket_its_user_root_or_the_daemon_user_listens_on(bins, users, workdir):
    directory = tempfile.mkdtemp(prefix="impostor-", dir=workdir)
    os.chmod(directory, 0o777)
    path, seen = os.path.join(directory, "s.sock"), os.path.join(directory, "seen")
    impostor = subprocess.Popen(as_user(NONADMIN_USER) + [PYTHON, "-c", IMPOSTOR, path, seen])
    try:
        wait_for(lambda: os.path.exists(seen), 10, "the impostor")
        result = subprocess.run(as_user(ML_USER) + [os.path.join(bins, "mlcred"), "credential-process", "--grant", "s3"],
                                env={"PATH": "/usr/bin:/bin", "MLCRED_SOCKET": path, "MLCRED_TOKEN": "mlc_" + "a" * 49},
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 1, result.stderr
        assert "runs as uid" in result.stderr and "refusing to send it a secret" in result.stderr, result.stderr
        assert open(seen).read() == "", "the token reached the impostor"
    finally:
        impostor.kill()
        impostor.wait()


def test_env_takes_several_roles_and_token_revoke_current_ends_them_all(broker):
    result = broker.cli("env", "--role", "train", "--role", "tracking", "--format", "json")
    assert result.returncode == 0, result.err
    env = json.loads(result.out)
    assert env["HF_TOKEN"] == HF_VALUE and env["WANDB_API_KEY"] == WANDB_VALUE and env["MLCRED_ROLE"] == "train,tracking"
    tokens = env["MLCRED_TOKENS"].split(",")
    assert len(tokens) == 2 and env["MLCRED_TOKEN"] == tokens[0]
    assert len(broker.tokens()) == 2
    revoked = broker.cli("token", "revoke", "--current", env_extra={"MLCRED_TOKENS": env["MLCRED_TOKENS"]})
    assert revoked.returncode == 0 and "revoked the 2 current tokens" in revoked.out, revoked.err
    assert broker.tokens() == []
    # A conflict leaves no token behind.
    assert broker.cli("env", "--role", "train", "--role", "clash").returncode == 1
    assert broker.tokens() == []


# Finding 6: phi tokens and credentials go only to the installed `mlcred run`

PHI_BY_HAND = r'''
import json, os, socket, sys
def post(path, body, token=None):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    data = json.dumps(body).encode()
    auth = "Authorization: Bearer %s\r\n" % token if token else ""
    s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%sContent-Length: %d\r\n\r\n" % (path, auth, len(data))).encode() + data)
    answer = b""
    while chunk := s.recv(65536):
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)
status, body = post("/v1/tokens", {"role": "phi-notes", "bind": "process", "credentials": True})
print(json.dumps({"status": status, "reason": body.get("error", {}).get("reason"), "gid": os.getegid(), "groups": os.getgroups()}))
'''


@needs_root
def test_a_program_that_is_not_mlcred_run_gets_no_phi_token_even_bound_to_itself(broker, users):
    """Any program of an admitted user could ask the API for a process-bound phi token with
    credentials: the daemon checks the run group (setgid mlcred) from SO_PEERCRED."""
    result = subprocess.run([PYTHON, "-c", PHI_BY_HAND, broker.socket], capture_output=True, text=True, timeout=30)
    answer = json.loads(result.stdout)
    assert answer["status"] == 403 and answer["reason"] == "role_phi_run_only", answer
    assert any(r["action"] == "token.issue" and r["role"] == "phi-notes" and r["result"] == "denied"
               and "installed 'mlcred run'" in (r["reason"] or "") for r in broker.audit(limit=50))
    # `mlcred run` from the build tree (not setgid) is refused, and its hint says why (it sent the
    # user back to 'mlcred run --role R -- CMD', the command just typed).
    uninstalled = subprocess.run([os.path.join(SOURCE_BIN_DIR, "mlcred"), "run", "--role", "phi-notes", "--", "true"],
                                 capture_output=True, text=True, timeout=30, env={**os.environ, "MLCRED_SOCKET": broker.socket})
    assert uninstalled.returncode == 3 and "this mlcred is not the installed one" in uninstalled.stderr, uninstalled.stderr
    # The same role under the installed mlcred run works, and its job does not inherit the group.
    run_group = grp.getgrnam("mlcred-run").gr_gid
    shown = broker.cli("run", "--role", "phi-notes", "--", PYTHON, "-c", PHI_BY_HAND, broker.socket)
    assert shown.returncode == 0, shown.err
    inside = json.loads(shown.out)
    assert inside["gid"] != run_group and run_group not in inside["groups"], inside
    assert inside["status"] == 403 and inside["reason"] == "role_phi_run_only", "the job itself is not run"
    # The audit records run's real group, not the run group it connected with.
    issued = [r for r in broker.audit(limit=50) if r["action"] == "token.issue" and r["result"] == "allowed"]
    assert issued[-1]["role"] == "phi-notes" and issued[-1]["principal"]["gid"] == os.getgid(), issued[-1]


@needs_root
def test_phi_credentials_under_a_phi_token_go_only_to_run(broker, scratch):
    """A job's phi token (from its environment) used by a program talking to the daemon
    directly gets no phi credentials; through run's socket it does."""
    script = r'''
import json, os, socket, sys
def post(path):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(("POST /v1/credentials HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\nAuthorization: Bearer %s\r\n\r\n{}"
               % os.environ["MLCRED_TOKEN"]).encode())
    answer = b""
    while chunk := s.recv(65536):
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)
direct, body = post(sys.argv[2])
through, _ = post(os.environ["MLCRED_SOCKET"])
report = {"direct": direct, "reason": body.get("error", {}).get("reason"), "through": through}
''' + WRITE_REPORT
    handle, report = tempfile.mkstemp(dir=scratch, suffix=".json")
    os.close(handle)
    os.unlink(report)
    result = broker.cli("run", "--role", "phi-notes", "--", PYTHON, job(scratch, script), report, broker.socket)
    assert result.returncode == 0, result.err
    seen = read_json(report)
    assert seen == {"direct": 403, "reason": "role_phi_run_only", "through": 200}, seen
