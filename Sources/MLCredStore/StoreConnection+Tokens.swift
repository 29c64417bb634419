import GRDB

/// A token as stored: never the token itself, only its keyed hash.
public struct TokenRecord: Sendable, Equatable {
    public var accessor: String
    public var tokenHash: String
    public var role: String
    public var phi: Bool
    public var uid: UInt32
    public var user: String?
    public var pid: Int32
    /// Start time (clock ticks since boot, /proc/PID/stat field 22) of the process the token is
    /// bound to; nil for unbound tokens.
    public var boundStartTime: UInt64?
    public var issuedAt: Double
    public var expiresAt: Double
    public var maxExpiresAt: Double
    public var revokedAt: Double?
    public var revokeReason: String?

    public init(accessor: String, tokenHash: String, role: String, phi: Bool, uid: UInt32, user: String?, pid: Int32,
                boundStartTime: UInt64?, issuedAt: Double, expiresAt: Double, maxExpiresAt: Double) {
        self.accessor = accessor
        self.tokenHash = tokenHash
        self.role = role
        self.phi = phi
        self.uid = uid
        self.user = user
        self.pid = pid
        self.boundStartTime = boundStartTime
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.maxExpiresAt = maxExpiresAt
    }

    init(row: Row) {
        accessor = row["accessor"]
        tokenHash = row["token_hash"]
        role = row["role"]
        phi = (row["phi"] as Int) != 0
        uid = UInt32(row["uid"] as Int64)
        user = row["user"]
        pid = Int32(row["pid"] as Int64)
        boundStartTime = (row["bound_start_time"] as Int64?).map { UInt64($0) }
        issuedAt = row["issued_at"]
        expiresAt = row["expires_at"]
        maxExpiresAt = row["max_expires_at"]
        revokedAt = row["revoked_at"]
        revokeReason = row["revoke_reason"]
    }
}

/// A derived credential with an expiry, tied to a token.
public struct LeaseRecord: Sendable, Equatable {
    public var id: String
    public var accessor: String
    public var role: String
    public var grant: String
    public var type: String
    public var secret: String
    public var providerID: String
    public var createdAt: Double
    public var expiresAt: Double
    /// `active`, `revoked`, `expired`, or `revoke_failed`.
    public var state: String
    public var lastError: String?
    public var revokedAt: Double?

    public init(id: String, accessor: String, role: String, grant: String, type: String, secret: String, providerID: String,
                createdAt: Double, expiresAt: Double, state: String = "active", lastError: String? = nil, revokedAt: Double? = nil) {
        self.id = id
        self.accessor = accessor
        self.role = role
        self.grant = grant
        self.type = type
        self.secret = secret
        self.providerID = providerID
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.state = state
        self.lastError = lastError
        self.revokedAt = revokedAt
    }

    init(row: Row) {
        self.init(id: row["id"], accessor: row["accessor"], role: row["role"], grant: row["grant_name"], type: row["type"],
                  secret: row["secret"], providerID: row["provider_id"], createdAt: row["created_at"], expiresAt: row["expires_at"],
                  state: row["state"], lastError: row["last_error"], revokedAt: row["revoked_at"])
    }
}

