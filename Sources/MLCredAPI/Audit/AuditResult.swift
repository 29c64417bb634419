/// The result of an audited action.
public enum AuditResult: String, Codable, Sendable {
    case allowed, denied, error
}
