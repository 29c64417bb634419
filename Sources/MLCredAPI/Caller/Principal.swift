/// The caller as the kernel describes it (SO_PEERCRED, SO_PEERGROUPS, /proc), never as it claims.
public struct Principal: Codable, Sendable, Equatable {
    public var uid: UInt32
    public var gid: UInt32
    public var user: String?
    public var pid: Int32
    /// Supplementary groups as gids, from SO_PEERGROUPS.
    public var groups: [UInt32]
    /// The systemd system unit the caller runs in, when it runs in one under `system.slice`.
    public var unit: String?

    enum CodingKeys: String, CodingKey { case uid, gid, user, pid, groups, unit }

    /// Every field is written, `user` and `unit` as null when unknown.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(uid, forKey: .uid)
        try container.encode(gid, forKey: .gid)
        try container.encode(user, forKey: .user)
        try container.encode(pid, forKey: .pid)
        try container.encode(groups, forKey: .groups)
        try container.encode(unit, forKey: .unit)
    }

    /// The JSON `encode(to:)` writes (keys sorted, as `APIJSON.encode`), written directly: every
    /// audit record carries it, and JSONEncoder made it a visible share of each request.
    public var json: String {
        "{\"gid\":\(gid),\"groups\":[\(groups.map(String.init).joined(separator: ","))],\"pid\":\(pid),\"uid\":\(uid),"
            + "\"unit\":\(JSONText.literal(unit)),\"user\":\(JSONText.literal(user))}"
    }

    public init(uid: UInt32, gid: UInt32, user: String?, pid: Int32, groups: [UInt32], unit: String?) {
        self.uid = uid
        self.gid = gid
        self.user = user
        self.pid = pid
        self.groups = groups
        self.unit = unit
    }

    /// A principal for actions the daemon takes on its own (expiry sweeps, start-up unseal).
    public static func daemon(uid: UInt32, gid: UInt32, pid: Int32) -> Principal {
        Principal(uid: uid, gid: gid, user: "mlcredd", pid: pid, groups: [], unit: nil)
    }
}
