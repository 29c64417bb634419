"""`Client`: the daemon's API as Python calls, and the types of its answers."""
from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, TypedDict

from ._errors import BadRequest, Unauthenticated
from ._transport import ANSWER_TIMEOUT, locate_socket, request

if TYPE_CHECKING:
    import boto3


__all__ = ["Client", "Credentials", "Lease", "Status", "Whoami", "Principal", "TokenInfo", "parse_time"]


class Status(TypedDict):
    """`GET /v1/status`."""
    initialized: bool
    sealed: bool
    environment: str
    phi: bool
    version: str


class Principal(TypedDict):
    """The caller as the kernel describes it to the daemon."""
    uid: int
    gid: int
    user: Optional[str]
    pid: int
    groups: List[int]
    unit: Optional[str]


class Whoami(TypedDict):
    """`GET /v1/whoami`: the caller, and the roles it may assume here."""
    principal: Principal
    group_names: List[str]
    admin: bool
    environment: str
    roles: List[str]
    emergency_roles: List[str]


class Lease(TypedDict):
    """One credential handed out under a token (SPEC §7)."""
    id: str
    accessor: str
    role: str
    grant: str
    type: str
    provider_id: str
    expires_at: str
    state: str
    last_error: Optional[str]


class TokenInfo(TypedDict):
    """A token as `POST /v1/tokens/renew` describes it (never the token itself)."""
    accessor: str
    role: str
    phi: bool
    uid: int
    user: Optional[str]
    pid: int
    bound: bool
    issued_at: str
    expires_at: str
    max_expires_at: str
    state: str
    revoke_reason: Optional[str]


