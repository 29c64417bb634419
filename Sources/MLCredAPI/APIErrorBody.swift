/// The body of every error answer: `{"error": {"code": "...", "reason": "...", "message": "..."}}`,
/// plus `details` when there are detail lines.
public struct APIErrorBody: Codable, Sendable, Equatable {
    /// The error itself.
    public struct Detail: Codable, Sendable, Equatable {
        /// The class of the error; decides the HTTP status.
        public var code: APIErrorCode
        /// The precise cause. Nil when the daemon sent none (older daemons) or one this client
        /// does not know (newer daemons): the code still holds.
        public var reason: APIErrorReason?
        /// A sentence for people; never to be parsed.
        public var message: String
        /// Further lines, e.g. every policy diagnostic of a failed reload.
        public var details: [String]?

        /// A detail with every field given.
        public init(code: APIErrorCode, reason: APIErrorReason?, message: String, details: [String]?) {
            self.code = code
            self.reason = reason
            self.message = message
            self.details = details
        }

        enum CodingKeys: String, CodingKey { case code, reason, message, details }

        /// Decodes a detail; a missing or unknown `reason` decodes as nil.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            code = try container.decode(APIErrorCode.self, forKey: .code)
            // Tolerant: a missing or unknown reason must not hide the error behind a decoding failure.
            reason = try container.decodeIfPresent(String.self, forKey: .reason).flatMap(APIErrorReason.init(rawValue:))
            message = try container.decode(String.self, forKey: .message)
            details = try container.decodeIfPresent([String].self, forKey: .details)
        }
    }

    /// The error itself.
    public var error: Detail

    /// The body for `reason`; the code is the reason's.
    public init(reason: APIErrorReason, message: String, details: [String]? = nil) {
        self.error = Detail(code: reason.code, reason: reason, message: message, details: details)
    }
}
