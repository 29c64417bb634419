/// A decision and its chain of reasons.
public struct ExplainResponse: Codable, Sendable {
    public var allowed: Bool
    public var reasons: [String]

    public init(allowed: Bool, reasons: [String]) {
        self.allowed = allowed
        self.reasons = reasons
    }
}
