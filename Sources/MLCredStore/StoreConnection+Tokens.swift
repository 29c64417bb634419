import MLCredAPI

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
    /// The node that issued it, the only one where it is valid (SPEC §12).
    public var node: String = ""

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

    init(row: SQLRow) throws {
        accessor = try row.get("accessor")
        tokenHash = try row.get("token_hash")
        role = try row.get("role")
        phi = try row.get("phi")
        uid = UInt32(truncatingIfNeeded: try row.get("uid") as Int64)
        user = try row.get("user")
        pid = Int32(truncatingIfNeeded: try row.get("pid") as Int64)
        boundStartTime = (try row.get("bound_start_time") as Int64?).map { UInt64(bitPattern: $0) }
        issuedAt = try row.get("issued_at")
        expiresAt = try row.get("expires_at")
        maxExpiresAt = try row.get("max_expires_at")
        revokedAt = try row.get("revoked_at")
        revokeReason = try row.get("revoke_reason")
        node = try row.get("node") ?? ""
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
    /// `active`; `revoking` (ended here, its provider not yet told); `revoked`, `expired`;
    /// `revoke_failed` (its provider refused or was unreachable: retried with backoff).
    public var state: LeaseState
    public var lastError: String?
    public var revokedAt: Double?
    /// Non-secret data its provider needs to renew or revoke it.
    public var providerState: String?
    /// Failed revocation attempts so far.
    public var attempts: Int
    /// When a failed revocation is tried again.
    public var nextAttemptAt: Double?
    /// The node that owns it: the one whose sweeper renews, expires and revokes it (after a
    /// takeover, the node that took it over).
    public var node: String = ""

    public init(id: String, accessor: String, role: String, grant: String, type: String, secret: String, providerID: String,
                createdAt: Double, expiresAt: Double, state: LeaseState = .active, lastError: String? = nil, revokedAt: Double? = nil,
                providerState: String? = nil, attempts: Int = 0, nextAttemptAt: Double? = nil) {
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
        self.providerState = providerState
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
    }

    init(row: SQLRow) throws {
        self.init(id: try row.get("id"), accessor: try row.get("accessor"), role: try row.get("role"), grant: try row.get("grant_name"),
                  type: try row.get("type"), secret: try row.get("secret"), providerID: try row.get("provider_id"),
                  createdAt: try row.get("created_at"), expiresAt: try row.get("expires_at"),
                  state: LeaseState(storedValue: try row.get("state")), lastError: try row.get("last_error"), revokedAt: try row.get("revoked_at"),
                  providerState: try row.get("provider_state"), attempts: try row.get("attempts"), nextAttemptAt: try row.get("next_attempt_at"))
        node = try row.get("node") ?? ""
    }
}

extension StoreConnection {
    static let tokenInsert = SQLInsert("tokens", ["accessor", "token_hash", "role", "phi", "uid", "\"user\"", "pid", "bound_start_time",
                                                  "issued_at", "expires_at", "max_expires_at", "node"])
    /// Level 1: `leases.accessor` references `tokens`.
    static let leaseInsert = SQLInsert("leases", ["id", "accessor", "role", "grant_name", "type", "secret", "provider_id", "created_at",
                                                  "expires_at", "state", "last_error", "revoked_at", "provider_state", "attempts",
                                                  "next_attempt_at", "node"], level: 1)

    public func insertToken(_ token: TokenRecord) throws {
        try session.insert(Self.tokenInsert, token.accessor, token.tokenHash, token.role, token.phi, Int64(token.uid), token.user, Int64(token.pid),
            token.boundStartTime.map { Int64(bitPattern: $0) }, token.issuedAt, token.expiresAt, token.maxExpiresAt, node)
    }

    public func token(hash: String) throws -> TokenRecord? {
        try session.fetchOne("SELECT * FROM tokens WHERE token_hash = ?", hash).map(TokenRecord.init(row:))
    }

    public func token(accessor: String) throws -> TokenRecord? {
        try session.fetchOne("SELECT * FROM tokens WHERE accessor = ?", accessor).map(TokenRecord.init(row:))
    }

