"""AWS grants end to end against moto_server (signature checking on): `mlcred run` hands the job
a credential_process config and never the broker's key, the aws CLI and boto3 inside the job
get the assumed role, what reaches STS is what the policy says (moto's request recorder),
SDKs refresh through credential_process, `mlcred env` prints plain variables for the three
grant types, and bad secrets or endpoints give one clear error line (SPEC §6-§8, issue 4)."""
import configparser
import json
import os
import shlex
import subprocess
import tempfile
from datetime import datetime, timezone

import pytest

from conftest import (MASK, assert_still_serving, assert_unreachable_peer_is_a_prompt_clear_error, files_containing,
                      WRITE_REPORT, one_error_line, parse_time, read_json, role_toml, run_job_report)
from peers import VENV

AWS = os.path.join(VENV, "bin", "aws")
VENV_PYTHON = os.path.join(VENV, "bin", "python")

# The policy file is written pretty-printed (the daemon drops the blanks between tokens: they
# count against STS's 2,048 characters), and its Sid holds spaces on purpose: moto checks a
# signature over the form body as Python's urlencode writes it (space -> '+'), so a body that
# encodes a space as %20 fails there with SignatureDoesNotMatch though real STS would take it.
SESSION_POLICY = {"Version": "2012-10-17",
                  "Statement": [{"Sid": "read the ml data bucket", "Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
                                 "Resource": ["arn:aws:s3:::ml-data", "arn:aws:s3:::ml-data/*"]}]}
