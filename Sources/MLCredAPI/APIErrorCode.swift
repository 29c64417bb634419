/// The error classes of the HTTP API (SPEC §9). Each maps to exactly one HTTP status; the
/// precise cause within a class is an `APIErrorReason`.
public enum APIErrorCode: String, Codable, Sendable, CaseIterable {
    case badRequest = "bad_request"
    case unauthenticated
    case denied
    case notFound = "not_found"
    case conflict
    case tooLarge = "too_large"
    case rateLimited = "rate_limited"
    case `internal`
    case upstream
    case sealed
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
