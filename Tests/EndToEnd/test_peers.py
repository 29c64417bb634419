"""The peers of the dynamic-credential tests are real: moto_server checks signatures once its
set-up is done and records what reaches STS; the aws CLI takes credentials from a
credential_process against it; PostgreSQL takes passwords over TCP and a role made by the
CREATEROLE broker sees ml.features and not phi.patients. None of this needs mlcred."""
import json
import os
import secrets
import stat
import subprocess
import tempfile
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError

from peers import VENV, quote_ident, quote_literal

AWS = os.path.join(VENV, "bin", "aws")


def error_code(call):
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"]


def test_moto_refuses_a_wrong_secret_and_an_unknown_key_after_its_set_up(moto):
    wrong_secret = moto.client("sts", secret_access_key="wrong-" + moto.secret_access_key)
    assert error_code(wrong_secret.get_caller_identity) == "SignatureDoesNotMatch"
    unknown_key = moto.client("sts", access_key_id="AKIAMLCREDUNKNOWN000", secret_access_key="x")
    assert error_code(unknown_key.get_caller_identity) == "InvalidClientTokenId"
    # Nor does an unsigned-at-all IAM call slip through any more.
    assert error_code(lambda: wrong_secret.get_caller_identity()) == "SignatureDoesNotMatch"


