/// A token as admins see it: never the token itself.
public struct TokenInfo: Codable, Sendable, Equatable {
    public var accessor: String
    public var role: String
    public var phi: Bool
    public var uid: UInt32
    public var user: String?
    public var pid: Int32
    public var bound: Bool
    public var issuedAt: String
    public var expiresAt: String
    public var maxExpiresAt: String
    /// `active`, `revoked` or `expired`.
    public var state: TokenState
    public var revokeReason: String?
    /// The node that issued it, the only one where it works (SPEC §12); absent from older daemons.
    public var node: String?

    enum CodingKeys: String, CodingKey {
        case accessor, role, phi, uid, user, pid, bound, state, node
        case issuedAt = "issued_at"
        case expiresAt = "expires_at"
        case maxExpiresAt = "max_expires_at"
        case revokeReason = "revoke_reason"
    }

    public init(accessor: String, role: String, phi: Bool, uid: UInt32, user: String?, pid: Int32, bound: Bool,
                issuedAt: String, expiresAt: String, maxExpiresAt: String, state: TokenState, revokeReason: String?,
                node: String? = nil) {
        self.node = node
        self.accessor = accessor
        self.role = role
        self.phi = phi
        self.uid = uid
        self.user = user
        self.pid = pid
        self.bound = bound
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.maxExpiresAt = maxExpiresAt
        self.state = state
        self.revokeReason = revokeReason
    }
}

// MARK: - Without Foundation's JSON coders (hot path; keys in sorted order, as `APIJSON.encode` writes them)

// The daemon writes it.
extension TokenInfo: JSONBodyEncodable {
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("accessor", accessor)
        writer.field("bound", bound)
        writer.field("expires_at", expiresAt)
        writer.field("issued_at", issuedAt)
        writer.field("max_expires_at", maxExpiresAt)
        if let node { writer.field("node", node) }
        writer.field("phi", phi)
        writer.field("pid", pid)
        writer.field("revoke_reason", revokeReason)
        writer.field("role", role)
        writer.field("state", state.rawValue)
        writer.field("uid", uid)
        writer.field("user", user)
        writer.endObject()
    }
}

// The client reads it (`mlcred run`'s own CPU).
extension TokenInfo: JSONBodyDecodable {
    public init(json: JSONObjectReader) throws(JSONBodyError) {
        self.init(accessor: try json.string("accessor"), role: try json.string("role"), phi: try json.bool("phi"),
                  uid: try json.integer("uid"), user: try json.optionalString("user"), pid: try json.integer("pid"),
                  bound: try json.bool("bound"), issuedAt: try json.string("issued_at"), expiresAt: try json.string("expires_at"),
                  maxExpiresAt: try json.string("max_expires_at"), state: try json.enumeration("state"),
                  revokeReason: try json.optionalString("revoke_reason"), node: try json.optionalString("node"))
    }
}