    /// Whether the token is not revoked, checked in the transaction that stores its leases (a
    /// revocation that lands while credentials are minted must end them).
    /// PostgreSQL holds the row (`FOR SHARE`) until COMMIT, so a revocation on another node
    /// waits and then sees the leases. In an optimistic batch it is asserted, not read (one
    /// statement for the batch's tokens): a revoked token fails the batch, which runs again, and
    /// this job reads it then; the common case costs no round trip.
    public func tokenIsLive(accessor: String) throws -> Bool {
        let check = SQLRowCheck(table: "tokens", column: "accessor", condition: "revoked_at IS NULL", key: accessor)
        if session.optimistic {
            try session.require(check)
            return true
        }
        return try session.fetchOne(check.query(for: dialect), accessor) != nil
    }

    /// Tokens not revoked and not expired at `now`, of every node, in accessor order (accessors
    /// are time-ordered: issue order), after `after`, at most `limit`.
    public func liveTokens(now: Double, after: String?, limit: Int) throws -> [TokenRecord] {
        try session.fetchAll("SELECT * FROM tokens WHERE revoked_at IS NULL AND expires_at > ? AND accessor > ? ORDER BY accessor LIMIT ?",
                             now, after ?? "", limit)
            .map(TokenRecord.init(row:))
    }

    /// How many live tokens `uid` holds on this node, counting no further than `limit`.
    public func liveTokenCount(uid: UInt32, now: Double, limit: Int) throws -> Int {
        Int(try session.fetchScalar(Int64.self, Self.liveTokenCountSQL(dialect), node, Int64(uid), now, limit) ?? 0)
    }

    static func liveTokenCountSQL(_ dialect: SQLDialect) -> String {
        """
        SELECT COUNT(*) AS live FROM (SELECT 1 FROM tokens\(dialect.indexedBy("tokens_node_uid"))
        WHERE node = ? AND uid = ? AND revoked_at IS NULL AND expires_at > ? LIMIT ?) AS counted
        """
    }

    /// This node's tokens past their expiry that were not yet marked.
    public func expiredUnrevokedTokens(now: Double, limit: Int) throws -> [TokenRecord] {
        try session.fetchAll(Self.expiredUnrevokedTokensSQL(dialect), now, node, limit).map(TokenRecord.init(row:))
    }

    static func expiredUnrevokedTokensSQL(_ dialect: SQLDialect) -> String {
        "SELECT * FROM tokens\(dialect.indexedBy("tokens_live")) WHERE revoked_at IS NULL AND expires_at <= ? AND node = ? LIMIT ?"
    }

    /// This node's live tokens bound to a process (only this node's kernel knows its processes).
    public func boundLiveTokens() throws -> [TokenRecord] {
        try session.fetchAll(Self.boundLiveTokensSQL(dialect), node).map(TokenRecord.init(row:))
    }

    static func boundLiveTokensSQL(_ dialect: SQLDialect) -> String {
        "SELECT * FROM tokens\(dialect.indexedBy("tokens_bound")) WHERE revoked_at IS NULL AND bound_start_time IS NOT NULL AND node = ?"
    }

    public func setTokenExpiry(accessor: String, expiresAt: Double) throws {
        try session.execute("UPDATE tokens SET expires_at = ? WHERE accessor = ?", expiresAt, accessor)
    }

    /// Marks a token revoked (or expired) and ends its active leases: those of `revocableTypes`
    /// become `revoking` (their provider is told next), the others `leaseState`. Returns the
    /// leases it changed, with their new state; false-y if the token was already revoked.
    @discardableResult
    public func revokeToken(accessor: String, reason: String, at time: Double, leaseState: LeaseState = .revoked,
                            revocableTypes: Set<String> = []) throws -> (revoked: Bool, leases: [LeaseRecord]) {
        let changed = try session.execute("UPDATE tokens SET revoked_at = ?, revoke_reason = ? WHERE accessor = ? AND revoked_at IS NULL",
                                          time, reason, accessor)
        guard changed > 0 else { return (false, []) }
        let leases = try session.fetchAll("SELECT * FROM leases WHERE accessor = ? AND state = 'active'", accessor).map(LeaseRecord.init(row:))
        var ended: [LeaseRecord] = []
        for var lease in leases {
            lease.state = revocableTypes.contains(lease.type) ? .revoking : leaseState
            lease.revokedAt = time
            try session.execute("UPDATE leases SET state = ?, revoked_at = ? WHERE id = ?", lease.state.rawValue, time, lease.id)
            ended.append(lease)
        }
        return (true, ended)
    }

