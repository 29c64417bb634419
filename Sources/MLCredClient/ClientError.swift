import MLCredAPI

/// Why a request to the daemon failed.
public enum ClientError: Error, Sendable, CustomStringConvertible {
    /// No daemon answers at `path` (or no socket was found at all).
    case unreachable(path: String, reason: String)
    /// The daemon answered with an API error.
    case api(status: Int, code: APIErrorCode, message: String)
    /// An API error that came with detail lines (e.g. every diagnostic of a failed policy reload).
    case apiDetailed(status: Int, code: APIErrorCode, message: String, details: [String])
    /// The answer was not the HTTP/JSON the daemon speaks.
    case protocolError(String)

    public var description: String {
        switch self {
        case .unreachable(let path, let reason): "cannot reach mlcredd at \(path): \(reason)"
        case .api(_, _, let message): message
        case .apiDetailed(_, _, let message, _): message
        case .protocolError(let message): "unexpected answer from mlcredd: \(message)"
        }
    }
}
