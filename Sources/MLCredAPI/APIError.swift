/// The error codes of the HTTP API (SPEC §9). Each maps to exactly one HTTP status.
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
        case .sealed, .uninitialized: 503
        }
    }
}

/// The body of every error answer: `{"error": {"code": "...", "message": "..."}}`.
public struct APIErrorBody: Codable, Sendable, Equatable {
    /// The error itself.
    public struct Detail: Codable, Sendable, Equatable {
        public var code: APIErrorCode
        public var message: String
        /// Further lines, e.g. every policy diagnostic of a failed reload.
        public var details: [String]?
    }

    public var error: Detail

    public init(code: APIErrorCode, message: String, details: [String]? = nil) {
        self.error = Detail(code: code, message: message, details: details)
    }
}