FEDERATION_POLICY = {"Version": "2012-10-17",
                     "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]}
WRONG_SECRET = "wrongSecretKEY-e2e-0123456789abcdefghij"  # right key id, wrong secret


def policies(moto, group):
    def role(name, *grants, **settings):
        return role_toml(name, ["uid:0", f"group:{group}"], *grants, **settings)

    assume = {"secret": "aws-dev", "type": "aws-assume-role", "role_arn": moto.role_arn}
    partner = {**assume, "role_arn": moto.external_id_role_arn, "external_id": moto.external_id}
    return {
        "aws/read-only.json": json.dumps(SESSION_POLICY, indent=2),
        "train.toml": role("train", {"name": "s3", **assume, "session_policy_file": "aws/read-only.json",
                                     "session_tags": {"team": "ml", "project": "mlcred"}}, ttl="1h", max_ttl="2h"),
        # Sessions of 1 h under a token of 2 h: each session minted lasts its full hour.
        "train-long.toml": role("train-long", {"name": "s3", **assume}, ttl="2h", max_ttl="2h"),
        "partner.toml": role("partner", {**partner, "duration": "45m"}),
        "partner-wrong.toml": role("partner-wrong", {**partner, "external_id": "not-the-external-id"}),
        "session.toml": role("session", {"secret": "aws-dev", "type": "aws-session-token", "duration": "30m"}),
        "federated.toml": role("federated", {"secret": "aws-dev", "type": "aws-federation-token",
                                             "session_policy": json.dumps(FEDERATION_POLICY)}),
        "badkey.toml": role("badkey", {"name": "s3", **assume, "secret": "aws-badkey"}),
        "unreachable.toml": role("unreachable", {**assume, "secret": "aws-unreachable"}),
        "multi.toml": role("multi", {"name": "first", **assume}, {"name": "partner", **partner}),
        "wrongtype.toml": role("wrongtype", {"name": "s3", **assume, "secret": "not-aws"}),
    }


@pytest.fixture
def broker(broker_factory, users, moto):
    """A daemon with the AWS roles above and the secrets they name; moto's recording reset."""
    d = broker_factory(policies(moto, users["ml_group"]))
    good = {"access_key_id": moto.access_key_id, "secret_access_key": moto.secret_access_key,
            "region": moto.region, "endpoint_url": moto.endpoint_url}
    d.cli("secret", "put", "aws-dev", "--type", "aws", input=json.dumps(good), check=0)
    d.cli("secret", "put", "aws-badkey", "--type", "aws", input=json.dumps({**good, "secret_access_key": WRONG_SECRET}),
          check=0)
    d.cli("secret", "put", "aws-unreachable", "--type", "aws",
          input=json.dumps({**good, "endpoint_url": "http://127.0.0.1:1"}), check=0)
    d.cli("secret", "put", "not-aws", "--type", "postgres",
          input=json.dumps({"host": "127.0.0.1", "port": 1, "dbname": "x", "user": "x", "password": "not-aws-pw"}),
          check=0)
    moto.reset_recording()
    return d


def script(scratch, name, text):
    path = os.path.join(scratch, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    return path


def assumed_arn(moto, session_name, role_name=None):
    return f"arn:aws:sts::{moto.account_id}:assumed-role/{role_name or moto.role_name}/{session_name}"


def tags_of(params):
    return {params[f"Tags.member.{i}.Key"]: params[f"Tags.member.{i}.Value"]
            for i in range(1, 51) if f"Tags.member.{i}.Key" in params}


def signing_key(request):
    authorization = request["headers"].get("Authorization", "")
    return authorization.split("Credential=", 1)[1].split("/", 1)[0] if "Credential=" in authorization else None


# The job's view

DUMP_JOB = r'''
import json, os, stat, sys
info = {"env": dict(os.environ), "files": {}}
config = os.environ.get("AWS_CONFIG_FILE")
if config:
    directory = os.path.dirname(config)
    st = os.stat(directory)
    info.update(dir=directory, dir_mode=stat.S_IMODE(st.st_mode), dir_uid=st.st_uid, config=open(config).read(),
                config_mode=stat.S_IMODE(os.stat(config).st_mode))
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        info["files"][name] = open(path, errors="replace").read() if os.path.isfile(path) else None
report = info
''' + WRITE_REPORT


def test_the_job_gets_a_private_credential_process_config_and_no_aws_keys(broker, moto, scratch):
    _, job = run_job_report(broker, scratch, "train", VENV_PYTHON, script(scratch, "dump.py", DUMP_JOB))
    env = job["env"]
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        assert name not in env, f"{name} in the job's environment would shadow credential_process"
    assert env["AWS_REGION"] == moto.region
    assert env["AWS_ENDPOINT_URL_STS"] == moto.endpoint_url
    assert env["MLCRED_ROLE"] == "train" and env["MLCRED_TOKEN"].startswith("mlc_")
    assert env["MLCRED_SOCKET"].endswith("/mlcred.sock") and env["MLCRED_SOCKET"] != broker.socket and env["MLCRED_EXPIRES_AT"]

    # The config file: in a private directory of the job's user, profile default, credential_process
    # = this mlcred by absolute path, for this grant.
    assert os.path.isabs(env["AWS_CONFIG_FILE"])
    assert job["dir_mode"] == 0o700 and job["dir_uid"] == 0
    assert job["config_mode"] & 0o077 == 0, oct(job["config_mode"])
    config = configparser.ConfigParser(interpolation=None)
    config.read_string(job["config"])
    assert "default" in config, job["config"]
    argv = shlex.split(config["default"]["credential_process"])
    assert os.path.isabs(argv[0]) and os.path.samefile(argv[0], os.path.join(broker.bins, "mlcred")), argv
    assert argv[1:] == ["credential-process", "--grant", "s3"], argv

    # Neither half of the broker's long-lived key is anywhere the job can see.
    for needle in (moto.access_key_id, moto.secret_access_key):
        assert not any(needle in value for value in env.values())
        assert not any(needle in (text or "") for text in job["files"].values())
    # The file and its directory are gone once the job has ended.
    assert not os.path.exists(env["AWS_CONFIG_FILE"]) and not os.path.exists(job["dir"])


def test_the_jobs_env_output_shows_no_broker_key_and_no_aws_key_variables(broker, moto):
    result = broker.cli("run", "--role", "train", "--no-mask", "--", "env")
    assert result.returncode == 0, result.err
    lines = result.out.splitlines()
    assert any(line.startswith("AWS_CONFIG_FILE=") for line in lines)
    assert not [line for line in lines if line.split("=", 1)[0] in
                ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")]
    assert moto.access_key_id not in result.out + result.err
    assert moto.secret_access_key not in result.out + result.err


def test_run_aws_sts_get_caller_identity_prints_the_assumed_role(broker, moto):
    result = broker.cli("run", "--role", "train", "--", AWS, "sts", "get-caller-identity", "--output", "json")
    assert result.returncode == 0, result.err
    identity = json.loads(result.out)
    assert identity["Account"] == moto.account_id
    prefix = f"arn:aws:sts::{moto.account_id}:assumed-role/{moto.role_name}/"
    assert identity["Arn"].startswith(prefix), identity
    session_name = identity["Arn"][len(prefix):]
    # The lease behind it names the same STS session.
    mine = [lease for lease in broker.leases() if lease["role"] == "train"]
    assert [(lease["grant"], lease["type"]) for lease in mine] == [("s3", "aws-assume-role")], mine
    assert mine[0]["provider_id"] == session_name
    assert set(mine[0]) >= {"id", "accessor", "role", "grant", "type", "provider_id", "expires_at", "state", "last_error"}


def test_the_session_policy_tags_and_source_identity_reach_sts_signed_by_the_broker_key(broker, moto, users):
    user = users["ml"]
    result = broker.cli("run", "--role", "train", "--", AWS, "sts", "get-caller-identity", "--output", "json", user=user)
    assert result.returncode == 0, result.err
    arn = json.loads(result.out)["Arn"]

    assumes = moto.calls("AssumeRole")
    assert assumes, moto.recording()
    for call in assumes:
        params = call["params"]
        assert params["RoleArn"] == moto.role_arn
        assert params["SourceIdentity"] == user
        assert user in params["RoleSessionName"] and 2 <= len(params["RoleSessionName"]) <= 64
        assert json.loads(params["Policy"]) == SESSION_POLICY
        assert "\n" not in params["Policy"] and '"Sid":"read the ml data bucket"' in params["Policy"], params["Policy"]
        assert tags_of(params) == {"team": "ml", "project": "mlcred"}
        assert 1800 <= int(params["DurationSeconds"]) <= 3600, params["DurationSeconds"]
        assert signing_key(call) == moto.access_key_id
    assert arn == assumed_arn(moto, assumes[-1]["params"]["RoleSessionName"])
    # The job's own call was signed with the temporary key, never the broker's.
    identity_calls = moto.calls("GetCallerIdentity")
    assert identity_calls and all(signing_key(c) != moto.access_key_id for c in identity_calls)
    assert all("X-Amz-Security-Token" in c["headers"] for c in identity_calls)
    issued = [r for r in broker.audit(limit=500) if r["action"] == "credential.issue" and r["role"] == "train"]
    assert issued and issued[-1]["principal"]["user"] == user and issued[-1]["result"] == "allowed"


def test_the_external_id_and_duration_reach_sts(broker, moto):
    result = broker.cli("run", "--role", "partner", "--", AWS, "sts", "get-caller-identity", "--output", "json")
    assert result.returncode == 0, result.err
    assert ":assumed-role/mlcred-t-partner/" in json.loads(result.out)["Arn"]
    params = moto.calls("AssumeRole")[-1]["params"]
    assert params["ExternalId"] == moto.external_id
    assert params["DurationSeconds"] == "2700"
    assert "Policy" not in params and not tags_of(params)

    refused = broker.cli("env", "--role", "partner-wrong", "--format", "json")
    assert refused.returncode == 1, refused.err
    line = one_error_line(refused.err)
    assert "AccessDenied" in line, line
    assert refused.out == ""


BOTO3_IDENTITY = r'''
import json, os, sys
import boto3
session = boto3.Session()
identity = session.client("sts").get_caller_identity()
report = {"arn": identity["Arn"], "method": session.get_credentials().method, "region": session.region_name}
''' + WRITE_REPORT


def test_boto3_inside_run_gets_the_assumed_role_identity(broker, moto, scratch, users):
    _, seen = run_job_report(broker, scratch, "train", VENV_PYTHON, script(scratch, "who.py", BOTO3_IDENTITY), user=users["ml"])
    assert seen["arn"].startswith(f"arn:aws:sts::{moto.account_id}:assumed-role/{moto.role_name}/"), seen
    assert seen["method"] == "custom-process", seen  # from credential_process, not variables
    assert seen["region"] == moto.region, seen


# botocore refreshes credentials from credential_process when they are within 15 minutes
# (advisory) or 10 minutes (mandatory) of expiry, by the clock `RefreshableCredentials` was
# made with (botocore.credentials._local_now, bound as a default argument, hence patched on
# the object as well as in the module). The clock is moved to 5 minutes before the session's end.
REFRESH = r'''
import datetime, json, os, sys
import boto3
import botocore.credentials as bc
session = boto3.Session()
sts = session.client("sts")
first = sts.get_caller_identity()["Arn"]
creds = session.get_credentials()
key1 = creds.get_frozen_credentials().access_key
real_now = bc._local_now
lifetime = creds._expiry_time - real_now()
shift = lifetime - datetime.timedelta(minutes=5)
fake_now = lambda: real_now() + shift
bc._local_now = fake_now
creds._time_fetcher = fake_now
needed = creds.refresh_needed()
second = sts.get_caller_identity()["Arn"]
# Back to the real clock before looking: the refreshed session still looks 5 minutes from its
# end by the moved one, and every look would refresh again.
bc._local_now = real_now
creds._time_fetcher = real_now
key2 = creds.get_frozen_credentials().access_key
report = {"first": first, "second": second, "key1": key1, "key2": key2, "needed": needed,
          "lifetime_s": lifetime.total_seconds(), "method": creds.method}
''' + WRITE_REPORT


def test_a_boto3_job_keeps_working_across_a_credential_refresh(broker, moto, scratch):
    # run serves a held session until it has under 15 minutes left; the widened window (a
    # test-only setting) makes it mint again when botocore, its clock moved, asks again.
    _, seen = run_job_report(broker, scratch, "train", VENV_PYTHON, script(scratch, "refresh.py", REFRESH),
                             env_extra={"MLCRED_UNSAFE_TEST_AWS_REFRESH_WINDOW": "100000"})
    assert seen["method"] == "custom-process"
    assert seen["lifetime_s"] >= 29 * 60, f"a session handed out must have at least 30 minutes of life: {seen}"
    assert seen["needed"] is True
    assert seen["key1"] != seen["key2"], "credential_process was not called again near the session's end"
    prefix = f"arn:aws:sts::{moto.account_id}:assumed-role/{moto.role_name}/"
    assert seen["first"].startswith(prefix) and seen["second"].startswith(prefix), seen
    # Both sessions came from STS through the broker; the second call was signed with the new key.
    assert len(moto.calls("AssumeRole")) >= 2, [c["params"] for c in moto.calls()]
    identity_keys = [signing_key(c) for c in moto.calls("GetCallerIdentity")]
    assert identity_keys[0] == seen["key1"] and identity_keys[-1] == seen["key2"], identity_keys


def test_credential_process_outside_run_asks_for_a_token(broker):
    result = broker.cli("credential-process", "--grant", "s3")
    assert result.returncode == 2, result.err
    assert "MLCRED_TOKEN" in one_error_line(result.err)


# mlcred env: plain variables

def env_json(d, role):
    result = d.cli("env", "--role", role, "--format", "json")
    assert result.returncode == 0, result.err
    return json.loads(result.out)


def assert_plain_aws_variables(env, moto, minutes):
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_ACCESS_KEY_ID"] != moto.access_key_id
    assert env["AWS_SECRET_ACCESS_KEY"] and env["AWS_SECRET_ACCESS_KEY"] != moto.secret_access_key
    assert env["AWS_SESSION_TOKEN"]
    assert env["AWS_REGION"] == moto.region and env["AWS_ENDPOINT_URL_STS"] == moto.endpoint_url
    left = (parse_time(env["AWS_CREDENTIAL_EXPIRATION"]) - datetime.now(timezone.utc)).total_seconds()
    assert 29 * 60 <= left <= minutes * 60 + 60, env["AWS_CREDENTIAL_EXPIRATION"]
    assert "AWS_CONFIG_FILE" not in env


def test_env_prints_working_assume_role_credentials(broker, moto):
    env = env_json(broker, "train")
    assert_plain_aws_variables(env, moto, 60)
    identity = moto.client("sts", env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"],
                           env["AWS_SESSION_TOKEN"]).get_caller_identity()
    assert identity["Arn"].startswith(f"arn:aws:sts::{moto.account_id}:assumed-role/{moto.role_name}/")


def test_env_prints_session_token_credentials(broker, moto):
    env = env_json(broker, "session")
    assert_plain_aws_variables(env, moto, 30)
    calls = moto.calls("GetSessionToken")
    assert len(calls) == 1 and calls[0]["params"]["DurationSeconds"] == "1800"
    assert signing_key(calls[0]) == moto.access_key_id
    leases = [lease for lease in broker.leases() if lease["role"] == "session"]
    assert [lease["type"] for lease in leases] == ["aws-session-token"] and leases[0]["state"] == "active"


def test_env_prints_federation_token_credentials_with_their_policy(broker, moto):
    env = env_json(broker, "federated")
    assert_plain_aws_variables(env, moto, 60)
    calls = moto.calls("GetFederationToken")
    assert len(calls) == 1
    params = calls[0]["params"]
    assert json.loads(params["Policy"]) == FEDERATION_POLICY
    assert 2 <= len(params["Name"]) <= 32
    assert 1800 <= int(params["DurationSeconds"]) <= 3600
    assert signing_key(calls[0]) == moto.access_key_id
    leases = [lease for lease in broker.leases() if lease["role"] == "federated"]
    assert [lease["type"] for lease in leases] == ["aws-federation-token"]


def test_neither_the_broker_key_nor_issued_secrets_reach_the_log_the_state_or_cli_output(broker, moto):
    env = env_json(broker, "train")
    assert broker.cli("run", "--role", "train", "--", AWS, "sts", "get-caller-identity").returncode == 0
    assert broker.cli("env", "--role", "badkey").returncode == 1
    broker.stop()
    paths = broker.written_files()
    assert any(p.endswith("mlcred.db") for p in paths)
    for needle in (moto.access_key_id, moto.secret_access_key, WRONG_SECRET,
                   env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"]):
        assert files_containing(needle, paths) == [], f"{needle[:8]}... written to {files_containing(needle, paths)}"
    for needle in (moto.access_key_id, moto.secret_access_key, WRONG_SECRET):
        assert not any(needle in output for output in broker.outputs), f"{needle[:8]}... in CLI output"


# Bad input

def test_a_wrong_stored_secret_gives_signature_does_not_match_from_env_and_from_run(broker, moto):
    refused = broker.cli("env", "--role", "badkey", "--format", "json")
    assert refused.returncode == 1, refused.err
    line = one_error_line(refused.err)
    assert "SignatureDoesNotMatch" in line, line
    assert WRONG_SECRET not in refused.err and refused.out == ""
    errors = [r for r in broker.audit(limit=500) if r["action"] == "credential.issue" and r["role"] == "badkey"]
    assert errors and errors[-1]["result"] == "error" and "SignatureDoesNotMatch" in errors[-1]["reason"], errors
    assert WRONG_SECRET not in json.dumps(broker.audit(limit=500))

    # Under run, the aws CLI shows what credential_process said.
    result = broker.cli("run", "--role", "badkey", "--", AWS, "sts", "get-caller-identity")
    assert result.returncode != 0
    assert "SignatureDoesNotMatch" in result.err, result.err
    assert "mlcred: error:" in result.err
    assert not [lease for lease in broker.leases() if lease["role"] == "badkey" and lease["state"] == "active"]
    assert_still_serving(broker)


def test_an_unreachable_sts_endpoint_is_a_prompt_clear_error(broker):
    assert_unreachable_peer_is_a_prompt_clear_error(broker)


def test_a_grant_naming_a_secret_of_another_type_is_refused_clearly(broker):
    for args in (["env", "--role", "wrongtype"], ["run", "--role", "wrongtype", "--", "true"]):
        refused = broker.cli(*args)
        assert refused.returncode == 1, (args, refused.err)
        line = one_error_line(refused.err)
        assert "not-aws" in line and "postgres" in line, line
        assert "not-aws-pw" not in refused.err
    assert broker.tokens() == []
    assert_still_serving(broker)


# Regressions found by review

def test_a_role_with_two_aws_grants_prints_its_first_in_env_and_mints_nothing_else(broker, moto):
    env = env_json(broker, "multi")
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SESSION_TOKEN"], env
    assert [call["params"]["RoleArn"] for call in moto.calls("AssumeRole")] == [moto.role_arn]
    made = [lease for lease in broker.leases() if lease["role"] == "multi"]
    assert [lease["grant"] for lease in made] == ["first"], "only the first AWS grant is minted for env"


def test_naming_two_aws_grants_at_once_is_a_conflict_that_says_how_to_fetch_them(broker, moto):
    status, token = broker.http("POST", "/v1/tokens", {"role": "multi", "ttl": "10m"})
    assert status == 200, token
    status, body = broker.http("POST", "/v1/credentials", {"grants": ["first", "partner"]}, token=token["token"])
    assert status == 409, body
    message = body["error"]["message"]
    assert "both set AWS_ACCESS_KEY_ID" in message and "credential-process --grant NAME" in message, message
    assert "env table" not in message, "aws grants take no env table: the hint must not suggest one"
    # Nothing minted is left behind as a live lease: the request failed as a whole.
    assert [lease for lease in broker.leases() if lease["accessor"] == token["accessor"] and lease["state"] == "active"] == []


def test_credential_process_without_grant_under_run_uses_the_first_aws_grant(broker, moto):
    result = broker.cli("run", "--no-mask", "--role", "multi", "--", os.path.join(broker.bins, "mlcred"), "credential-process")
    assert result.returncode == 0, result.err
    document = json.loads(result.out)
    assert document["Version"] == 1 and document["AccessKeyId"] and document["SessionToken"]
    partner = broker.cli("run", "--no-mask", "--role", "multi", "--", AWS, "--profile", "partner", "sts", "get-caller-identity")
    assert partner.returncode == 0, partner.err
    assert ":assumed-role/mlcred-t-partner/" in json.loads(partner.out)["Arn"]


def test_botocore_gets_the_secrets_region_and_it_wins_over_the_shells(broker, moto, scratch):
    out = os.path.join(scratch, "region.json")
    code = ("import boto3, json, os, sys; json.dump({'boto3': boto3.Session().region_name, "
            "'default': os.environ.get('AWS_DEFAULT_REGION'), 'region': os.environ.get('AWS_REGION')}, open(sys.argv[1], 'w'))")
    result = broker.cli("run", "--role", "train", "--", VENV_PYTHON, "-c", code, out, env_extra={"AWS_DEFAULT_REGION": "eu-west-3"})
    assert result.returncode == 0, result.err
    assert read_json(out) == {"boto3": moto.region, "default": moto.region, "region": moto.region}
    assert env_json(broker, "train")["AWS_DEFAULT_REGION"] == moto.region


def test_keys_fetched_through_credential_process_are_masked_in_the_jobs_output(broker):
    result = broker.cli("run", "--role", "train", "--", os.path.join(broker.bins, "mlcred"), "credential-process", "--grant", "s3")
    assert result.returncode == 0, result.err
    document = json.loads(result.out)
    assert document["SecretAccessKey"] == MASK and document["SessionToken"] == MASK, document


def test_revoking_an_sts_lease_warns_that_aws_keeps_it_valid_and_list_still_shows_it(broker):
    assert broker.cli("env", "--role", "train").returncode == 0
    lease = [l for l in broker.leases() if l["role"] == "train"][-1]
    revoked = broker.cli("lease", "revoke", lease["id"])
    assert revoked.returncode == 0, revoked.err
    assert "stay valid at AWS until" in revoked.err, revoked.err
    listed = json.loads(broker.cli("lease", "list", "--ended", "--json", check=0).out)
    assert [l["state"] for l in listed if l["id"] == lease["id"]] == ["revoked"], "still valid at AWS: listed with --ended"
    live = json.loads(broker.cli("lease", "list", "--json", check=0).out)
    assert [l for l in live if l["id"] == lease["id"]] == [], "the default lists what is live or failing only"


def test_run_removes_directories_left_by_a_killed_run_and_keeps_live_ones(broker, workdir):
    runtime = tempfile.mkdtemp(prefix="xdg-", dir=workdir)
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = os.path.join(runtime, f"mlcred-run-{gone.pid}-abcdef")
    live = os.path.join(runtime, f"mlcred-run-{os.getpid()}-ghijkl")
    for path in (stale, live):
        os.mkdir(path, 0o700)
        with open(os.path.join(path, "aws-config"), "w") as f:
            f.write("[default]\n")
    result = broker.cli("run", "--role", "train", "--", "sh", "-c", 'test -f "$AWS_CONFIG_FILE"',
                        env_extra={"XDG_RUNTIME_DIR": runtime})
    assert result.returncode == 0, result.err
    assert not os.path.exists(stale), "the directory of a run that no longer exists was left"
    assert os.path.exists(live)
    assert sorted(os.listdir(runtime)) == [os.path.basename(live)], "run removes its own directory too"


# Issue 14: one STS session per job and grant, and fail fast

MANY_CALLS = r'''
import json, os, subprocess, sys
import boto3
aws, count_cli, count_boto = os.environ["T_AWS"], int(os.environ["T_CLI_CALLS"]), int(os.environ["T_BOTO_CALLS"])
failures = 0
# The aws CLI: a process each, so a credential_process call each.
procs = [subprocess.Popen([aws, "sts", "get-caller-identity", "--output", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
         for _ in range(count_cli)]
for p in procs:
    p.communicate()
    failures += p.returncode != 0
# boto3: a fresh Session every 10 calls, so botocore resolves credentials (credential_process) again.
arns = set()
for i in range(count_boto):
    if i % 10 == 0:
        sts = boto3.Session().client("sts")
    arns.add(sts.get_caller_identity()["Arn"])
report = {"failures": failures, "arns": sorted(arns)}
''' + WRITE_REPORT


def test_a_job_calling_sts_550_times_uses_one_assume_role(broker, moto, scratch):
    """SPEC §8: 50 aws CLI calls and 500 boto3 calls under one run make exactly one AssumeRole,
    minted before the job started; every call succeeds under that one session."""
    _, seen = run_job_report(broker, scratch, "train", VENV_PYTHON, script(scratch, "many.py", MANY_CALLS), timeout=600,
                             env_extra={"T_AWS": AWS, "T_CLI_CALLS": "50", "T_BOTO_CALLS": "500"})
    assert seen["failures"] == 0, seen
    assert len(seen["arns"]) == 1, seen
    assert len(moto.calls("AssumeRole")) == 1, [c["params"] for c in moto.calls("AssumeRole")]
    assert len(moto.calls("GetCallerIdentity")) == 550
    leases = [lease for lease in broker.leases() if lease["role"] == "train"]
    assert len(leases) == 1 and leases[0]["type"] == "aws-assume-role", leases


TWO_PHASES = r'''
import json, os, sys, time
import boto3
def key():
    # A fresh Session resolves credentials again (credential_process); the call proves they work.
    session = boto3.Session()
    session.client("sts").get_caller_identity()
    return session.get_credentials().access_key
first = [key() for _ in range(10)]
time.sleep(float(os.environ["T_PAUSE"]))
second = [key() for _ in range(10)]
report = {"first": sorted(set(first)), "second": sorted(set(second))}
''' + WRITE_REPORT


def test_a_held_session_is_replaced_once_it_nears_its_end(broker, moto, scratch):
    """With the refresh window widened (test-only) to the session's length less 12 s, the session
    minted at start serves the first 10 calls, goes stale during the pause, and exactly one new
    session serves the next 10: two AssumeRole in all, and no call fails. Each phase has 12 s
    (a phase takes about 1 s here; with 6 s a slow start of Python and boto3 could overrun it)."""
    window = str(3600 - 12)  # train-long's sessions last 1 h
    _, seen = run_job_report(broker, scratch, "train-long", VENV_PYTHON, script(scratch, "phases.py", TWO_PHASES), timeout=120,
                             env_extra={"MLCRED_UNSAFE_TEST_AWS_REFRESH_WINDOW": window, "T_PAUSE": "15"})
    assert len(seen["first"]) == 1 and len(seen["second"]) == 1, seen
    assert seen["first"] != seen["second"], "the second phase should run under a new session"
    assert len(moto.calls("AssumeRole")) == 2, [c["params"] for c in moto.calls("AssumeRole")]
    assert len(moto.calls("GetCallerIdentity")) == 20


def test_a_wrong_aws_key_ends_run_before_the_job_starts(broker, scratch):
    """Fail fast (SPEC §8): the first STS session is minted before the job starts."""
    marker = os.path.join(scratch, "started")
    result = broker.cli("run", "--role", "badkey", "--", "/bin/sh", "-c", f"touch {marker}; sleep 60", timeout=30)
    assert result.returncode == 1, result.err
    line = one_error_line(result.err)
    assert "SignatureDoesNotMatch" in line, line
    assert not os.path.exists(marker), "the job started"
    assert WRONG_SECRET not in result.err
    assert broker.tokens() == []
    assert not [lease for lease in broker.leases() if lease["role"] == "badkey" and lease["state"] == "active"]


# Issue 15: secret rotate for aws secrets

def test_secret_rotate_replaces_the_brokers_access_key_and_deletes_the_old_one(broker, moto):
    iam = moto.client("iam")
    user = "rotated-" + os.urandom(4).hex()
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    old = iam.create_access_key(UserName=user)["AccessKey"]
    secret = {"access_key_id": old["AccessKeyId"], "secret_access_key": old["SecretAccessKey"],
              "region": moto.region, "endpoint_url": moto.endpoint_url}
    broker.cli("secret", "put", "aws-rotating", "--type", "aws", input=json.dumps(secret), check=0)
    result = broker.cli("secret", "rotate", "aws-rotating", "--json")
    assert result.returncode == 0, result.err
    answer = json.loads(result.out)
    assert answer["version"] == 2 and answer["replaced"] == old["AccessKeyId"] and answer["old_removed"] is True, answer
    keys = [k["AccessKeyId"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]]
    assert len(keys) == 1 and keys[0] != old["AccessKeyId"], keys
    # The old key is refused by AWS now; nobody saw the new one (it is nowhere but in the vault).
    from botocore.exceptions import ClientError
    try:
        moto.client("sts", old["AccessKeyId"], old["SecretAccessKey"]).get_caller_identity()
        raise AssertionError("the old key still works")
    except ClientError as error:
        assert error.response["Error"]["Code"] in ("InvalidClientTokenId", "SignatureDoesNotMatch"), error.response
    assert old["SecretAccessKey"] not in result.out + result.err
    record = [r for r in broker.audit(limit=100) if r["action"] == "secret.rotate"][-1]
    assert record["result"] == "allowed" and keys[0] in record["reason"] and "replacing " + old["AccessKeyId"] in record["reason"]
    # The new key works for STS through the broker: a role using it issues.
    listed = {s["name"]: s for s in json.loads(broker.cli("secret", "list", "--json", check=0).out)["secrets"]}
    assert listed["aws-rotating"]["version"] == 2 and "error" not in listed["aws-rotating"]


def test_secret_rotate_refuses_static_secrets_and_a_broken_key_cleanly(broker):
    broker.cli("secret", "put", "plain", "--type", "static", input='{"v": "x1234567"}', check=0)
    refused = broker.cli("secret", "rotate", "plain")
    assert refused.returncode == 1 and "only aws and postgres secrets" in refused.err, refused.err
    bad = broker.cli("secret", "rotate", "aws-badkey")
    assert bad.returncode == 1 and "SignatureDoesNotMatch" in bad.err, bad.err
    assert WRONG_SECRET not in bad.err
    versions = {s["name"]: s["version"] for s in json.loads(broker.cli("secret", "list", "--json", check=0).out)["secrets"]}
    assert versions["aws-badkey"] == 1, "nothing stored when the provider refused"


def test_a_secret_with_rotate_every_is_rotated_on_schedule(broker, moto):
    iam = moto.client("iam")
    user = "scheduled-" + os.urandom(4).hex()
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    old = iam.create_access_key(UserName=user)["AccessKey"]
    secret = {"access_key_id": old["AccessKeyId"], "secret_access_key": old["SecretAccessKey"],
              "region": moto.region, "endpoint_url": moto.endpoint_url}
    put = broker.cli("secret", "put", "aws-scheduled", "--type", "aws", "--rotate-every", "3s", "--json", input=json.dumps(secret))
    assert put.returncode == 0 and json.loads(put.out)["rotate_every_seconds"] == 3, put.out + put.err

    def version():
        return {s["name"]: s["version"] for s in json.loads(broker.cli("secret", "list", "--json", check=0).out)["secrets"]}["aws-scheduled"]
    from conftest import wait_for
    wait_for(lambda: version() >= 2, 30, "the scheduled rotation")
    records = [r for r in broker.audit(limit=200) if r["action"] == "secret.rotate" and r["result"] == "allowed"]
    assert records and records[0]["principal"]["user"] == "mlcredd", records
    # The schedule stays with the rotated versions; a static secret cannot carry one.
    listed = {s["name"]: s for s in json.loads(broker.cli("secret", "list", "--json", check=0).out)["secrets"]}
    assert listed["aws-scheduled"]["rotate_every_seconds"] == 3
    refused = broker.cli("secret", "put", "plain2", "--type", "static", "--rotate-every", "30d", input='{"v": "x1234567"}')
    assert refused.returncode == 1 and "rotate_every applies to aws and postgres" in refused.err, refused.err
