/// One emergency role's row: asked for by a first admin, open once a second confirmed.
public struct EmergencyRecord: Sendable, Equatable {
    public var role: String
    public var firstUID: UInt32
    public var firstAt: Double
    public var reason: String
    /// How long the first admin asked it to stay open, in seconds.
    public var duration: Double
    public var secondUID: UInt32?
    public var openedAt: Double?
    public var until: Double?

    public init(role: String, firstUID: UInt32, firstAt: Double, reason: String, duration: Double, secondUID: UInt32? = nil,
                openedAt: Double? = nil, until: Double? = nil) {
        self.duration = duration
        self.role = role
        self.firstUID = firstUID
        self.firstAt = firstAt
        self.reason = reason
        self.secondUID = secondUID
        self.openedAt = openedAt
        self.until = until
    }

    /// Open at `now`: confirmed, and not past its end.
    public func isOpen(at now: Double) -> Bool {
        guard let until, openedAt != nil else { return false }
        return now < until
    }
}

extension StoreConnection {
    public func emergency(role: String) throws -> EmergencyRecord? {
        try session.fetchOne("SELECT * FROM emergencies WHERE role = ?", role).map(Self.emergency)
    }

    public func emergencies() throws -> [EmergencyRecord] {
        try session.fetchAll("SELECT * FROM emergencies ORDER BY role").map(Self.emergency)
    }

    public func saveEmergency(_ record: EmergencyRecord) throws {
        try session.execute("""
            INSERT INTO emergencies(role, first_uid, first_at, reason, duration, second_uid, opened_at, until) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(role) DO UPDATE SET first_uid = excluded.first_uid, first_at = excluded.first_at, reason = excluded.reason,
                duration = excluded.duration, second_uid = excluded.second_uid, opened_at = excluded.opened_at, until = excluded.until
            """, record.role, Int64(record.firstUID), record.firstAt, record.reason, record.duration, record.secondUID.map { Int64($0) },
            record.openedAt, record.until)
    }

    @discardableResult
    public func removeEmergency(role: String) throws -> Bool {
        try session.execute("DELETE FROM emergencies WHERE role = ?", role) > 0
    }

    /// Accessors of the live tokens of `role`, of every node (an emergency that closes ends them).
    public func liveTokenAccessors(role: String, now: Double) throws -> [String] {
        try session.fetchColumn(String.self, "SELECT accessor FROM tokens WHERE role = ? AND revoked_at IS NULL AND expires_at > ?", role, now)
    }

    static func emergency(_ row: SQLRow) throws -> EmergencyRecord {
        EmergencyRecord(role: try row.get("role"), firstUID: UInt32(truncatingIfNeeded: try row.get("first_uid") as Int64),
                        firstAt: try row.get("first_at"), reason: try row.get("reason"), duration: try row.get("duration"),
                        secondUID: (try row.get("second_uid") as Int64?).map { UInt32(truncatingIfNeeded: $0) },
                        openedAt: try row.get("opened_at"), until: try row.get("until"))
    }
}
