"""`role()`: a token for a role for the length of a `with` block (notebooks, scripts outside
`mlcred run`), revoked when the block ends, however it ends."""
from __future__ import annotations

import os
import warnings
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Type

from ._client import Client, Credentials, Lease, TokenInfo, parse_time
from ._errors import Denied, MLCredError, Unauthenticated

if TYPE_CHECKING:
    import boto3

__all__ = ["role", "RoleContext", "RoleCredentials"]

PHI_HINT = ("phi roles are used only through 'mlcred run --role R -- CMD' (their output is always masked); "
            "run the script under it and call mlcred.credentials() there")
# Revoking a token that is already dead is no failure: it is what was wanted.
_ALREADY_ENDED = {"token_revoked", "token_expired"}


class RoleCredentials:
    """What `role()` yields: the token (`.token`, `.accessor`, `.expires_at`, `.max_expires_at`),
    the role's credentials as variables (`.env`, what `mlcred env` prints: the grants' variables
    plus MLCRED_TOKEN, MLCRED_SOCKET, MLCRED_ROLE, MLCRED_EXPIRES_AT), their `.leases`, and a
    `.client` that presents the token, for more (`.jwt()`, `.boto3_session()`, ...).

    Its repr names the role, the accessor and the variables, never a value."""

    def __init__(self, client: Client, token_answer: Dict[str, Any], credentials: Credentials) -> None:
        self.client: Client = client
        self.role: str = token_answer["role"]
        self.token: str = token_answer["token"]
        self.accessor: str = token_answer["accessor"]
        self.phi: bool = bool(token_answer.get("phi"))
        self.expires_at: datetime = parse_time(token_answer["expires_at"])
        self.max_expires_at: Optional[datetime] = (parse_time(token_answer["max_expires_at"])
                                                   if token_answer.get("max_expires_at") else None)
        self.credentials: Credentials = credentials
        self.leases: List[Lease] = credentials.leases
        env = dict(credentials.env)
        env["MLCRED_TOKEN"] = self.token
        env["MLCRED_SOCKET"] = os.path.abspath(client.socket)
        env["MLCRED_ROLE"] = self.role
        env["MLCRED_EXPIRES_AT"] = token_answer["expires_at"]
        self.env: Dict[str, str] = env
        #: Whether the token has been revoked (by `revoke()` or the end of the `with` block).
        self.revoked: bool = False
        #: The daemon's answer to the revocation: leases it could not confirm yet, and those
        #: that stay valid at their provider until they expire (STS sessions, JWTs).
        self.revocation: Optional[Dict[str, Any]] = None

    def __repr__(self) -> str:
        # Threat: reprs land in notebooks and logs; the token and the values stay out.
        return (f"RoleCredentials(role={self.role!r}, accessor={self.accessor!r}, "
                f"expires_at={self.expires_at.isoformat()!r}, env=[{', '.join(sorted(self.env))}], "
                f"revoked={self.revoked})")

    def jwt(self, grant: str) -> str:
        """A fresh JWT of the role's jwt grant `grant`."""
        return self.client.jwt(grant)

    def fetch(self, grants: Optional[Sequence[str]] = None, *, aws: Optional[str] = None) -> Credentials:
        """More credentials under this token (`Client.credentials`)."""
        return self.client.credentials(grants, aws=aws)

    def boto3_session(self, grant: Optional[str] = None, region_name: Optional[str] = None) -> "boto3.Session":
        """A `boto3.Session` for the role's AWS grant `grant` (default: its first), refreshed
        from the daemon before expiry while the token lives. It starts from the STS session
        already in `.env` when that is the grant's, so no second session is minted."""
        from ._aws import make_session
        return make_session(self.client, grant, region_name, initial=self._aws_env_of(grant))

    def renew(self, ttl: Optional[str] = None) -> TokenInfo:
        """Extends the token's life, up to the role's max_ttl from issue; updates `.expires_at`."""
        info = self.client.renew(ttl)
        self.expires_at = parse_time(info["expires_at"])
        self.env["MLCRED_EXPIRES_AT"] = info["expires_at"]
        return info

    def revoke(self) -> None:
        """Revokes the token and every lease under it (PostgreSQL roles dropped; STS sessions and
        JWTs stay valid at their provider until they expire). Idempotent; a token that already
        expired or was revoked elsewhere counts as revoked."""
        if self.revoked:
            return
        try:
            self.revocation = self.client.revoke()
        except Unauthenticated as error:
            if error.reason not in _ALREADY_ENDED:
                raise
        self.revoked = True

    def _aws_env_of(self, grant: Optional[str]) -> Optional[Dict[str, str]]:
        """The AWS variables of `.env` when they belong to `grant` (or to the first AWS grant when
        `grant` is None), else None."""
        if "AWS_ACCESS_KEY_ID" not in self.env:
            return None
        aws_grants = [lease["grant"] for lease in self.leases if lease.get("type", "").startswith("aws-")]
        if not aws_grants or (grant is not None and grant != aws_grants[0]):
            return None
        return self.env


