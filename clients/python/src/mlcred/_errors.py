"""The exceptions: one class per API error `code` (SPEC §9, docs/api.md), plus `Unreachable`
for a daemon that cannot be reached and `ProtocolError` for an answer that is not the daemon's.

Callers branch on the class (or `.code`) and on `.reason`, never on `.message`: messages may be
reworded, reasons are not. A daemon may send a reason this client does not know, or none."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type

__all__ = [
    "MLCredError", "BadRequest", "Unauthenticated", "Denied", "NotFound", "Conflict", "TooLarge",
    "RateLimited", "Internal", "Upstream", "Sealed", "Uninitialized", "Unavailable", "StoreFull",
    "Unreachable", "ProtocolError", "error_for",
]


class MLCredError(Exception):
    """An error of the mlcred daemon or of reaching it.

    `code` is the API's error class (`denied`, `sealed`, ...; `unreachable` and `protocol_error`
    for the client's own), `reason` the stable snake_case cause (`role_denied`, `token_revoked`,
    ...; None when the daemon sent none), `message` a sentence for people, `status` the HTTP
    status (None when no answer came), `details` the detail lines some errors carry (every
    diagnostic of a failed policy reload), `hint` what to do next, when the client knows.

    Threat: exceptions end up in logs, notebooks and crash reporters. No token or credential
    value is ever part of one: the daemon never puts one in a message, and this client never
    adds one (nor chains an exception that holds an answer's body)."""

    #: The API error code this class stands for (subclasses set it).
    default_code = "error"

    def __init__(self, message: str, *, code: Optional[str] = None, reason: Optional[str] = None,
                 status: Optional[int] = None, details: Sequence[str] = (), hint: Optional[str] = None) -> None:
        super().__init__(message)
        self.message: str = message
        self.code: str = code or self.default_code
        self.reason: Optional[str] = reason
        self.status: Optional[int] = status
        self.details: List[str] = list(details)
        self.hint: Optional[str] = hint

    def __str__(self) -> str:
        text = self.message
        if self.hint:
            text += f" (hint: {self.hint})"
        return text

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(code={self.code!r}, reason={self.reason!r}, status={self.status!r}, "
                f"message={self.message!r})")

    def __reduce__(self) -> Tuple[Callable[..., MLCredError], Tuple[Any, ...]]:
        # Picklable with its fields (multiprocessing and Ray send exceptions between processes).
        return (_rebuild, (type(self), self.message, self.code, self.reason, self.status, self.details, self.hint))


def _rebuild(cls: Type[MLCredError], message: str, code: str, reason: Optional[str], status: Optional[int],
             details: List[str], hint: Optional[str]) -> MLCredError:
    return cls(message, code=code, reason=reason, status=status, details=details, hint=hint)


class BadRequest(MLCredError):
    """400: a malformed request or an invalid value (`invalid_ttl`, `invalid_body`, ...)."""
    default_code = "bad_request"


class Unauthenticated(MLCredError):
    """401: no, a malformed, unknown, expired or revoked token (`token_missing`, `token_revoked`, ...)."""
    default_code = "unauthenticated"


class Denied(MLCredError):
    """403: a policy refusal (also for a role that does not exist), not an admin, another uid's
    token, a phi role asked for outside `mlcred run` (`role_denied`, `role_phi_run_only`, ...)."""
    default_code = "denied"


class NotFound(MLCredError):
    """404: no such route, secret, grant, lease or token (`grant_missing`, `secret_missing`, ...)."""
    default_code = "not_found"


class Conflict(MLCredError):
    """409: the vault's state or a secret stands in the way (`secret_type_mismatch`, `variable_conflict`, ...)."""
    default_code = "conflict"


class TooLarge(MLCredError):
    """413: headers over 8 KiB or a body over 64 KiB."""
    default_code = "too_large"


class RateLimited(MLCredError):
    """429: the daemon's connection caps are reached; try again shortly."""
    default_code = "rate_limited"


class Internal(MLCredError):
    """500: a failure inside the daemon (its log has the details)."""
    default_code = "internal"


class Upstream(MLCredError):
    """502: a provider (AWS STS, PostgreSQL) failed or refused; `reason` says how
    (`upstream_signature`, `upstream_unreachable`, ...) and the message quotes the provider."""
    default_code = "upstream"


class Sealed(MLCredError):
    """503: the vault is sealed; an admin must unseal it."""
    default_code = "sealed"


class Uninitialized(Sealed):
    """503: the vault is not initialized; an admin must init it. A `Sealed`: nothing can be
    issued until an admin acts, whichever of the two it is."""
    default_code = "uninitialized"


class Unavailable(MLCredError):
    """503: the daemon's store cannot be reached; it reconnects by itself."""
    default_code = "unavailable"


class StoreFull(MLCredError):
    """507: the daemon's store is below its free-space reserve."""
    default_code = "store_full"


class Unreachable(MLCredError):
    """No daemon answers: no socket found, nothing listening, the socket refused this user, or
    the connection broke before an answer came. `path` is the socket tried (or every default
    tried, comma-joined, when none exists); `errno` the system error, when there was one."""
    default_code = "unreachable"

    def __init__(self, message: str, *, path: Optional[str] = None, errno: Optional[int] = None,
                 reason: Optional[str] = None, hint: Optional[str] = None, code: Optional[str] = None,
                 status: Optional[int] = None, details: Sequence[str] = ()) -> None:
        super().__init__(message, code=code, reason=reason, status=status, details=details, hint=hint)
        self.path: Optional[str] = path
        self.errno: Optional[int] = errno

    def __reduce__(self) -> Tuple[Callable[..., MLCredError], Tuple[Any, ...]]:
        return (_rebuild_unreachable, (self.message, self.path, self.errno, self.reason, self.hint))


def _rebuild_unreachable(message: str, path: Optional[str], errno: Optional[int], reason: Optional[str],
                         hint: Optional[str]) -> Unreachable:
    return Unreachable(message, path=path, errno=errno, reason=reason, hint=hint)


class ProtocolError(MLCredError):
    """The socket answered, but not with the daemon's HTTP/JSON (a wrong socket, a truncated answer)."""
    default_code = "protocol_error"


_BY_CODE: Dict[str, Type[MLCredError]] = {
    cls.default_code: cls
    for cls in (BadRequest, Unauthenticated, Denied, NotFound, Conflict, TooLarge, RateLimited, Internal, Upstream,
                Sealed, Uninitialized, Unavailable, StoreFull)
}

# The class of an answer whose body names no code this client knows: the status decides, as it
# does for the API (each code has exactly one status; 503 is ambiguous and stays generic).
_BY_STATUS: Dict[int, Type[MLCredError]] = {
    400: BadRequest, 401: Unauthenticated, 403: Denied, 404: NotFound, 409: Conflict, 413: TooLarge,
    429: RateLimited, 500: Internal, 502: Upstream, 507: StoreFull,
}


def error_for(status: int, code: Optional[str], reason: Optional[str], message: Optional[str],
              details: Sequence[str] = ()) -> MLCredError:
    """The exception for an error answer: the class of its `code`, else of its HTTP status
    (an unknown code from a newer daemon), else `MLCredError` itself."""
    cls = _BY_CODE.get(code or "") or _BY_STATUS.get(status) or MLCredError
    return cls(message or f"mlcredd answered HTTP {status}", code=code or cls.default_code, reason=reason,
               status=status, details=details)
