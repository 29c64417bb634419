/// `GET /v1/audit`.
public struct AuditPage: Codable, Sendable {
    public var records: [AuditRecord]

    public init(records: [AuditRecord]) { self.records = records }
}
