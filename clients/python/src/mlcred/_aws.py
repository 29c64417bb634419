"""`boto3_session()`: a boto3 session whose credentials come from the daemon and are refreshed
from it before they expire. boto3 is imported here only, when a session is asked for."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional

from ._client import Client
from ._errors import BadRequest

if TYPE_CHECKING:
    import boto3

__all__ = ["make_session", "CREDENTIAL_METHOD"]

#: The `method` botocore reports for these credentials (`session.get_credentials().method`).
CREDENTIAL_METHOD = "mlcred"


class _Refresher:
    """Fetches the grant's STS credentials from the daemon, as botocore's `refresh_using`.

    The request is the one `mlcred credential-process` makes (`aws: only`): under `mlcred run`,
    whatever serves that one (the `run` process's session for the job) serves this one too."""

    def __init__(self, client: Client, grant: Optional[str]) -> None:
        self.client = client
        self.grant = grant

    def environment(self) -> Dict[str, str]:
        minted = self.client.credentials([self.grant] if self.grant else None, aws="only")
        env = dict(minted.env)
        env.setdefault("AWS_CREDENTIAL_EXPIRATION", minted.expires_at.isoformat())
        return env

    def __call__(self) -> Dict[str, Any]:
        return metadata(self.environment(), self.grant)


def metadata(env: Dict[str, str], grant: Optional[str]) -> Dict[str, Any]:
    """botocore's credential metadata from the AWS variables of a credentials answer."""
    if not env.get("AWS_ACCESS_KEY_ID") or not env.get("AWS_SECRET_ACCESS_KEY"):
        which = f"grant '{grant}'" if grant else "the role"
        raise BadRequest(f"{which} gave no AWS credentials", reason="grant_not_aws",
                         hint="boto3_session() needs an aws-* grant")
    return {
        "access_key": env["AWS_ACCESS_KEY_ID"],
        "secret_key": env["AWS_SECRET_ACCESS_KEY"],
        "token": env.get("AWS_SESSION_TOKEN"),
        "expiry_time": env["AWS_CREDENTIAL_EXPIRATION"],
    }


def make_session(client: Client, grant: Optional[str], region_name: Optional[str],
                 initial: Optional[Dict[str, str]] = None) -> "boto3.Session":
    """A `boto3.Session` whose credentials are a botocore `RefreshableCredentials` fed by the
    daemon (first from `initial` when given, else fetched now: errors surface here), with the
    secret's region unless `region_name` is given."""
    try:
        import boto3
        import botocore.session
        from botocore.credentials import CredentialProvider, RefreshableCredentials
    except ImportError as error:
        raise ImportError("mlcred.boto3_session() needs boto3: pip install 'mlcred[boto3]'") from error

    refresher = _Refresher(client, grant)
    env = initial if initial is not None else refresher.environment()
    credentials = RefreshableCredentials.create_from_metadata(
        metadata=metadata(env, grant), refresh_using=refresher, method=CREDENTIAL_METHOD)

    class MLCredProvider(CredentialProvider):  # type: ignore[misc,unused-ignore]  # Any without stubs
        METHOD = CREDENTIAL_METHOD
        CANONICAL_NAME = "mlcred"

        def load(self) -> RefreshableCredentials:
            return credentials

    core = botocore.session.Session()
    # First in the chain: neither AWS_* variables of the shell nor a profile can shadow them.
    core.get_component("credential_provider").insert_before("env", MLCredProvider())
    region = region_name or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    return boto3.Session(botocore_session=core, region_name=region)