    public func insertLease(_ lease: LeaseRecord) throws {
        try session.insert(Self.leaseInsert, lease.id, lease.accessor, lease.role, lease.grant, lease.type, lease.secret, lease.providerID,
            lease.createdAt, lease.expiresAt, lease.state.rawValue, lease.lastError, lease.revokedAt, lease.providerState,
            lease.attempts, lease.nextAttemptAt, node)
    }

    public func lease(id: String) throws -> LeaseRecord? {
        try session.fetchOne("SELECT * FROM leases WHERE id = ?", id).map(LeaseRecord.init(row:))
    }

    /// Leases of every node, newest first; active ones only unless `all`.
    public func leases(all: Bool, limit: Int) throws -> [LeaseRecord] {
        let filter = all ? "" : "WHERE state IN ('active', 'revoking', 'revoke_failed')"
        return try session.fetchAll("SELECT * FROM leases \(filter) ORDER BY created_at DESC LIMIT ?", limit).map(LeaseRecord.init(row:))
    }

    /// One page of the admin lease list, newest first (lease ids are time-ordered), before the
    /// id `before`: live and failing leases; with `endedStillValidTypes`, also ended leases of
    /// those types still valid at `now`; with `all`, every lease kept.
    public func leasePage(all: Bool, endedStillValidTypes: [String], now: Double, before: String?, limit: Int) throws -> [LeaseRecord] {
        var filter = all ? "TRUE" : "state IN ('active', 'revoking', 'revoke_failed')"
        var values: [SQLValue] = []
        if !all && !endedStillValidTypes.isEmpty {
            let marks = endedStillValidTypes.map { _ in "?" }.joined(separator: ", ")
            filter = "(\(filter) OR (state IN ('revoked', 'expired') AND expires_at > ? AND type IN (\(marks))))"
            values = [now.sqlValue] + endedStillValidTypes.map { $0.sqlValue }
        }
        let cursor = before.map { _ in " AND id < ?" } ?? ""
        values += (before.map { [$0.sqlValue] } ?? []) + [limit.sqlValue]
        return try session.fetchAll("SELECT * FROM leases WHERE \(filter)\(cursor) ORDER BY id DESC LIMIT ?", values).map(LeaseRecord.init(row:))
    }

    public func leases(accessor: String) throws -> [LeaseRecord] {
        try session.fetchAll("SELECT * FROM leases WHERE accessor = ? ORDER BY created_at", accessor).map(LeaseRecord.init(row:))
    }

    /// Ends a live lease (`active`) with `state`; returns whether it changed.
    @discardableResult
    public func endLease(id: String, state: LeaseState, at time: Double) throws -> Bool {
        try session.execute("UPDATE leases SET state = ?, revoked_at = ? WHERE id = ? AND state = 'active'", state.rawValue, time, id) > 0
    }

    /// Records that a lease's provider confirmed its end.
    public func finishRevocation(id: String, at time: Double) throws {
        try session.execute("""
            UPDATE leases SET state = 'revoked', revoked_at = ?, last_error = NULL, next_attempt_at = NULL
            WHERE id = ? AND state IN ('revoking', 'revoke_failed')
            """, time, id)
    }

    /// Records a failed revocation and when to try again.
    public func failRevocation(id: String, error: String, nextAttemptAt: Double) throws {
        try session.execute("""
            UPDATE leases SET state = 'revoke_failed', last_error = ?, attempts = attempts + 1, next_attempt_at = ?
            WHERE id = ? AND state IN ('revoking', 'revoke_failed')
            """, error, nextAttemptAt, id)
    }

