/// One node's row in `nodes` (SPEC §12), as it heartbeats it.
public struct NodeBeat: Sendable {
    public var name: String
    public var startedAt: Double
    public var timeout: Double
    public var version: String
    public var environment: String
    public var phi: Bool
    public var sealed: Bool
    public var policyDigest: String
    public var tokens: Int
    public var leases: Int

    public init(name: String, startedAt: Double, timeout: Double, version: String, environment: String, phi: Bool, sealed: Bool,
                policyDigest: String, tokens: Int, leases: Int) {
        self.name = name
        self.startedAt = startedAt
        self.timeout = timeout
        self.version = version
        self.environment = environment
        self.phi = phi
        self.sealed = sealed
        self.policyDigest = policyDigest
        self.tokens = tokens
        self.leases = leases
    }
}

/// A node's row as read, with how long it has been silent by the store's clock.
public struct NodeRecord: Sendable, Equatable {
    public var name: String
    public var lastSeen: Double
    public var startedAt: Double
    public var timeout: Double
    public var version: String
    public var environment: String
    public var phi: Bool
    public var sealed: Bool
    public var policyDigest: String
    public var tokens: Int
    public var leases: Int
    /// Seconds since its last heartbeat, by the store's clock.
    public var silentFor: Double

    /// Silent for longer than its own timeout: its leases are to be taken over.
    public var isSilent: Bool { silentFor > timeout }

    init(row: SQLRow) throws {
        name = try row.get("name")
        lastSeen = try row.get("last_seen")
        startedAt = try row.get("started_at")
        timeout = try row.get("timeout")
        version = try row.get("version")
        environment = try row.get("environment")
        phi = try row.get("phi")
        sealed = try row.get("sealed")
        policyDigest = try row.get("policy_digest")
        tokens = try row.get("tokens")
        leases = try row.get("leases")
        silentFor = try row.get("silent_for")
    }
}

extension StoreConnection {
    /// Writes this node's heartbeat; `last_seen` is the store's clock.
    public func heartbeat(_ beat: NodeBeat) throws {
        try session.send("""
            INSERT INTO nodes(name, last_seen, started_at, timeout, version, environment, phi, sealed, policy_digest, tokens, leases)
            VALUES (?, \(dialect.nowEpoch), ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(name) DO UPDATE SET last_seen = excluded.last_seen, started_at = excluded.started_at, timeout = excluded.timeout,
                version = excluded.version, environment = excluded.environment, phi = excluded.phi, sealed = excluded.sealed,
                policy_digest = excluded.policy_digest, tokens = excluded.tokens, leases = excluded.leases
            """, beat.name, beat.startedAt, beat.timeout, beat.version, beat.environment, beat.phi, beat.sealed, beat.policyDigest,
            beat.tokens, beat.leases)
    }

    /// Every node's row, by name, with its silence measured by the store's clock.
    public func nodes() throws -> [NodeRecord] {
        try session.fetchAll("SELECT *, \(dialect.nowEpoch) - last_seen AS silent_for FROM nodes ORDER BY name").map(NodeRecord.init(row:))
    }

    /// Claims up to `limit` leases of the silent node `from` that still need ending (active, or
    /// owed to their provider), for this node: each row is locked (`FOR UPDATE SKIP LOCKED`) so
    /// that of several live nodes exactly one claims it. Active leases end (`revoking` for
    /// `revocableTypes`, else `revoked`); all move to this node, whose sweeper then tells their
    /// providers. Returns the leases claimed, as they now are.
    public func takeOverLeases(from silent: String, revocableTypes: Set<String>, at time: Double, limit: Int) throws -> [LeaseRecord] {
        let candidates = try session.fetchAll("""
            SELECT * FROM leases WHERE node = ? AND state IN ('active', 'revoking', 'revoke_failed') ORDER BY id LIMIT ?\(dialect.claimLock)
            """, silent, limit).map(LeaseRecord.init(row:))
        var claimed: [LeaseRecord] = []
        for var lease in candidates {
            if lease.state == .active {
                lease.state = revocableTypes.contains(lease.type) ? .revoking : .revoked
                lease.revokedAt = time
            }
            let changed = try session.execute("""
                UPDATE leases SET node = ?, state = ?, revoked_at = ?, next_attempt_at = NULL WHERE id = ? AND node = ?
                """, node, lease.state.rawValue, lease.revokedAt, lease.id, silent)
            guard changed == 1 else { continue }
            lease.node = node
            claimed.append(lease)
        }
        return claimed
    }

    /// Revokes the live run-bound tokens of the silent node `from` (their processes lived in its
    /// kernel; when it returns it must not find them live). Returns how many.
    public func revokeBoundTokens(of silent: String, reason: String, at time: Double) throws -> Int {
        try session.execute("""
            UPDATE tokens SET revoked_at = ?, revoke_reason = ? WHERE node = ? AND revoked_at IS NULL AND bound_start_time IS NOT NULL
            """, time, reason, silent)
    }

    /// What `forgetNode` found.
    public enum ForgetOutcome: Sendable, Equatable {
        case forgotten(revokedTokens: Int)
        case missing
        /// Not silent past its timeout (or this node itself).
        case live(silentFor: Double, timeout: Double)
        /// Silent, but its daemon's session still holds the node's name (stalled or cut off from
        /// the store, not stopped).
        case holdsName
        /// Leases of it still wait for a live node to take them over.
        case hasLeases(Int)
    }

    /// Removes the row of `name`, a node silent past its timeout whose leases were all taken
    /// over, and revokes its tokens still live (they worked only there). Its audit chain, tokens
    /// and leases stay as history. The row is locked while judged (PostgreSQL), so a heartbeat
    /// that comes meanwhile waits and then writes the row again.
    public func forgetNode(_ name: String, reason: String, at time: Double) throws -> ForgetOutcome {
        let lock = dialect == .postgres ? " FOR UPDATE" : ""
        guard let row = try session.fetchOne("SELECT *, \(dialect.nowEpoch) - last_seen AS silent_for FROM nodes WHERE name = ?\(lock)", name)
        else { return .missing }
        let record = try NodeRecord(row: row)
        guard record.isSilent, name != node else { return .live(silentFor: record.silentFor, timeout: record.timeout) }
        if dialect == .postgres {
            // The lock `PostgresLink.holdNodeLock` holds for a running daemon, tried for this
            // transaction only: taken, no daemon of that name is connected.
            let free = try session.fetchScalar(Bool.self, "SELECT pg_try_advisory_xact_lock(hashtextextended(?, 0))", "mlcred-node:" + name)
            guard free == true else { return .holdsName }
        }
        let owed = try session.fetchScalar(Int.self, "SELECT COUNT(*) FROM leases WHERE node = ? AND state IN ('active', 'revoking', 'revoke_failed')",
                                           name) ?? 0
        guard owed == 0 else { return .hasLeases(owed) }
        let tokens = try session.execute("UPDATE tokens SET revoked_at = ?, revoke_reason = ? WHERE node = ? AND revoked_at IS NULL",
                                         time, reason, name)
        try session.execute("DELETE FROM nodes WHERE name = ?", name)
        return .forgotten(revokedTokens: tokens)
    }
}