class RoleContext:
    """The context manager `role()` returns: the token is obtained on entering, revoked on leaving."""

    def __init__(self, name: str, ttl: Optional[str] = None, socket: Optional[str] = None) -> None:
        self.name = name
        self.ttl = ttl
        self.socket = socket
        self._credentials: Optional[RoleCredentials] = None

    def __repr__(self) -> str:
        return f"RoleContext(name={self.name!r}, ttl={self.ttl!r})"

    def __enter__(self) -> RoleCredentials:
        client = Client(self.socket, token="")
        try:
            answer = client.issue_token(self.name, self.ttl, credentials=True)
        except Denied as error:
            if error.reason == "role_phi_run_only":
                error.hint = PHI_HINT
            raise
        bound = client.with_token(answer["token"])
        included = answer.get("credentials")
        if answer.get("phi"):
            # Only a daemon that does not refuse phi roles unbound gets here: refuse all the same.
            _revoke_quietly(bound, self.name)
            raise Denied(f"phi role '{self.name}' is not handed out by mlcred.role()", reason="role_phi_run_only",
                         status=None, hint=PHI_HINT)
        if isinstance(included, dict):
            credentials = Credentials(included)
        else:
            # A daemon that does not mint with the token: ask, and leave no token if that fails.
            try:
                credentials = bound.credentials()
            except BaseException:
                _revoke_quietly(bound, self.name)
                raise
        self._credentials = RoleCredentials(bound, answer, credentials)
        return self._credentials

    def __exit__(self, kind: Optional[Type[BaseException]], error: Optional[BaseException],
                 traceback: Optional[TracebackType]) -> None:
        credentials, self._credentials = self._credentials, None
        if credentials is None:
            return
        if error is None:
            credentials.revoke()
            return
        # The block failed: revoke all the same, and let the block's own exception go on.
        try:
            credentials.revoke()
        except MLCredError as failure:
            _warn_not_revoked(credentials.role, credentials.accessor, failure)


def _revoke_quietly(client: Client, role: str) -> None:
    try:
        client.revoke()
    except MLCredError as failure:
        _warn_not_revoked(role, None, failure)


def _warn_not_revoked(role: str, accessor: Optional[str], failure: MLCredError) -> None:
    which = f" (accessor {accessor})" if accessor else ""
    warnings.warn(f"mlcred: the token of role '{role}'{which} could not be revoked: {failure}; it stays valid "
                  f"until it expires, or 'mlcred token revoke ACCESSOR' (admin)", RuntimeWarning, stacklevel=3)


def role(name: str, ttl: Optional[str] = None, *, socket: Optional[str] = None) -> RoleContext:
    """A context manager: a token for role `name` (lifetime min(`ttl`, the role's ttl)) and the
    role's credentials while the `with` block runs, revoked when it ends, also by an exception.

        with mlcred.role("train") as creds:
            os.environ.update(creds.env)      # or creds.jwt("tracking"), creds.boto3_session()

    Raises `Denied` for a role the caller may not assume (also one that does not exist, as the
    API answers 403) and for a phi role (reason `role_phi_run_only`: those only run under
    `mlcred run`), `BadRequest` for a bad `ttl`, `Sealed`, `Unreachable`, ... as any call."""
    return RoleContext(name, ttl, socket)
