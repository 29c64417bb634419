/// One audit record (SPEC §10). Never holds a secret, passphrase or token.
public struct AuditRecord: Codable, Sendable, Equatable {
    public var seq: Int64
    public var time: String
    public var principal: Principal
    public var action: String
    public var role: String?
    public var grant: String?
    public var result: AuditResult
    public var reason: String?
    public var accessor: String?
    /// Hex of the previous record's MAC; null while the record awaits the next unseal.
    public var prev: String?
    /// Hex of this record's keyed BLAKE2b MAC; null while the vault was sealed when it was written.
    public var mac: String?
    /// The node whose chain holds it (SPEC §12); absent only from older daemons' answers.
    public var node: String?

    enum CodingKeys: String, CodingKey { case seq, time, principal, action, role, grant, result, reason, accessor, prev, mac, node }

    /// Every SPEC §10 field is written, absent values as null.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(seq, forKey: .seq)
        try container.encode(time, forKey: .time)
        try container.encode(principal, forKey: .principal)
        try container.encode(action, forKey: .action)
        try container.encode(role, forKey: .role)
        try container.encode(grant, forKey: .grant)
        try container.encode(result, forKey: .result)
        try container.encode(reason, forKey: .reason)
        try container.encode(accessor, forKey: .accessor)
        try container.encode(prev, forKey: .prev)
        try container.encode(mac, forKey: .mac)
        try container.encodeIfPresent(node, forKey: .node)
    }

    public init(
        seq: Int64, time: String, principal: Principal, action: String, role: String?, grant: String?,
        result: AuditResult, reason: String?, accessor: String?, prev: String?, mac: String?, node: String? = nil
    ) {
        self.node = node
        self.seq = seq
        self.time = time
        self.principal = principal
        self.action = action
        self.role = role
        self.grant = grant
        self.result = result
        self.reason = reason
        self.accessor = accessor
        self.prev = prev
        self.mac = mac
    }
}