    /// Makes failed revocations of leases made from `secret` due at `time`.
    public func makeRevocationsDue(secret: String, at time: Double) throws {
        try session.execute("UPDATE leases SET next_attempt_at = ? WHERE secret = ? AND state = 'revoke_failed'", time, secret)
    }

    /// Live leases made from `secret`, of every node.
    public func liveLeases(secret: String) throws -> [LeaseRecord] {
        try session.fetchAll("SELECT * FROM leases WHERE secret = ? AND state IN ('active', 'revoking', 'revoke_failed')", secret)
            .map(LeaseRecord.init(row:))
    }

    /// This node's leases whose provider must still be told they ended, due now.
    public func dueRevocations(now: Double, limit: Int) throws -> [LeaseRecord] {
        try session.fetchAll("""
            SELECT * FROM leases WHERE state IN ('revoking', 'revoke_failed') AND (next_attempt_at IS NULL OR next_attempt_at <= ?)
            AND node = ? ORDER BY next_attempt_at LIMIT ?
            """, now, node, limit).map(LeaseRecord.init(row:))
    }

    public func setLeaseExpiry(id: String, expiresAt: Double) throws {
        try session.execute("UPDATE leases SET expires_at = ? WHERE id = ?", expiresAt, id)
    }

    /// This node's active leases past their expiry.
    public func expiredActiveLeases(now: Double, limit: Int) throws -> [LeaseRecord] {
        try session.fetchAll(Self.expiredActiveLeasesSQL(dialect), now, node, limit).map(LeaseRecord.init(row:))
    }

    static func expiredActiveLeasesSQL(_ dialect: SQLDialect) -> String {
        "SELECT * FROM leases\(dialect.indexedBy("leases_active")) WHERE state = 'active' AND expires_at <= ? AND node = ? LIMIT ?"
    }

    /// Deletes up to `limit` of this node's leases that ended (`revoked`, `expired`) and whose
    /// credential stopped being valid before `cutoff`, then up to `limit` of its tokens revoked or
    /// expired before `cutoff` that no lease names any more. A lease whose revocation is still
    /// owed is never touched, nor its token. Returns how many of each went.
    public func purgeEnded(before cutoff: Double, limit: Int) throws -> (tokens: Int, leases: Int) {
        let leases = try session.execute("""
            DELETE FROM leases WHERE id IN (
                SELECT id FROM leases WHERE state IN ('revoked', 'expired') AND expires_at < ?
                AND COALESCE(revoked_at, 0) < ? AND node = ? LIMIT ?)
            """, cutoff, cutoff, node, limit)
        let tokens = try session.execute("""
            DELETE FROM tokens WHERE accessor IN (
                SELECT t.accessor FROM tokens t WHERE t.revoked_at IS NOT NULL AND t.revoked_at < ? AND t.node = ?
                AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.accessor = t.accessor) LIMIT ?)
            """, cutoff, node, limit)
        return (tokens, leases)
    }

    /// This node's counts for metrics, heartbeats and tests: live tokens, active leases, and
    /// ended leases whose provider has not confirmed yet (`revoking`, `revoke_failed`).
    public func liveCounts(now: Double) throws -> (tokens: Int, leases: Int, revocationsPending: Int) {
        let tokens = try session.fetchScalar(Int.self, "SELECT COUNT(*) FROM tokens WHERE revoked_at IS NULL AND expires_at > ? AND node = ?",
                                             now, node) ?? 0
        let leases = try session.fetchScalar(Int.self, "SELECT COUNT(*) FROM leases WHERE state = 'active' AND node = ?", node) ?? 0
        let pending = try session.fetchScalar(Int.self, "SELECT COUNT(*) FROM leases WHERE state IN ('revoking', 'revoke_failed') AND node = ?",
                                              node) ?? 0
        return (tokens, leases, pending)
    }
}

extension LeaseState {
    /// The state stored in a row. A value this release does not know (an edited database, a
    /// newer release's state) reads as `revoke_failed`: shown in `lease list`, and retried at
    /// its provider, whose revocation is idempotent, rather than forgotten.
    init(storedValue: String) {
        self = LeaseState(rawValue: storedValue) ?? .revokeFailed
    }
}
