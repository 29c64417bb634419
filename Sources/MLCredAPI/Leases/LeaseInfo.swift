/// One lease (SPEC §7).
public struct LeaseInfo: Codable, Sendable, Equatable {
    public var id: String
    public var accessor: String
    public var role: String
    public var grant: String
    public var type: String
    public var providerID: String
    public var expiresAt: String
    public var state: LeaseState
    public var lastError: String?
    /// The node that owns it (SPEC §12); absent from older daemons.
    public var node: String?

    enum CodingKeys: String, CodingKey {
        case id, accessor, role, grant, type, state, node
        case providerID = "provider_id"
        case expiresAt = "expires_at"
        case lastError = "last_error"
    }

    /// Encodes every SPEC §7 field, `last_error` as null when there is none.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(accessor, forKey: .accessor)
        try container.encode(role, forKey: .role)
        try container.encode(grant, forKey: .grant)
        try container.encode(type, forKey: .type)
        try container.encode(providerID, forKey: .providerID)
        try container.encode(expiresAt, forKey: .expiresAt)
        try container.encode(state, forKey: .state)
        try container.encode(lastError, forKey: .lastError)
        try container.encodeIfPresent(node, forKey: .node)
    }

    public init(id: String, accessor: String, role: String, grant: String, type: String, providerID: String,
                expiresAt: String, state: LeaseState, lastError: String?, node: String? = nil) {
        self.node = node
        self.id = id
        self.accessor = accessor
        self.role = role
        self.grant = grant
        self.type = type
        self.providerID = providerID
        self.expiresAt = expiresAt
        self.state = state
        self.lastError = lastError
    }
}

// MARK: - Without Foundation's JSON coders (hot path; keys in sorted order, as `APIJSON.encode` writes them)

// The daemon writes it.
extension LeaseInfo: JSONBodyEncodable {
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("accessor", accessor)
        writer.field("expires_at", expiresAt)
        writer.field("grant", grant)
        writer.field("id", id)
        writer.fieldOrNull("last_error", lastError)
        if let node { writer.field("node", node) }
        writer.field("provider_id", providerID)
        writer.field("role", role)
        writer.field("state", state.rawValue)
        writer.field("type", type)
        writer.endObject()
    }
}

// The client reads it (`mlcred run`'s own CPU).
extension LeaseInfo: JSONBodyDecodable {
    public init(json: JSONObjectReader) throws(JSONBodyError) {
        self.init(id: try json.string("id"), accessor: try json.string("accessor"), role: try json.string("role"),
                  grant: try json.string("grant"), type: try json.string("type"), providerID: try json.string("provider_id"),
                  expiresAt: try json.string("expires_at"), state: try json.enumeration("state"), lastError: try json.optionalString("last_error"),
                  node: try json.optionalString("node"))
    }
}