extension StoreConnection {
    public func insertToken(_ token: TokenRecord) throws {
        try db.cachedStatement(sql: """
            INSERT INTO tokens(accessor, token_hash, role, phi, uid, user, pid, bound_start_time, issued_at, expires_at, max_expires_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [token.accessor, token.tokenHash, token.role, token.phi ? 1 : 0, Int64(token.uid), token.user, Int64(token.pid),
                             token.boundStartTime.map { Int64($0) }, token.issuedAt, token.expiresAt, token.maxExpiresAt])
    }

    public func token(hash: String) throws -> TokenRecord? {
        try Row.fetchOne(try db.cachedStatement(sql: "SELECT * FROM tokens WHERE token_hash = ?"), arguments: [hash]).map(TokenRecord.init)
    }

    public func token(accessor: String) throws -> TokenRecord? {
        try Row.fetchOne(db, sql: "SELECT * FROM tokens WHERE accessor = ?", arguments: [accessor]).map(TokenRecord.init)
    }

    /// Tokens not revoked and not expired at `now`.
    public func liveTokens(now: Double) throws -> [TokenRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM tokens WHERE revoked_at IS NULL AND expires_at > ? ORDER BY issued_at",
                         arguments: [now]).map(TokenRecord.init)
    }

    /// Tokens past their expiry that were not yet marked.
    public func expiredUnrevokedTokens(now: Double, limit: Int) throws -> [TokenRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM tokens WHERE revoked_at IS NULL AND expires_at <= ? LIMIT ?",
                         arguments: [now, limit]).map(TokenRecord.init)
    }

    /// Live tokens bound to a process.
    public func boundLiveTokens() throws -> [TokenRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM tokens WHERE revoked_at IS NULL AND bound_start_time IS NOT NULL")
            .map(TokenRecord.init)
    }

    public func setTokenExpiry(accessor: String, expiresAt: Double) throws {
        try db.execute(sql: "UPDATE tokens SET expires_at = ? WHERE accessor = ?", arguments: [expiresAt, accessor])
    }

    /// Marks a token revoked (or expired) and its active leases with `leaseState`. Returns the
    /// leases it changed; false-y (empty, not revoked) if the token was already revoked.
    @discardableResult
    public func revokeToken(accessor: String, reason: String, at time: Double, leaseState: String = "revoked") throws -> (revoked: Bool, leases: [LeaseRecord]) {
        try db.execute(sql: "UPDATE tokens SET revoked_at = ?, revoke_reason = ? WHERE accessor = ? AND revoked_at IS NULL",
                       arguments: [time, reason, accessor])
        guard db.changesCount > 0 else { return (false, []) }
        let leases = try Row.fetchAll(db, sql: "SELECT * FROM leases WHERE accessor = ? AND state = 'active'", arguments: [accessor]).map(LeaseRecord.init)
        try db.execute(sql: "UPDATE leases SET state = ?, revoked_at = ? WHERE accessor = ? AND state = 'active'",
                       arguments: [leaseState, time, accessor])
        return (true, leases)
    }

    public func insertLease(_ lease: LeaseRecord) throws {
        try db.cachedStatement(sql: """
            INSERT INTO leases(id, accessor, role, grant_name, type, secret, provider_id, created_at, expires_at, state, last_error, revoked_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [lease.id, lease.accessor, lease.role, lease.grant, lease.type, lease.secret, lease.providerID,
                             lease.createdAt, lease.expiresAt, lease.state, lease.lastError, lease.revokedAt])
    }

    public func lease(id: String) throws -> LeaseRecord? {
        try Row.fetchOne(db, sql: "SELECT * FROM leases WHERE id = ?", arguments: [id]).map(LeaseRecord.init)
    }

    /// Leases, newest first; active ones only unless `all`.
    public func leases(all: Bool, limit: Int) throws -> [LeaseRecord] {
        let filter = all ? "" : "WHERE state IN ('active', 'revoke_failed')"
        return try Row.fetchAll(db, sql: "SELECT * FROM leases \(filter) ORDER BY created_at DESC LIMIT ?", arguments: [limit]).map(LeaseRecord.init)
    }

    public func leases(accessor: String) throws -> [LeaseRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM leases WHERE accessor = ? ORDER BY created_at", arguments: [accessor]).map(LeaseRecord.init)
    }

    /// Sets a lease's state; returns whether it changed.
    @discardableResult
    public func setLeaseState(id: String, state: String, at time: Double, error: String? = nil) throws -> Bool {
        try db.execute(sql: "UPDATE leases SET state = ?, revoked_at = ?, last_error = ? WHERE id = ? AND state IN ('active', 'revoke_failed')",
                       arguments: [state, time, error, id])
        return db.changesCount > 0
    }

    public func setLeaseExpiry(id: String, expiresAt: Double) throws {
        try db.execute(sql: "UPDATE leases SET expires_at = ? WHERE id = ?", arguments: [expiresAt, id])
    }

    /// Active leases past their expiry.
    public func expiredActiveLeases(now: Double, limit: Int) throws -> [LeaseRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM leases WHERE state = 'active' AND expires_at <= ? LIMIT ?", arguments: [now, limit]).map(LeaseRecord.init)
    }

    /// Counts for metrics and tests: live tokens, active leases.
    public func liveCounts(now: Double) throws -> (tokens: Int, leases: Int) {
        let tokens = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM tokens WHERE revoked_at IS NULL AND expires_at > ?", arguments: [now]) ?? 0
        let leases = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM leases WHERE state = 'active'") ?? 0
        return (tokens, leases)
    }
}
