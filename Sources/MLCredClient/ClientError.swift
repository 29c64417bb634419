import MLCredAPI

/// Why a request to the daemon failed.
public enum ClientError: Error, Sendable, CustomStringConvertible {
    /// No daemon answers at `path` (or no socket was found at all). `errno` is the system
    /// error of the failed call, when there was one (EACCES: the socket refused this user).
    case unreachable(path: String, reason: String, errno: Int32?)
    /// The daemon answered with an API error. `reason` is nil when the daemon sent none (older
    /// daemons, the connection limiter) or one this client does not know.
    case api(status: Int, code: APIErrorCode, reason: APIErrorReason?, message: String)
    /// An API error that came with detail lines (e.g. every diagnostic of a failed policy reload).
    case apiDetailed(status: Int, code: APIErrorCode, reason: APIErrorReason?, message: String, details: [String])
    /// The answer was not the HTTP/JSON the daemon speaks.
    case protocolError(String)
    /// The process listening at `path` runs as `uid`, which is none of the uids a daemon may run
    /// as (`DaemonTrust`): nothing secret was sent to it.
    case untrustedDaemon(path: String, uid: UInt32, trusted: String)

    /// The error as one line for people.
    public var description: String {
        switch self {
        case .unreachable(let path, let reason, _): "cannot reach mlcredd at \(path): \(reason)"
        case .api(_, _, _, let message): message
        case .apiDetailed(_, _, _, let message, _): message
        case .protocolError(let message): "unexpected answer from mlcredd: \(message)"
        case .untrustedDaemon(let path, let uid, let trusted):
            "the process listening at \(path) runs as uid \(uid), not as \(trusted): refusing to send it a secret"
        }
    }
}
