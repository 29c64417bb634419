"""The Python client (`clients/python`, SPEC §14, issue 14) end to end: installed with pip into a
fresh virtualenv, run as a test user in a group named in the roles, against the real daemon,
moto (signature checks on) and PostgreSQL. `role()` in a notebook-style script leaves no live
token, `boto3_session()` survives a forced refresh, `jwt()` verifies with PyJWT against
/v1/jwks, `credentials()` works inside `mlcred run` (and in workers the job starts), phi roles
are refused by `role()`, and each error the daemon answers arrives as its exception class,
never with a token in its text."""
import ast
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import zlib

import pytest

from conftest import (ML_USER, REPO, WRITE_REPORT, as_user, cli_env, parse_time, role_toml, run_job_report, wait_for)
from peers import VENV

CLIENT_SOURCE = os.path.join(REPO, "clients", "python")
VENV_PYTHON = os.path.join(VENV, "bin", "python")
ISSUER = "https://mlcred.test"
HF_VALUE = "hf_PYCLIENTVALUE0123456789"
WRONG_SECRET = "wrongSecretKEY-pyclient-0123456789abcdef"  # right key id, wrong secret
PIP_TIMEOUT = 300  # seconds: an install that has to fetch setuptools from the package index


# The client, installed as a user installs it

def purelib(python):
    return subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="session")