def parse_time(text: str) -> datetime:
    """An RFC 3339 time as the daemon writes it (`2026-12-01T18:54:01.268Z`) as an aware datetime
    (Python 3.9's `fromisoformat` takes neither `Z` nor every fraction length)."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    head, sign, offset = value, "", ""
    for index in range(len(value) - 1, 9, -1):
        if value[index] in "+-":
            head, sign, offset = value[:index], value[index], value[index:]
            break
    if "." in head:
        seconds, fraction = head.split(".", 1)
        head = seconds + "." + (fraction + "000000")[:6]
    parsed = datetime.fromisoformat(head + (offset if sign else ""))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


class Credentials:
    """The answer to a credentials request: `env` (the variables a job would get), `files`,
    `leases` (one per grant), `expires_at` (the token's expiry, an aware datetime), `plain` (the
    names in `env` whose values are not secret: hosts, ports, regions).

    Its repr names the variables, never their values."""

    __slots__ = ("env", "files", "leases", "expires_at", "plain", "aws")

    def __init__(self, answer: Dict[str, Any]) -> None:
        self.env: Dict[str, str] = dict(answer.get("env") or {})
        self.files: Dict[str, str] = dict(answer.get("files") or {})
        self.leases: List[Lease] = list(answer.get("leases") or [])
        self.expires_at: datetime = parse_time(answer["expires_at"])
        self.plain: List[str] = list(answer.get("plain") or [])
        #: With `aws="defer"`: the AWS grants left for later, `[{"grant", "region", "endpoint_url"}]`.
        self.aws: List[Dict[str, Any]] = list(answer.get("aws") or [])

    def __repr__(self) -> str:
        return (f"Credentials(env=[{', '.join(sorted(self.env))}], leases={[l.get('grant') for l in self.leases]}, "
                f"expires_at={self.expires_at.isoformat()!r})")


class Client:
    """A client of the local mlcred daemon.

    `socket`: the daemon's socket; default as `mlcred` finds it (SPEC §5): `$MLCRED_SOCKET`,
    else the first that exists of `/run/mlcred/mlcred.sock`, `$XDG_RUNTIME_DIR/mlcred.sock`,
    `$XDG_DATA_HOME/mlcred/mlcred.sock`, `~/.local/share/mlcred/mlcred.sock` (`Unreachable`
    when none does). `token`: the token for the calls that need one; default `$MLCRED_TOKEN`,
    which `mlcred run` gives its job. Both are read when the client is made.

    A client holds no connection (each call opens and closes its own), so one may be shared
    between threads and survives `fork`."""

    def __init__(self, socket: Optional[str] = None, token: Optional[str] = None,
                 timeout: float = ANSWER_TIMEOUT) -> None:
        self.socket: str = locate_socket(socket)
        self._token: Optional[str] = token if token is not None else (os.environ.get("MLCRED_TOKEN") or None)
        self.timeout: float = timeout

    def __repr__(self) -> str:
        # Threat: a repr lands in logs and notebooks; the token stays out of it.
        return f"Client(socket={self.socket!r}, token={'set' if self._token else 'none'})"

    @property
    def has_token(self) -> bool:
        """Whether calls that need a token have one."""
        return bool(self._token)

    # The raw API

    def call(self, method: str, path: str, body: Optional[Dict[str, Any]] = None, *, bearer: bool = False) -> Any:
        """One API request (`docs/api.md`): its parsed JSON answer, or the `MLCredError` of its
        error. With `bearer`, the client's token goes along (`Unauthenticated`, reason
        `token_missing`, when there is none)."""
        token = None
        if bearer:
            if not self._token:
                raise Unauthenticated(
                    "no token: MLCRED_TOKEN is not set", reason="token_missing",
                    hint="run this under 'mlcred run --role R -- ...', or use 'with mlcred.role(R) as creds:'")
            token = self._token
        return request(self.socket, method, path, body, token=token, timeout=self.timeout)

    # Anyone

    def status(self) -> Status:
        """The daemon's state: `{initialized, sealed, environment, phi, version}` (answers in every state)."""
        answer: Status = self.call("GET", "/v1/status")
        return answer

    def whoami(self) -> Whoami:
        """The caller as the daemon sees it, and the roles it may assume here."""
        answer: Whoami = self.call("GET", "/v1/whoami")
        return answer

    def jwks(self) -> Dict[str, Any]:
        """The public keys that verify the JWTs of jwt grants (`{"keys": [...]}`, JWK Ed25519)."""
        answer: Dict[str, Any] = self.call("GET", "/v1/jwks")
        return answer

    # Under a token

    def credentials(self, grants: Optional[Sequence[str]] = None, *, aws: Optional[str] = None) -> Credentials:
        """Mints credentials under the token (`POST /v1/credentials`): every grant of the role,
        or those named in `grants`. Each becomes a lease ended with the token. `aws`: `mint`
        (default: STS is called now), `defer` or `only` (docs/api.md)."""
        if isinstance(grants, str):
            raise BadRequest("grants must be a list of grant names, not one string", reason="invalid_body",
                             hint=f"credentials([{grants!r}])")
        body: Dict[str, Any] = {}
        if grants is not None:
            body["grants"] = list(grants)
        if aws is not None:
            body["aws"] = aws
        return Credentials(self.call("POST", "/v1/credentials", body, bearer=True))

    def jwt(self, grant: str) -> str:
        """A fresh JWT of the jwt grant `grant` (its `exp` is the token's expiry). `NotFound`
        (`grant_missing`) when the role has no such grant; `BadRequest` (`grant_not_jwt`) when
        the grant is of another type."""
        minted = self.credentials([grant])
        kinds = {lease.get("type") for lease in minted.leases if lease.get("grant") == grant}
        if kinds and kinds != {"jwt"}:
            raise BadRequest(f"grant '{grant}' is a {', '.join(sorted(str(k) for k in kinds))} grant, not a jwt grant",
                             reason="grant_not_jwt")
        # One grant asked for: its one secret variable is the JWT (MLCRED_JWT, or its env name).
        values = {value for name, value in minted.env.items() if name not in minted.plain}
        if len(values) != 1:
            raise BadRequest(f"grant '{grant}' gave {len(values)} values, not one JWT", reason="grant_not_jwt")
        return values.pop()

    def renew(self, ttl: Optional[str] = None) -> TokenInfo:
        """Extends the token's life (`POST /v1/tokens/renew`): to min(now + min(ttl, role ttl),
        the role's max_ttl from issue), never shorter than it was."""
        answer: TokenInfo = self.call("POST", "/v1/tokens/renew", {} if ttl is None else {"ttl": ttl}, bearer=True)
        return answer

    def revoke(self) -> Dict[str, Any]:
        """Revokes the token and every lease under it (`POST /v1/tokens/revoke`):
        `{"revoked": true, "unconfirmed": [...], "still_valid": [...]}`."""
        answer: Dict[str, Any] = self.call("POST", "/v1/tokens/revoke", bearer=True)
        return answer

    def boto3_session(self, grant: Optional[str] = None, region_name: Optional[str] = None) -> "boto3.Session":
        """A `boto3.Session` with the STS credentials of the AWS grant `grant` (default: the
        role's first AWS grant), refreshed from the daemon before they expire (botocore
        `RefreshableCredentials`). The first are fetched now: a refusal raises here, not at
        the first AWS call. The region is the secret's unless `region_name` is given."""
        from ._aws import make_session
        return make_session(self, grant, region_name)

    # Tokens (what `role()` is made of)

    def issue_token(self, role: str, ttl: Optional[str] = None, *, credentials: bool = False) -> Dict[str, Any]:
        """Obtains a token for `role` (`POST /v1/tokens`), not bound to any process: it lives
        until its ttl or its revocation. With `credentials`, the role's credentials come in
        the same answer (under `credentials`). Prefer `mlcred.role()`, which revokes it."""
        body: Dict[str, Any] = {"role": role}
        if ttl is not None:
            body["ttl"] = ttl
        if credentials:
            body["credentials"] = True
        answer: Dict[str, Any] = self.call("POST", "/v1/tokens", body)
        return answer

    def with_token(self, token: Optional[str]) -> "Client":
        """A client of the same daemon that presents `token`."""
        other = Client.__new__(Client)
        other.socket, other._token, other.timeout = self.socket, token, self.timeout
        return other

