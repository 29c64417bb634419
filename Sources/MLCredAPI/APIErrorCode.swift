/// The error classes of the HTTP API (SPEC §9). Each maps to exactly one HTTP status; the
/// precise cause within a class is an `APIErrorReason`.
public enum APIErrorCode: String, Codable, Sendable, CaseIterable {
    /// The request is malformed or asks for something invalid.
    case badRequest = "bad_request"
    /// No, a malformed, unknown, expired or revoked token.
    case unauthenticated
    /// Refused: policy, not an admin, another uid's token, a wrong passphrase or key file.
    case denied
    /// No such route, secret, grant, lease or token.
    case notFound = "not_found"
    /// The vault's state or a secret's use stands in the way.
    case conflict
    /// Headers or body over their limits.
    case tooLarge = "too_large"
    /// Connection caps reached.
    case rateLimited = "rate_limited"
    /// A failure inside the daemon.
    case `internal`
    /// A provider (STS, PostgreSQL) failed or refused.
    case upstream
    /// The vault is sealed.
    case sealed
    /// The vault is not initialized.
    case uninitialized
    /// The store cannot be reached (SPEC §12: a PostgreSQL store that is down).
    case unavailable
    /// The store's disk is below its free-space reserve.
    case storeFull = "store_full"

    /// The HTTP status this code is always sent with.
    public var httpStatus: Int {
        switch self {
        case .badRequest: 400
        case .unauthenticated: 401
        case .denied: 403
        case .notFound: 404
        case .conflict: 409
        case .tooLarge: 413
        case .rateLimited: 429
        case .internal: 500
        case .upstream: 502
        case .sealed, .uninitialized, .unavailable: 503
        case .storeFull: 507
        }
    }
}
