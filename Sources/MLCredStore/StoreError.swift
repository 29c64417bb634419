import MLCredAPI

/// Errors raised by the store. Messages name records, never their contents.
public enum StoreError: Error, Sendable, CustomStringConvertible {
    /// The database could not be opened or migrated.
    case openFailed(String)
    /// A write or read failed in the database.
    case database(String)
    /// The store cannot be reached (PostgreSQL down, failing over, or too slow to answer in
    /// time): nothing was committed by this request; the daemon reconnects by itself.
    case unavailable(String)

    public var description: String {
        switch self {
        case .openFailed(let message): "cannot open the database: \(message)"
        case .database(let message): "database error: \(message)"
        case .unavailable(let message): "the store is unavailable: \(message)"
        }
    }

    /// The API answer for a store failure: 503 `store_unavailable` when the store cannot be
    /// reached (clients retry), 500 `storage_error` otherwise.
    public static func apiError(for error: any Error) -> APIError {
        if let error = error as? APIError { return error }
        if case StoreError.unavailable(let message)? = error as? StoreError {
            return APIError(.storeUnavailable, "the store is unavailable: \(message); try again shortly")
        }
        return APIError(.storageError, "storage error: \(error)")
    }
}
