"""Finding the daemon's socket, and one HTTP/1.1 exchange with it (JSON in, JSON out).

Each request opens its own connection and closes it (`Connection: close`). A connection to a
local Unix socket costs microseconds; in exchange nothing is shared between threads, and a
process forked while a client exists (DataLoader workers, multiprocessing) never reads an
answer meant for its parent."""
from __future__ import annotations

import errno as errnos
import http.client
import json
import os
import socket
from typing import Any, Dict, List, Optional, Tuple

from ._errors import MLCredError, ProtocolError, Unreachable, error_for

__all__ = ["SYSTEM_SOCKET", "default_socket_candidates", "locate_socket", "request"]

#: The system-wide socket (SPEC §5).
SYSTEM_SOCKET = "/run/mlcred/mlcred.sock"
#: The longest a request waits for its answer, in seconds: as the CLI (an STS or PostgreSQL call
#: behind a credentials request can take a while; an unseal after failures waits up to 30 s).
ANSWER_TIMEOUT = 120.0
#: The longest an answer body may be (the daemon's largest answers, audit pages, are far smaller).
MAX_ANSWER_BYTES = 16 * 1024 * 1024
#: What the client calls itself in `User-Agent`.
USER_AGENT = "mlcred-python"


def _environment(name: str) -> Optional[str]:
    value = os.environ.get(name)
    return value if value else None


def default_socket_candidates() -> List[str]:
    """The default socket paths, in the order they are tried (as `mlcred` tries them):
    `/run/mlcred/mlcred.sock`, `$XDG_RUNTIME_DIR/mlcred.sock`,
    `$XDG_DATA_HOME/mlcred/mlcred.sock`, `$HOME/.local/share/mlcred/mlcred.sock`."""
    candidates = [SYSTEM_SOCKET]
    runtime = _environment("XDG_RUNTIME_DIR")
    if runtime:
        candidates.append(runtime + "/mlcred.sock")
    data = _environment("XDG_DATA_HOME")
    if data:
        candidates.append(data + "/mlcred/mlcred.sock")
    home = _environment("HOME")
    if home:
        candidates.append(home + "/.local/share/mlcred/mlcred.sock")
    return candidates


def locate_socket(explicit: Optional[str] = None) -> str:
    """The socket to use, as the CLI finds it (SPEC §5): `explicit`, else `$MLCRED_SOCKET`
    (both taken as given, not checked), else the first default that exists. Raises
    `Unreachable` naming every path tried when none does."""
    if explicit:
        return explicit
    from_environment = _environment("MLCRED_SOCKET")
    if from_environment:
        return from_environment
    candidates = default_socket_candidates()
    for path in candidates:
        if os.path.exists(path):  # stat, as the CLI: a dangling link does not count
            return path
    raise Unreachable(f"cannot reach mlcredd: no socket found (tried {', '.join(candidates)})",
                      path=", ".join(candidates), reason="socket_missing",
                      hint="start mlcredd, or set MLCRED_SOCKET to its socket")


class _UnixConnection(http.client.HTTPConnection):
    """An HTTP/1.1 connection over a Unix socket (the host name only fills the Host header)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("mlcred", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


_CONNECT_REASONS = {
    errnos.ENOENT: ("socket_missing", "no socket at this path", "start mlcredd, or set MLCRED_SOCKET to its socket"),
    errnos.ECONNREFUSED: ("connection_refused", "nothing listens on this socket", "is mlcredd running?"),
    errnos.EACCES: ("permission_denied", "this user may not open the socket",
                    "the socket's mode or directory keeps this user out"),
    errnos.ENOTSOCK: ("not_a_socket", "this path is not a socket", "check MLCRED_SOCKET"),
}


def _unreachable_on_connect(path: str, error: OSError) -> Unreachable:
    reason, text, hint = _CONNECT_REASONS.get(error.errno or 0, ("connect_failed", error.strerror or str(error), None))
    if isinstance(error, socket.timeout):
        reason, text, hint = "no_answer", "the daemon did not accept the connection in time", None
    return Unreachable(f"cannot reach mlcredd at {path}: {text}", path=path, errno=error.errno, reason=reason, hint=hint)


def request(path: str, method: str, target: str, body: Optional[Dict[str, Any]] = None,
            token: Optional[str] = None, timeout: float = ANSWER_TIMEOUT) -> Any:
    """Sends one request to the daemon at socket `path` and returns the parsed JSON answer of a
    2xx, or raises the `MLCredError` subclass of an error answer, `Unreachable` when no answer
    came, `ProtocolError` when the answer is not the daemon's."""
    payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json", "Connection": "close"}
    if body is not None or method != "GET":
        headers["Content-Type"] = "application/json"
        headers["Content-Length"] = str(len(payload))
    if token:
        headers["Authorization"] = "Bearer " + token
    connection = _UnixConnection(path, timeout)
    failure: Optional[MLCredError] = None
    status, raw = 0, b""
    try:
        try:
            connection.connect()
        except OSError as error:
            failure = _unreachable_on_connect(path, error)
        if failure is None:
            try:
                try:
                    connection.request(method, target, body=payload if (body is not None or method != "GET") else None,
                                       headers=headers)
                except (BrokenPipeError, ConnectionResetError):
                    # The daemon may refuse a request from its head (413 from Content-Length) and
                    # close before reading the body: its answer is still there to read.
                    pass
                answer = connection.getresponse()
                status = answer.status
                raw = answer.read(MAX_ANSWER_BYTES + 1)
            except socket.timeout:
                failure = Unreachable(f"mlcredd at {path} did not answer within {timeout:g} s", path=path,
                                      reason="no_answer")
            except (OSError, http.client.RemoteDisconnected, http.client.IncompleteRead) as error:
                failure = Unreachable(f"mlcredd at {path} closed the connection before answering", path=path,
                                      errno=getattr(error, "errno", None), reason="no_answer")
            except http.client.HTTPException:
                failure = ProtocolError(f"the answer from {path} is not HTTP/1.1: is it mlcredd's socket?")
    finally:
        connection.close()
    # Raised here, outside every `except`: no exception of the transport is chained to ours.
    if failure is not None:
        raise failure
    return _decode(status, raw, path)


def _decode(status: int, raw: bytes, path: str) -> Any:
    if len(raw) > MAX_ANSWER_BYTES:
        raise ProtocolError(f"the answer from {path} is larger than {MAX_ANSWER_BYTES} bytes")
    document, parsed = _parse_json(raw)
    if 200 <= status < 300:
        if not parsed:
            # Threat: the body may hold credentials; the message names its size only.
            raise ProtocolError(f"the answer from {path} (HTTP {status}, {len(raw)} bytes) is not JSON")
        return document
    code, reason, message, details = _error_fields(document)
    raise error_for(status, code, reason, message, details)


def _parse_json(raw: bytes) -> Tuple[Any, bool]:
    """(document, True), or (None, False) when `raw` is not JSON. Never raises: a JSONDecodeError
    holds the whole document, and must not travel up as an exception's context."""
    if not raw:
        return None, False
    try:
        return json.loads(raw), True
    except ValueError:
        return None, False


def _error_fields(document: Any) -> Tuple[Optional[str], Optional[str], Optional[str], List[str]]:
    """code, reason, message and details of `{"error": {...}}`; Nones for an answer of another shape."""
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict):
        return None, None, None, []

    def text(key: str) -> Optional[str]:
        value = error.get(key)
        return value if isinstance(value, str) and value else None

    details = error.get("details")
    lines = [line for line in details if isinstance(line, str)] if isinstance(details, list) else []
    return text("code"), text("reason"), text("message"), lines