def client_python(workdir):
    """A fresh virtualenv (world-readable, for the test users) with `pip install
    ./clients/python[boto3]` done in it; its python. The test virtualenv's packages (boto3,
    botocore, PyJWT, pip, setuptools) are visible through a .pth file: `venv
    --system-site-packages` from a virtualenv's python would show the base interpreter's
    packages, not the virtualenv's. pip builds in the source tree (build/, *.egg-info), so it
    builds a copy. Offline first (setuptools from the test virtualenv); if that build cannot be
    made here (setuptools older than 70.1 needs the `wheel` package), as a user's plain `pip
    install` does, with setuptools fetched into pip's build environment."""
    source = os.path.join(workdir, "pyclient-src")
    shutil.copytree(CLIENT_SOURCE, source, ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__"))
    venv = os.path.join(workdir, "pyclient-venv")
    subprocess.run([VENV_PYTHON, "-m", "venv", "--without-pip", venv], check=True, capture_output=True)
    python = os.path.join(venv, "bin", "python")
    with open(os.path.join(purelib(python), "mlcred-test-venv.pth"), "w") as f:
        f.write(purelib(VENV_PYTHON) + "\n")
    install = [python, "-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check", "--no-input",
               source + "[boto3]"]
    env = {**os.environ, "PIP_NO_INPUT": "1"}
    offline = subprocess.run(install + ["--no-index", "--no-build-isolation"], capture_output=True, text=True,
                             env=env, timeout=PIP_TIMEOUT)
    if offline.returncode != 0:
        online = subprocess.run(install, capture_output=True, text=True, env=env, timeout=PIP_TIMEOUT)
        assert online.returncode == 0, f"pip install failed offline:\n{offline.stderr}\nand online:\n{online.stderr}"
    subprocess.run(["chmod", "-R", "a+rX", venv], check=True)
    return python


def run_client(d, python, code, *args, user=ML_USER, env_extra=None, drop=(), timeout=60):
    """Runs `python -c code args...` as `user` against daemon `d` (its socket in MLCRED_SOCKET,
    nothing else of ours in the environment unless `env_extra`; names in `drop` removed); returns
    the JSON the script printed last, failing with its stderr if it did not exit 0."""
    env = cli_env(d.socket if d else None, env_extra)
    for name in drop:
        env.pop(name, None)
    result = subprocess.run(as_user(user) + [python, "-c", code, *args], capture_output=True, text=True, env=env,
                            timeout=timeout)
    assert result.returncode == 0, f"the client script exited {result.returncode}:\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])


# The daemon: roles for the test group, their secrets

def roles(moto, group):
    members = [f"group:{group}"]
    tracking = {"name": "tracking", "secret": "tracking", "type": "jwt", "audience": "mlflow",
                "claims": {"scope": "experiments:write"}}
    s3 = {"name": "s3", "secret": "aws-dev", "type": "aws-assume-role", "role_arn": moto.role_arn}
    hf = {"name": "hf", "secret": "hf", "type": "static", "env": {"HF_TOKEN": "token"}}
    warehouse = {"name": "warehouse", "secret": "warehouse", "type": "postgres-role",
                 "create": ["CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'",
                            "GRANT USAGE ON SCHEMA ml TO \"{{name}}\"", "GRANT SELECT ON ml.features TO \"{{name}}\""]}
    return {
        "notebook.toml": role_toml("notebook", members, tracking, s3, hf, ttl="10m", max_ttl="1h"),
        "tracking.toml": role_toml("tracking-only", members, tracking, ttl="10m"),
        "analyst.toml": role_toml("analyst", members, warehouse, ttl="10m"),
        "badkey.toml": role_toml("badkey", members, {**s3, "secret": "aws-badkey"}),
        "wrongtype.toml": role_toml("wrongtype", members, {**tracking, "secret": "hf"}),
        "finance.toml": role_toml("finance", ["group:finance-nobody"], tracking),
        "phi.toml": role_toml("phi-train", members, {**tracking, "secret": "tracking-phi"}, phi=True),
    }


@pytest.fixture
def broker(broker_factory, users, moto):
    """A dev daemon with the roles above (members: the test group) and the secrets they name;
    moto's recording reset."""
    d = broker_factory(roles(moto, users["ml_group"]))
    d.cli("secret", "generate", "tracking", "--type", "jwt-signer", "--issuer", ISSUER, check=0)
    aws = {"access_key_id": moto.access_key_id, "secret_access_key": moto.secret_access_key,
           "region": moto.region, "endpoint_url": moto.endpoint_url}
    d.cli("secret", "put", "aws-dev", "--type", "aws", input=json.dumps(aws), check=0)
    d.cli("secret", "put", "aws-badkey", "--type", "aws", input=json.dumps({**aws, "secret_access_key": WRONG_SECRET}),
          check=0)
    d.cli("secret", "put", "hf", "--type", "static", input=json.dumps({"token": HF_VALUE}), check=0)
    moto.reset_recording()
    return d


def live_tokens(d, role=None):
    return [t for t in d.tokens() if role is None or t["role"] == role]


def signing_key(request):
    authorization = request["headers"].get("Authorization", "")
    return authorization.split("Credential=", 1)[1].split("/", 1)[0] if "Credential=" in authorization else None


def verify_jwt(d, token, user):
    """Verifies `token` with PyJWT against the daemon's /v1/jwks (fetched here, not by the client):
    EdDSA, audience mlflow, our issuer, subject `user`; returns the claims."""
    import jwt
    from jwt.algorithms import OKPAlgorithm
    status, jwks = d.http("GET", "/v1/jwks")
    assert status == 200, jwks
    keys = {key["kid"]: key for key in jwks["keys"]}
    key = OKPAlgorithm.from_jwk(json.dumps(keys[jwt.get_unverified_header(token)["kid"]]))
    claims = jwt.decode(token, key=key, algorithms=["EdDSA"], audience="mlflow", issuer=ISSUER,
                        options={"require": ["exp", "iat", "nbf", "jti", "sub", "aud", "iss"]})
    assert claims["sub"] == user and claims["scope"] == "experiments:write", claims
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(token, key=key, algorithms=["EdDSA"], audience="someone-else", issuer=ISSUER)
    return claims


# 1. The package

INSTALLED = r'''
import importlib.metadata, json, os, sys
import mlcred
report = {"file": mlcred.__file__, "version": mlcred.__version__,
          "typed": os.path.exists(os.path.join(os.path.dirname(mlcred.__file__), "py.typed")),
          "requires": importlib.metadata.requires("mlcred") or [],
          "modules": sorted(n for n in os.listdir(os.path.dirname(mlcred.__file__)) if n.endswith(".py")),
          "missing": [n for n in ("MLCredError", "BadRequest", "Unauthenticated", "Denied", "NotFound", "Conflict",
                                  "TooLarge", "RateLimited", "Internal", "Upstream", "Sealed", "Uninitialized",
                                  "Unavailable", "StoreFull", "Unreachable", "role", "credentials", "jwt",
                                  "boto3_session", "Client") if not hasattr(mlcred, n)],
          "status": mlcred.status(),
          "third_party": sorted(m for m in ("boto3", "botocore", "jwt", "requests", "urllib3") if m in sys.modules)}
print(json.dumps(report))
'''


def test_pip_installs_a_typed_stdlib_only_client_that_imports_boto3_only_when_asked(broker, client_python):
    seen = run_client(broker, client_python, INSTALLED)
    assert seen["file"].startswith(purelib(client_python) + "/mlcred/"), seen["file"]
    assert seen["typed"] is True, "py.typed is installed: the package is typed (PEP 561)"
    assert seen["version"] == seen["status"]["version"] == "0.1.0"
    assert all("extra ==" in requirement for requirement in seen["requires"]), seen["requires"]
    assert any(r.startswith("boto3") for r in seen["requires"]), seen["requires"]
    assert seen["missing"] == [], "exported at the top level"
    assert seen["third_party"] == [], "import mlcred and a call pull in nothing but the standard library"
    # Python 3.9 syntax throughout (SPEC §14: Python >= 3.9).
    for name in seen["modules"]:
        with open(os.path.join(os.path.dirname(seen["file"]), name)) as f:
            ast.parse(f.read(), filename=name, feature_version=(3, 9))


# 2. role(): notebooks and scripts outside `mlcred run`

ROLE_SCRIPT = r'''
import json
import mlcred
with mlcred.role("notebook", ttl="5m") as creds:
    report = {"env": creds.env, "token": creds.token, "accessor": creds.accessor, "repr": repr(creds),
              "expires_at": creds.expires_at.isoformat(), "leases": [[l["grant"], l["type"]] for l in creds.leases],
              "whoami": mlcred.whoami()}
report["revoked"] = creds.revoked
report["still_valid"] = sorted(l["grant"] for l in creds.revocation["still_valid"])
print(json.dumps(report))
'''


def test_role_in_a_script_gives_the_grants_variables_and_leaves_no_live_token(broker, client_python, moto):
    seen = run_client(broker, client_python, ROLE_SCRIPT)
    env = seen["env"]
    assert env["HF_TOKEN"] == HF_VALUE and env["MLCRED_JWT"].count(".") == 2
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"] and env["AWS_SESSION_TOKEN"]
    assert env["AWS_ACCESS_KEY_ID"] != moto.access_key_id and env["AWS_REGION"] == moto.region
    assert env["MLCRED_TOKEN"] == seen["token"] and seen["token"].startswith("mlc_")
    assert env["MLCRED_ROLE"] == "notebook" and env["MLCRED_SOCKET"] == broker.socket
    remaining = (parse_time(seen["expires_at"]) - parse_time(env["MLCRED_EXPIRES_AT"])).total_seconds()
    assert remaining == 0 and 4 * 60 < (parse_time(seen["expires_at"]).timestamp() - time.time()) <= 5 * 60
    assert sorted(seen["leases"]) == [["hf", "static"], ["s3", "aws-assume-role"], ["tracking", "jwt"]]
    assert seen["whoami"]["principal"]["user"] == ML_USER and "notebook" in seen["whoami"]["roles"]
    assert seen["token"] not in seen["repr"] and HF_VALUE not in seen["repr"] and seen["accessor"] in seen["repr"]

    # Afterwards: revoked, and so are its leases; the daemon says what stays valid at providers.
    assert seen["revoked"] is True and seen["still_valid"] == ["hf", "s3", "tracking"]
    assert live_tokens(broker, "notebook") == []
    mine = [lease for lease in broker.leases() if lease["accessor"] == seen["accessor"]]
    assert len(mine) == 3 and all(lease["state"] != "active" for lease in mine), mine
    revoked = [r for r in broker.audit(limit=200) if r["action"] == "token.revoke" and r["accessor"] == seen["accessor"]]
    assert revoked and revoked[-1]["result"] == "allowed" and revoked[-1]["principal"]["user"] == ML_USER
    status, body = broker.http("POST", "/v1/credentials", {}, token=seen["token"], user=ML_USER)
    assert (status, body["error"]["reason"]) == (401, "token_revoked"), body


RAISING_BLOCK = r'''
import json
import mlcred
try:
    with mlcred.role("tracking-only") as creds:
        accessor = creds.accessor
        raise KeyError("the block failed")
except KeyError as error:
    report = {"error": repr(error), "accessor": accessor, "revoked": creds.revoked}
print(json.dumps(report))
'''


def test_role_revokes_its_token_when_the_block_raises_and_lets_the_exception_through(broker, client_python):
    seen = run_client(broker, client_python, RAISING_BLOCK)
    assert seen["error"] == "KeyError('the block failed')" and seen["revoked"] is True
    assert live_tokens(broker) == []
    assert [r["result"] for r in broker.audit(limit=200)
            if r["action"] == "token.revoke" and r["accessor"] == seen["accessor"]] == ["allowed"]


PSQL_IN_ROLE = r'''
import json, subprocess, sys
import mlcred
with mlcred.role("analyst") as creds:
    env = {"PATH": "/usr/bin:/bin", **{k: v for k, v in creds.env.items() if k.startswith("PG")}}
    query = subprocess.run(["psql", "-X", "-At", "-c", "select current_user, count(*) from ml.features"],
                           capture_output=True, text=True, env=env)
    report = {"user": creds.env["PGUSER"], "out": query.stdout.strip(), "err": query.stderr}
print(json.dumps(report))
'''


def test_the_postgres_login_of_a_role_block_works_inside_it_and_is_dropped_when_it_ends(broker, client_python, postgres):
    broker.cli("secret", "put", "warehouse", "--type", "postgres", input=json.dumps(postgres.secret_fields()), check=0)
    seen = run_client(broker, client_python, PSQL_IN_ROLE)
    assert seen["out"] == f"{seen['user']}|3", seen
    # Revoked when the block ended: the login made for it is dropped (revocation is confirmed
    # by PostgreSQL, so the role is gone or going at once).
    wait_for(lambda: seen["user"] not in postgres.roles(seen["user"]), 10, f"role {seen['user']} to be dropped",
             interval=0.1)
    assert live_tokens(broker) == []


# 3. boto3_session(): a refresh before expiry

# botocore refreshes when credentials are within 15 minutes (advisory) or 10 minutes (mandatory)
# of expiry, by the clock the RefreshableCredentials was made with (botocore.credentials._local_now,
# bound as a default argument: patched on the object as well). Moved to 5 minutes before the end.
BOTO3_REFRESH = r'''
import datetime, json, sys
import botocore.credentials as bc
import mlcred
endpoint = sys.argv[1]
with mlcred.role("notebook") as creds:
    session = creds.boto3_session()
    sts = session.client("sts", endpoint_url=endpoint)
    first = sts.get_caller_identity()["Arn"]
    c = session.get_credentials()
    key1 = c.get_frozen_credentials().access_key
    real_now = bc._local_now
    lifetime = c._expiry_time - real_now()
    shift = lifetime - datetime.timedelta(minutes=5)
    fake_now = lambda: real_now() + shift
    bc._local_now = fake_now
    c._time_fetcher = fake_now
    needed = c.refresh_needed()
    second = sts.get_caller_identity()["Arn"]
    bc._local_now = real_now
    c._time_fetcher = real_now
    key2 = c.get_frozen_credentials().access_key
    report = {"first": first, "second": second, "key1": key1, "key2": key2, "needed": needed,
              "env_key": creds.env["AWS_ACCESS_KEY_ID"], "class": type(c).__name__, "method": c.method,
              "region": session.region_name, "lifetime_s": lifetime.total_seconds()}
print(json.dumps(report))
'''


def test_boto3_session_keeps_working_across_a_forced_refresh_with_exactly_one_more_session(broker, client_python, moto):
    seen = run_client(broker, client_python, BOTO3_REFRESH, moto.endpoint_url,
                      env_extra={"AWS_ACCESS_KEY_ID": "AKIASHELLSHADOW00000", "AWS_SECRET_ACCESS_KEY": "shell"})
    assert seen["class"] == "RefreshableCredentials" and seen["method"] == "mlcred", seen
    assert seen["region"] == moto.region
    assert seen["lifetime_s"] >= 29 * 60, seen
    # The session starts from the STS session role() already minted: no second one for it.
    assert seen["key1"] == seen["env_key"]
    assert seen["needed"] is True and seen["key1"] != seen["key2"], "no refresh from the daemon near the end"
    prefix = f"arn:aws:sts::{moto.account_id}:assumed-role/{moto.role_name}/"
    assert seen["first"].startswith(prefix) and seen["second"].startswith(prefix), seen
    # Exactly two sessions (role()'s, the refresh's), both signed by the broker; both identity
    # calls went through once (no call failed and was retried), signed with the old then the new key.
    assumes = moto.calls("AssumeRole")
    assert len(assumes) == 2 and all(signing_key(c) == moto.access_key_id for c in assumes), \
        [c["params"] for c in assumes]
    assert [signing_key(c) for c in moto.calls("GetCallerIdentity")] == [seen["key1"], seen["key2"]]


# 4. jwt(), verified with PyJWT

JWT_SCRIPT = r'''
import json
import mlcred
with mlcred.role("tracking-only") as creds:
    report = {"jwt": creds.jwt("tracking"), "jwks": creds.client.jwks(), "expires_at": creds.expires_at.timestamp()}
print(json.dumps(report))
'''


def test_jwt_verifies_with_pyjwt_against_the_daemons_jwks(broker, client_python):
    seen = run_client(broker, client_python, JWT_SCRIPT)
    claims = verify_jwt(broker, seen["jwt"], ML_USER)
    assert abs(claims["exp"] - seen["expires_at"]) <= 1, "a JWT expires with its token"
    assert seen["jwks"] == broker.http("GET", "/v1/jwks")[1]


# 5. Inside `mlcred run`

IN_RUN = r'''
import json, os, sys
import mlcred
creds = mlcred.credentials()
token = mlcred.jwt("tracking")
session = mlcred.boto3_session()
report = {"env": sorted(creds.env), "hf": creds.env.get("HF_TOKEN"), "leases": [l["accessor"] for l in creds.leases],
          "roles": sorted({l["role"] for l in creds.leases}), "jwt": token, "user": mlcred.whoami()["principal"]["user"],
          "arn": session.client("sts").get_caller_identity()["Arn"], "method": session.get_credentials().method,
          "client": repr(mlcred.Client()), "token_in_repr": os.environ["MLCRED_TOKEN"] in repr(mlcred.Client())}
''' + WRITE_REPORT


def test_credentials_jwt_and_boto3_session_inside_mlcred_run_use_the_jobs_token(broker, client_python, moto, scratch):
    _, seen = run_job_report(broker, scratch, "notebook", client_python, "-c", IN_RUN, user=ML_USER)
    assert {"HF_TOKEN", "MLCRED_JWT", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN"} <= set(seen["env"]), seen["env"]
    assert seen["hf"] == HF_VALUE and seen["roles"] == ["notebook"] and len(set(seen["leases"])) == 1
    assert seen["user"] == ML_USER
    verify_jwt(broker, seen["jwt"], ML_USER)
    assert seen["arn"].startswith(f"arn:aws:sts::{moto.account_id}:assumed-role/{moto.role_name}/"), seen["arn"]
    assert seen["method"] == "mlcred", "the session's credentials come from the client, not credential_process"
    assert seen["token_in_repr"] is False and "token=set" in seen["client"]
    # Everything was minted under run's token: revoked with it when the job ended.
    assert live_tokens(broker) == []
    assert all(lease["state"] != "active" for lease in broker.leases() if lease["accessor"] == seen["leases"][0])


FAN_OUT = r'''
import json, multiprocessing, os, sys
import mlcred

def work(n):
    return mlcred.jwt("tracking").count(".")

if __name__ == "__main__":  # spawned workers import this file again: only the parent runs this
    report = {}
    for method in ("fork", "spawn"):
        with multiprocessing.get_context(method).Pool(3) as pool:
            report[method] = pool.map(work, range(6))
''' + "\n".join("    " + line for line in WRITE_REPORT.strip().splitlines()) + "\n"


def test_workers_the_job_starts_share_its_token_and_socket(broker, client_python, scratch):
    script = os.path.join(scratch, "fan_out.py")  # spawn re-imports the main module: a file, not -c
    with open(script, "w") as f:
        f.write(FAN_OUT)
    os.chmod(script, 0o644)
    _, seen = run_job_report(broker, scratch, "tracking-only", client_python, script, user=ML_USER)
    assert seen == {"fork": [2] * 6, "spawn": [2] * 6}, seen
    jwts = [r for r in broker.audit(limit=500) if r["action"] == "credential.issue" and r["role"] == "tracking-only"]
    assert len(jwts) >= 13 and len({r["accessor"] for r in jwts}) == 1, "every worker used the job's one token"
    assert live_tokens(broker) == []


# 6. phi roles

PHI_REFUSED = r'''
import json
import mlcred
try:
    with mlcred.role("phi-train") as creds:
        report = {"entered": True}
except mlcred.Denied as error:
    report = {"entered": False, "reason": error.reason, "status": error.status, "text": str(error)}
print(json.dumps(report))
'''

PHI_IN_RUN = r'''
import json, os, sys
import mlcred
report = {"jwt": mlcred.jwt("tracking").count("."), "role": os.environ["MLCRED_ROLE"]}
''' + WRITE_REPORT


def test_role_refuses_a_phi_role_clearly_and_run_still_serves_it(broker_factory, users, moto, client_python, scratch):
    d = broker_factory(roles(moto, users["ml_group"]), phi=True)
    d.cli("secret", "generate", "tracking-phi", "--type", "jwt-signer", "--phi", check=0)
    seen = run_client(d, client_python, PHI_REFUSED)
    assert seen["entered"] is False and seen["reason"] == "role_phi_run_only" and seen["status"] == 403, seen
    assert "mlcred run" in seen["text"] and "phi" in seen["text"], seen["text"]
    assert live_tokens(d) == []
    denied = [r for r in d.audit(limit=100) if r["action"] == "token.issue" and r["role"] == "phi-train"]
    assert denied and denied[-1]["result"] == "denied" and denied[-1]["principal"]["user"] == ML_USER
    # The way a phi role is used: under run, where the client works as for any role.
    _, job = run_job_report(d, scratch, "phi-train", client_python, "-c", PHI_IN_RUN, user=ML_USER)
    assert job == {"jwt": 2, "role": "phi-train"}
    assert live_tokens(d) == []


# 7. Errors: each exception class the daemon's answers give, with no token in its text

def well_formed_token(body="0" * 43):
    """A token of the right shape and checksum (SPEC §7) that no daemon issued."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    number, check = zlib.crc32(body.encode()), ""
    while number:
        number, digit = divmod(number, 62)
        check = alphabet[digit] + check
    return "mlc_" + body + check.rjust(6, "0")


BOGUS_TOKEN = well_formed_token("Pyclient" + "0" * 35)

CATCH = r'''
import json, pickle, sys, traceback
import mlcred

def catch(name, call):
    try:
        call()
    except mlcred.MLCredError as error:
        copy = pickle.loads(pickle.dumps(error))
        cases[name] = {"class": type(error).__name__, "mro": [c.__name__ for c in type(error).__mro__],
                       "code": error.code, "reason": error.reason, "status": error.status, "message": error.message,
                       "text": str(error) + repr(error) + "".join(traceback.format_exception(type(error), error, error.__traceback__)),
                       "pickled": [type(copy).__name__, copy.reason, copy.status], "details": error.details}
    else:
        cases[name] = {"class": None}

cases = {}
'''

ERRORS = CATCH + r'''
with mlcred.role("tracking-only") as creds:
    live = creds.token
    catch("not_found", lambda: creds.jwt("no-such-grant"))
    catch("too_large", lambda: creds.fetch(["g" * 70000]))
catch("denied_unknown_role", lambda: mlcred.role("no-such-role").__enter__())
catch("denied_policy", lambda: mlcred.role("finance").__enter__())
catch("bad_request", lambda: mlcred.role("tracking-only", ttl="bogus").__enter__())
catch("conflict", lambda: mlcred.role("wrongtype").__enter__())
catch("upstream", lambda: mlcred.role("badkey").__enter__())
catch("unauthenticated_revoked", lambda: mlcred.Client(token=live).credentials())
catch("unauthenticated_unknown", lambda: mlcred.Client(token=sys.argv[1]).jwt("tracking"))
catch("unauthenticated_missing", lambda: mlcred.credentials())
print(json.dumps({"cases": cases, "live": live}))
'''

EXPECTED = {
    # case: (class, code, reason, status)
    "not_found": ("NotFound", "not_found", "grant_missing", 404),
    "too_large": ("TooLarge", "too_large", "body_too_large", 413),
    "denied_unknown_role": ("Denied", "denied", "role_unknown", 403),
    "denied_policy": ("Denied", "denied", "role_denied", 403),
    "bad_request": ("BadRequest", "bad_request", "invalid_ttl", 400),
    "conflict": ("Conflict", "conflict", "secret_type_mismatch", 409),
    "upstream": ("Upstream", "upstream", "upstream_signature", 502),
    "unauthenticated_revoked": ("Unauthenticated", "unauthenticated", "token_revoked", 401),
    "unauthenticated_unknown": ("Unauthenticated", "unauthenticated", "token_unknown", 401),
    "unauthenticated_missing": ("Unauthenticated", "unauthenticated", "token_missing", None),  # said by the client
}


def test_each_refusal_raises_its_exception_with_code_reason_status_and_no_token(broker, client_python):
    seen = run_client(broker, client_python, ERRORS, BOGUS_TOKEN)
    cases = seen["cases"]
    got = {name: (case["class"], case.get("code"), case.get("reason"), case.get("status")) for name, case in cases.items()}
    assert got == EXPECTED
    for name, case in cases.items():
        assert "MLCredError" in case["mro"], name
        assert case["pickled"] == [case["class"], case["reason"], case["status"]], name
        for secret in (seen["live"], BOGUS_TOKEN, WRONG_SECRET, HF_VALUE):
            assert secret not in case["text"], f"{name}: a token or secret in the exception's text"
    assert "SignatureDoesNotMatch" in cases["upstream"]["message"]
    assert "MLCRED_TOKEN" in cases["unauthenticated_missing"]["text"] and "mlcred run" in cases["unauthenticated_missing"]["text"]
    # A role() that failed on entering left no token behind.
    assert live_tokens(broker) == []


SEALED = CATCH + r'''
status = mlcred.status()
catch("role", lambda: mlcred.role("tracking-only").__enter__())
catch("jwks", lambda: mlcred.Client().jwks())
print(json.dumps({"cases": cases, "status": status}))
'''


def test_a_sealed_daemon_raises_sealed_and_an_uninitialized_one_uninitialized(broker, daemon_factory, client_python):
    broker.cli("vault", "seal", check=0)
    seen = run_client(broker, client_python, SEALED)
    assert seen["status"]["sealed"] is True, "status answers in every state"
    for name in ("role", "jwks"):
        case = seen["cases"][name]
        assert (case["class"], case["code"], case["reason"], case["status"]) == ("Sealed", "sealed", "sealed", 503), case

    fresh = daemon_factory().start()  # never initialized
    seen = run_client(fresh, client_python, SEALED)
    assert seen["status"]["initialized"] is False
    case = seen["cases"]["role"]
    assert (case["class"], case["code"], case["reason"], case["status"]) == ("Uninitialized", "uninitialized",
                                                                            "uninitialized", 503), case
    assert "Sealed" in case["mro"], "an uninitialized vault is a Sealed too: nothing is issued until an admin acts"


UNREACHABLE = CATCH + r'''
catch("call", lambda: mlcred.Client().status())
print(json.dumps({"cases": cases}))
'''


def test_a_missing_socket_or_one_nobody_listens_on_raises_unreachable(client_python, users, scratch):
    missing = os.path.join(scratch, "no-such.sock")
    dead = os.path.join(scratch, "dead.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(dead)  # bound, never listening: connecting is refused
    os.chmod(dead, 0o666)
    try:
        for path, reason in ((missing, "socket_missing"), (dead, "connection_refused")):
            case = run_client(None, client_python, UNREACHABLE, env_extra={"MLCRED_SOCKET": path})["cases"]["call"]
            assert (case["class"], case["code"], case["reason"], case["status"]) == ("Unreachable", "unreachable", reason, None)
            assert path in case["message"], case["message"]
    finally:
        listener.close()
    # No MLCRED_SOCKET and no default socket: every path tried is named.
    if os.path.exists("/run/mlcred/mlcred.sock"):
        pytest.skip("a system daemon's socket exists here: the no-socket case cannot be shown")
    empty = os.path.join(scratch, "runtime")
    os.mkdir(empty)
    case = run_client(None, client_python, UNREACHABLE, env_extra={"XDG_RUNTIME_DIR": empty})["cases"]["call"]
    assert (case["class"], case["reason"]) == ("Unreachable", "socket_missing"), case
    assert "/run/mlcred/mlcred.sock" in case["message"] and empty + "/mlcred.sock" in case["message"]
    assert "/nonexistent/.local/share/mlcred/mlcred.sock" in case["message"]


LOCATE = r'''
import json
import mlcred
client = mlcred.Client()
print(json.dumps({"socket": client.socket, "version": client.status()["version"]}))
'''


def test_without_mlcred_socket_the_client_finds_the_socket_where_the_cli_does(broker, client_python, scratch):
    if os.path.exists("/run/mlcred/mlcred.sock"):
        pytest.skip("a system daemon's socket exists here: it would be found first")
    runtime, data, home = (os.path.join(scratch, name) for name in ("runtime", "data", "home"))
    for directory in (runtime, os.path.join(data, "mlcred"), os.path.join(home, ".local", "share", "mlcred")):
        os.makedirs(directory)
    env = {"XDG_RUNTIME_DIR": runtime, "XDG_DATA_HOME": data, "HOME": home}
    order = [os.path.join(home, ".local", "share", "mlcred", "mlcred.sock"),
             os.path.join(data, "mlcred", "mlcred.sock"), os.path.join(runtime, "mlcred.sock")]
    for expected in order:  # each default found once it exists, the earlier ones winning
        if not os.path.lexists(expected):
            os.symlink(broker.socket, expected)
        seen = run_client(None, client_python, LOCATE, env_extra=env)
        assert seen == {"socket": expected, "version": "0.1.0"}, seen
        cli = broker.cli("status", "--json", user=ML_USER, env_extra={**env, "MLCRED_SOCKET": ""})
        assert cli.returncode == 0, f"the CLI finds a socket there too: {cli.err}"


# 8. Answers this daemon does not give on demand, from a stand-in server

CANNED = {
    "/rate": (429, {"error": {"code": "rate_limited", "message": "too many connections"}}),  # no reason: older daemons
    "/internal": (500, {"error": {"code": "internal", "reason": "secret_corrupt", "message": "secret 'x' failed to decrypt"}}),
    "/unavailable": (503, {"error": {"code": "unavailable", "reason": "store_unavailable", "message": "store down"}}),
    "/full": (507, {"error": {"code": "store_full", "reason": "store_full", "message": "store below its reserve"}}),
    "/newer": (403, {"error": {"code": "some_future_code", "reason": "some_future_reason", "message": "newer"}}),
    "/details": (400, {"error": {"code": "bad_request", "reason": "policy_invalid", "message": "2 errors",
                                 "details": ["a.toml:1: x", "b.toml:2: y"]}}),
    "/not-json": (200, None),
}


class StandIn:
    """A Unix-socket server answering each path with a canned status and body; `/not-json`
    echoes the request (its Authorization header included) as a body that is not JSON."""

    def __init__(self, path):
        self.path = path
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        os.chmod(path, 0o666)
        self.server.listen(16)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with connection:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    request += chunk
                target = request.split(b" ", 2)[1].decode() if request.count(b" ") >= 2 else "/"
                status, body = CANNED.get(target, (404, {"error": {"code": "not_found"}}))
                payload = b"<html>" + request + b"</html>" if body is None else json.dumps(body).encode()
                connection.sendall(f"HTTP/1.1 {status} X\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
                                   .encode() + payload)

    def close(self):
        self.server.close()


STAND_IN = CATCH + r'''
client = mlcred.Client(token=sys.argv[1])
for path in ("/rate", "/internal", "/unavailable", "/full", "/newer", "/details", "/not-json"):
    catch(path, lambda: client.call("POST", path, {}, bearer=True))
print(json.dumps({"cases": cases}))
'''


def test_every_error_code_maps_to_its_class_and_an_odd_answer_is_a_protocol_error(client_python, users, scratch):
    stand_in = StandIn(os.path.join(scratch, "stand-in.sock"))
    try:
        cases = run_client(None, client_python, STAND_IN, BOGUS_TOKEN, env_extra={"MLCRED_SOCKET": stand_in.path})["cases"]
    finally:
        stand_in.close()
    got = {path: (case["class"], case["code"], case["reason"], case["status"]) for path, case in cases.items()}
    assert got == {
        "/rate": ("RateLimited", "rate_limited", None, 429),
        "/internal": ("Internal", "internal", "secret_corrupt", 500),
        "/unavailable": ("Unavailable", "unavailable", "store_unavailable", 503),
        "/full": ("StoreFull", "store_full", "store_full", 507),
        "/newer": ("Denied", "some_future_code", "some_future_reason", 403),  # an unknown code: its status decides
        "/details": ("BadRequest", "bad_request", "policy_invalid", 400),
        "/not-json": ("ProtocolError", "protocol_error", None, None),
    }
    assert cases["/details"]["details"] == ["a.toml:1: x", "b.toml:2: y"]
    for path, case in cases.items():
        assert BOGUS_TOKEN not in case["text"], f"{path}: the token reached the exception's text"
