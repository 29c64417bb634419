"""Python client for mlcred: short-lived credentials from the local `mlcredd`.

Inside `mlcred run` (the job's `$MLCRED_TOKEN` and `$MLCRED_SOCKET` are used)::

    import mlcred
    token = mlcred.jwt("tracking")           # a fresh JWT of the role's jwt grant
    s3 = mlcred.boto3_session().client("s3")  # STS credentials, refreshed before expiry

In a notebook or a script started by hand::

    with mlcred.role("train") as creds:      # a token for the role, revoked on leaving
        creds.env["MLCRED_JWT"]

Standard library only; boto3 is imported by `boto3_session()` alone. Errors are `MLCredError`
subclasses, one per API error code, carrying `.code`, `.reason`, `.message`, `.status`.
The guide: docs/python.md."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence

from ._client import Client, Credentials, Lease, Principal, Status, TokenInfo, Whoami
from ._errors import (BadRequest, Conflict, Denied, Internal, MLCredError, NotFound, ProtocolError, RateLimited,
                      Sealed, StoreFull, TooLarge, Unauthenticated, Unavailable, Uninitialized, Unreachable, Upstream)
from ._role import RoleContext, RoleCredentials, role
from ._transport import default_socket_candidates, locate_socket

if TYPE_CHECKING:
    import boto3

__version__ = "0.1.0"

__all__ = [
    "Client", "Credentials", "Lease", "Principal", "Status", "TokenInfo", "Whoami",
    "RoleContext", "RoleCredentials",
    "role", "credentials", "jwt", "boto3_session", "whoami", "status", "locate_socket", "default_socket_candidates",
    "MLCredError", "BadRequest", "Unauthenticated", "Denied", "NotFound", "Conflict", "TooLarge", "RateLimited",
    "Internal", "Upstream", "Sealed", "Uninitialized", "Unavailable", "StoreFull", "Unreachable", "ProtocolError",
    "__version__",
]

# The module-level calls make a default `Client()` each time: it reads `$MLCRED_SOCKET` and
# `$MLCRED_TOKEN` as they are now (a notebook may set them after import) and holds no connection.


def credentials(grants: Optional[Sequence[str]] = None) -> Credentials:
    """The role's credentials under `$MLCRED_TOKEN` (inside `mlcred run`): every grant, or those
    named. `Unauthenticated` (reason `token_missing`) outside `mlcred run`."""
    return Client().credentials(grants)


def jwt(grant: str) -> str:
    """A fresh JWT of the jwt grant `grant` of the job's role (its `exp` is the token's expiry)."""
    return Client().jwt(grant)


def boto3_session(grant: Optional[str] = None, region_name: Optional[str] = None) -> "boto3.Session":
    """A `boto3.Session` for the job's AWS grant `grant` (default: its role's first), whose
    credentials refresh from the daemon before they expire (needs boto3)."""
    return Client().boto3_session(grant, region_name)


def whoami() -> Whoami:
    """The caller as the daemon sees it, and the roles it may assume."""
    return Client().whoami()


def status() -> Status:
    """The daemon's state: initialized, sealed, environment, phi, version."""
    return Client().status()
