/// The one error type of the daemon's operations (vault, broker, providers, routes): a precise
/// `reason`, a message for people, and the API `code` that follows from the reason. Messages
/// are shown to the caller and written to the audit log: they never hold a secret value,
/// passphrase, key or token.
public struct APIError: Error, Sendable, CustomStringConvertible {
    /// Why the operation failed; decides the code and the HTTP status.
    public let reason: APIErrorReason
    /// A sentence for people, saying what to do next where there is something to do.
    public let message: String
    /// Further lines, e.g. every policy diagnostic of a failed reload.
    public let details: [String]?

    /// An error for `reason` with `message` (and optional detail lines).
    public init(_ reason: APIErrorReason, _ message: String, details: [String]? = nil) {
        self.reason = reason
        self.message = message
        self.details = details
    }

    /// The API class of `reason`.
    public var code: APIErrorCode { reason.code }

    /// The message.
    public var description: String { message }

    /// The answer body of this error (SPEC §9).
    public var body: APIErrorBody { APIErrorBody(reason: reason, message: message, details: details) }
}