def test_the_broker_key_signs_as_the_iam_user_and_may_assume_the_role(moto):
    sts = moto.client("sts")
    me = sts.get_caller_identity()
    assert me["Arn"] == moto.user_arn and me["Account"] == moto.account_id
    assumed = sts.assume_role(RoleArn=moto.role_arn, RoleSessionName="peer-check", DurationSeconds=1800)
    creds = assumed["Credentials"]
    assert creds["AccessKeyId"] != moto.access_key_id
    as_role = moto.client("sts", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert as_role.get_caller_identity()["Arn"] == \
        f"arn:aws:sts::{moto.account_id}:assumed-role/{moto.role_name}/peer-check"
    # A session token that is not the one issued is refused.
    forged = moto.client("sts", creds["AccessKeyId"], creds["SecretAccessKey"], "forged-token")
    assert error_code(forged.get_caller_identity) == "InvalidClientTokenId"


def test_the_external_id_role_refuses_a_wrong_external_id(moto):
    sts = moto.client("sts")
    assert error_code(lambda: sts.assume_role(RoleArn=moto.external_id_role_arn, RoleSessionName="partner",
                                              ExternalId="not-it")) == "AccessDenied"
    ok = sts.assume_role(RoleArn=moto.external_id_role_arn, RoleSessionName="partner", ExternalId=moto.external_id)
    assert ok["AssumedRoleUser"]["Arn"].endswith(":assumed-role/mlcred-t-partner/partner")


def test_moto_records_the_form_parameters_that_reach_sts(moto):
    moto.reset_recording()
    policy = json.dumps({"Version": "2012-10-17",
                         "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})
    moto.client("sts").assume_role(RoleArn=moto.role_arn, RoleSessionName="recorded", Policy=policy,
                                   SourceIdentity="alice", DurationSeconds=1800,
                                   Tags=[{"Key": "team", "Value": "ml"}])
    calls = moto.calls("AssumeRole")
    assert len(calls) == 1, moto.recording()
    params = calls[0]["params"]
    assert params["RoleSessionName"] == "recorded" and params["SourceIdentity"] == "alice"
    assert json.loads(params["Policy"]) == json.loads(policy)
    assert params["DurationSeconds"] == "1800"
    assert (params["Tags.member.1.Key"], params["Tags.member.1.Value"]) == ("team", "ml")
    assert f"Credential={moto.access_key_id}/" in calls[0]["headers"]["Authorization"]
    moto.reset_recording()
    assert moto.calls() == []


# The mechanism `mlcred run` relies on, shown with a stand-in credential_process.
FAKE_PROCESS = r'''
import json, sys, boto3
from botocore.config import Config
endpoint, key, secret, role, counter = sys.argv[1:6]
try:
    n = int(open(counter).read()) + 1
except FileNotFoundError:
    n = 1
open(counter, "w").write(str(n))
sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key,
                   aws_secret_access_key=secret, config=Config(retries={"total_max_attempts": 1}))
c = sts.assume_role(RoleArn=role, RoleSessionName=f"stand-in-{n}", DurationSeconds=1800)["Credentials"]
print(json.dumps({"Version": 1, "AccessKeyId": c["AccessKeyId"], "SecretAccessKey": c["SecretAccessKey"],
                  "SessionToken": c["SessionToken"], "Expiration": c["Expiration"].isoformat()}))
'''


def test_the_aws_cli_takes_credentials_from_a_credential_process_and_the_sts_endpoint_variable(moto, workdir):
    """Note: botocore (boto3, aws CLI v1) reads its region from AWS_DEFAULT_REGION or the profile's
    `region`, never from AWS_REGION alone: without one of those it stops at "You must specify a
    region"."""
    directory = tempfile.mkdtemp(prefix="cp-", dir=workdir)
    script = os.path.join(directory, "process.py")
    with open(script, "w") as f:
        f.write(FAKE_PROCESS)
    counter = os.path.join(directory, "count")
    config = os.path.join(directory, "config")
    with open(config, "w") as f:
        f.write(f"[default]\nregion = {moto.region}\ncredential_process = " + " ".join(
            [os.path.join(VENV, "bin", "python"), script, moto.endpoint_url, moto.access_key_id,
             moto.secret_access_key, moto.role_arn, counter]) + "\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "AWS_CONFIG_FILE": config,
           "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_ENDPOINT_URL_STS": moto.endpoint_url}
    region_only_in_aws_region = subprocess.run([AWS, "sts", "get-caller-identity"], capture_output=True, text=True,
                                               env={**env, "AWS_CONFIG_FILE": "/nonexistent", "AWS_REGION": "us-east-1",
                                                    "AWS_ACCESS_KEY_ID": "AKIAX", "AWS_SECRET_ACCESS_KEY": "x"},
                                               timeout=60)
    assert "You must specify a region" in region_only_in_aws_region.stderr
    result = subprocess.run([AWS, "sts", "get-caller-identity", "--output", "json"], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["Arn"] == \
        f"arn:aws:sts::{moto.account_id}:assumed-role/{moto.role_name}/stand-in-1"
    # A failing credential_process: the aws CLI shows its stderr.
    with open(config, "w") as f:
        f.write(f"[default]\nregion = {moto.region}\ncredential_process = /bin/sh -c 'echo \"mlcred: error: upstream: Nope\" >&2; exit 1'\n")
    failed = subprocess.run([AWS, "sts", "get-caller-identity"], capture_output=True, text=True, env=env, timeout=60)
    assert failed.returncode != 0 and "mlcred: error: upstream: Nope" in failed.stderr, failed.stderr


# PostgreSQL

BROKER_CREATE = [
    "CREATE ROLE {name} LOGIN PASSWORD {password} VALID UNTIL {expiration}",
    "GRANT {name} TO CURRENT_USER",  # what the daemon adds: membership, to revoke later on PG15
    "GRANT USAGE ON SCHEMA ml TO {name}",
    "GRANT SELECT ON ml.features TO {name}",
]


def test_the_cluster_runs_as_its_own_user_on_loopback_only(postgres):
    assert postgres.sql("SHOW listen_addresses") == [("127.0.0.1",)]
    assert postgres.sql("SHOW password_encryption") == [("scram-sha-256",)]
    owner = os.stat(postgres.data_dir).st_uid
    assert owner != 0 and stat.S_IMODE(os.stat(postgres.base).st_mode) == 0o700
    # The postmaster (a backend would exit with the psql that asked for its pid).
    with open(os.path.join(postgres.data_dir, "postmaster.pid")) as f:
        postmaster = int(f.readline())
    with open(f"/proc/{postmaster}/status") as f:
        uids = [line for line in f if line.startswith("Uid:")][0].split()[1:]
    assert all(int(uid) == owner for uid in uids)


def test_the_broker_logs_in_over_tcp_with_its_password_and_not_without(postgres):
    ok = postgres.psql_tcp(postgres.broker_user, postgres.broker_password, "SELECT current_user")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == postgres.broker_user
    wrong = postgres.psql_tcp(postgres.broker_user, "not-" + postgres.broker_password, "SELECT 1")
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr
    # The broker itself reads neither table (it may only grant SELECT on ml.features).
    denied = postgres.psql_tcp(postgres.broker_user, postgres.broker_password, "SELECT count(*) FROM phi.patients")
    assert denied.returncode != 0 and "permission denied" in denied.stderr


def test_a_role_made_by_the_broker_reads_ml_features_but_not_phi_and_the_broker_drops_it(postgres):
    name = "mlc_peer_" + secrets.token_hex(4)
    password = secrets.token_urlsafe(24)

    def as_broker(query):
        result = postgres.psql_tcp(postgres.broker_user, postgres.broker_password, query)
        assert result.returncode == 0, f"{query}: {result.stderr}"
        return result.stdout.strip()

    for statement in BROKER_CREATE:
        as_broker(statement.format(name=quote_ident(name), password=quote_literal(password),
                                   expiration=quote_literal("2099-01-01T00:00:00Z")))
    assert postgres.roles("mlc_peer_") == [name]
    features = postgres.psql_tcp(name, password, "SELECT count(*) FROM ml.features")
    assert features.returncode == 0 and features.stdout.strip() == "3", features.stderr
    phi = postgres.psql_tcp(name, password, "SELECT count(*) FROM phi.patients")
    assert phi.returncode != 0 and "permission denied for schema phi" in phi.stderr
    # It can grant itself nothing more.
    more = postgres.psql_tcp(name, password, f"GRANT SELECT ON phi.patients TO {quote_ident(name)}")
    assert more.returncode != 0

    # Renewal moves VALID UNTIL; revocation as the default does it: terminate, drop owned, drop.
    as_broker(f"ALTER ROLE {quote_ident(name)} VALID UNTIL '2098-01-01T00:00:00Z'")
    assert postgres.role_valid_until(name) == datetime(2098, 1, 1, tzinfo=timezone.utc).timestamp()
    as_broker(f"REVOKE ALL ON ml.features FROM {quote_ident(name)}")
    as_broker(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = {quote_literal(name)}")
    as_broker(f"DROP OWNED BY {quote_ident(name)}")
    as_broker(f"DROP ROLE {quote_ident(name)}")
    assert postgres.roles("mlc_peer_") == []
    gone = postgres.psql_tcp(name, password, "SELECT 1")
    assert gone.returncode != 0 and "password authentication failed" in gone.stderr


def test_without_membership_the_broker_can_neither_terminate_nor_drop_owned(postgres):
    """Why the daemon grants itself the role it made (PostgreSQL 15, CREATEROLE without membership)."""
    name = "mlc_peer_" + secrets.token_hex(4)
    ident = quote_ident(name)
    steps = [f"CREATE ROLE {ident} LOGIN", f"GRANT USAGE ON SCHEMA ml TO {ident}",
             f"GRANT SELECT ON ml.features TO {ident}"]
    for statement in steps:
        result = postgres.psql_tcp(postgres.broker_user, postgres.broker_password, statement)
        assert result.returncode == 0, result.stderr
    drop_owned = postgres.psql_tcp(postgres.broker_user, postgres.broker_password, f"DROP OWNED BY {ident}")
    assert drop_owned.returncode != 0 and "permission denied" in drop_owned.stderr
    drop = postgres.psql_tcp(postgres.broker_user, postgres.broker_password, f"DROP ROLE {ident}")
    assert drop.returncode != 0 and "cannot be dropped because some objects depend on it" in drop.stderr
    # The superuser's DROP OWNED BY does not remove privileges the broker granted (it revokes as
    # the owner): cleaning up after the broker takes the broker's own REVOKE.
    postgres.sql(f"DROP OWNED BY {ident}")
    assert postgres.psql_super(f"DROP ROLE {ident}").returncode != 0
    postgres.drop_role(name)
    assert postgres.roles(name) == []
