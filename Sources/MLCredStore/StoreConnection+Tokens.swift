import GRDB
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

    init(row: Row) {
        self.init(id: row["id"], accessor: row["accessor"], role: row["role"], grant: row["grant_name"], type: row["type"],
                  secret: row["secret"], providerID: row["provider_id"], createdAt: row["created_at"], expiresAt: row["expires_at"],
                  state: LeaseState(storedValue: row["state"]), lastError: row["last_error"], revokedAt: row["revoked_at"], providerState: row["provider_state"],
                  attempts: row["attempts"], nextAttemptAt: row["next_attempt_at"])
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
        // Cached: every credential fetch re-reads its token here, in the transaction that stores its leases.
        try Row.fetchOne(try db.cachedStatement(sql: "SELECT * FROM tokens WHERE accessor = ?"), arguments: [accessor]).map(TokenRecord.init)
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

    /// Marks a token revoked (or expired) and ends its active leases: those of `revocableTypes`
    /// become `revoking` (their provider is told next), the others `leaseState`. Returns the
    /// leases it changed, with their new state; false-y if the token was already revoked.
    @discardableResult
    public func revokeToken(accessor: String, reason: String, at time: Double, leaseState: LeaseState = .revoked,
                            revocableTypes: Set<String> = []) throws -> (revoked: Bool, leases: [LeaseRecord]) {
        try db.execute(sql: "UPDATE tokens SET revoked_at = ?, revoke_reason = ? WHERE accessor = ? AND revoked_at IS NULL",
                       arguments: [time, reason, accessor])
        guard db.changesCount > 0 else { return (false, []) }
        let leases = try Row.fetchAll(db, sql: "SELECT * FROM leases WHERE accessor = ? AND state = 'active'", arguments: [accessor]).map(LeaseRecord.init)
        var ended: [LeaseRecord] = []
        for var lease in leases {
            lease.state = revocableTypes.contains(lease.type) ? .revoking : leaseState
            lease.revokedAt = time
            try db.execute(sql: "UPDATE leases SET state = ?, revoked_at = ? WHERE id = ?", arguments: [lease.state.rawValue, time, lease.id])
            ended.append(lease)
        }
        return (true, ended)
    }

    public func insertLease(_ lease: LeaseRecord) throws {
        try db.cachedStatement(sql: """
            INSERT INTO leases(id, accessor, role, grant_name, type, secret, provider_id, created_at, expires_at, state, last_error,
                               revoked_at, provider_state, attempts, next_attempt_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [lease.id, lease.accessor, lease.role, lease.grant, lease.type, lease.secret, lease.providerID,
                             lease.createdAt, lease.expiresAt, lease.state.rawValue, lease.lastError, lease.revokedAt, lease.providerState,
                             lease.attempts, lease.nextAttemptAt])
    }

    public func lease(id: String) throws -> LeaseRecord? {
        try Row.fetchOne(db, sql: "SELECT * FROM leases WHERE id = ?", arguments: [id]).map(LeaseRecord.init)
    }

    /// Leases, newest first; active ones only unless `all`.
    public func leases(all: Bool, limit: Int) throws -> [LeaseRecord] {
        let filter = all ? "" : "WHERE state IN ('active', 'revoking', 'revoke_failed')"
        return try Row.fetchAll(db, sql: "SELECT * FROM leases \(filter) ORDER BY created_at DESC LIMIT ?", arguments: [limit]).map(LeaseRecord.init)
    }

    public func leases(accessor: String) throws -> [LeaseRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM leases WHERE accessor = ? ORDER BY created_at", arguments: [accessor]).map(LeaseRecord.init)
    }

    /// Ends a live lease (`active`) with `state`; returns whether it changed.
    @discardableResult
    public func endLease(id: String, state: LeaseState, at time: Double) throws -> Bool {
        try db.execute(sql: "UPDATE leases SET state = ?, revoked_at = ? WHERE id = ? AND state = 'active'", arguments: [state.rawValue, time, id])
        return db.changesCount > 0
    }

    /// Records that a lease's provider confirmed its end.
    public func finishRevocation(id: String, at time: Double) throws {
        try db.execute(sql: """
            UPDATE leases SET state = 'revoked', revoked_at = ?, last_error = NULL, next_attempt_at = NULL
            WHERE id = ? AND state IN ('revoking', 'revoke_failed')
            """, arguments: [time, id])
    }

    /// Records a failed revocation and when to try again.
    public func failRevocation(id: String, error: String, nextAttemptAt: Double) throws {
        try db.execute(sql: """
            UPDATE leases SET state = 'revoke_failed', last_error = ?, attempts = attempts + 1, next_attempt_at = ?
            WHERE id = ? AND state IN ('revoking', 'revoke_failed')
            """, arguments: [error, nextAttemptAt, id])
    }

    /// Makes failed revocations of leases made from `secret` due at `time`.
    public func makeRevocationsDue(secret: String, at time: Double) throws {
        try db.execute(sql: "UPDATE leases SET next_attempt_at = ? WHERE secret = ? AND state = 'revoke_failed'", arguments: [time, secret])
    }

    /// Leases of `types` that ended here but whose credential stays valid at its provider after `now`.
    public func endedLeasesStillValid(now: Double, types: [String], limit: Int) throws -> [LeaseRecord] {
        guard !types.isEmpty else { return [] }
        let marks = types.map { _ in "?" }.joined(separator: ", ")
        return try Row.fetchAll(db, sql: """
            SELECT * FROM leases WHERE state IN ('revoked', 'expired') AND expires_at > ? AND type IN (\(marks))
            ORDER BY created_at DESC LIMIT ?
            """, arguments: StatementArguments([now] + types + [limit] as [any DatabaseValueConvertible])).map(LeaseRecord.init)
    }

    /// Live leases made from `secret`.
    public func liveLeases(secret: String) throws -> [LeaseRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM leases WHERE secret = ? AND state IN ('active', 'revoking', 'revoke_failed')",
                         arguments: [secret]).map(LeaseRecord.init)
    }

    /// Leases whose provider must still be told they ended, due now.
    public func dueRevocations(now: Double, limit: Int) throws -> [LeaseRecord] {
        try Row.fetchAll(db, sql: """
            SELECT * FROM leases WHERE state IN ('revoking', 'revoke_failed') AND (next_attempt_at IS NULL OR next_attempt_at <= ?)
            ORDER BY next_attempt_at LIMIT ?
            """, arguments: [now, limit]).map(LeaseRecord.init)
    }

    public func setLeaseExpiry(id: String, expiresAt: Double) throws {
        try db.execute(sql: "UPDATE leases SET expires_at = ? WHERE id = ?", arguments: [expiresAt, id])
    }

    /// Active leases past their expiry.
    public func expiredActiveLeases(now: Double, limit: Int) throws -> [LeaseRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM leases WHERE state = 'active' AND expires_at <= ? LIMIT ?", arguments: [now, limit]).map(LeaseRecord.init)
    }

    /// Deletes up to `limit` leases that ended (`revoked`, `expired`) and whose credential
    /// stopped being valid before `cutoff`, then up to `limit` tokens revoked or expired before
    /// `cutoff` that no lease names any more. A lease whose revocation is still owed is never
    /// touched, nor its token. Returns how many of each went.
    public func purgeEnded(before cutoff: Double, limit: Int) throws -> (tokens: Int, leases: Int) {
        try db.execute(sql: """
            DELETE FROM leases WHERE id IN (
                SELECT id FROM leases WHERE state IN ('revoked', 'expired') AND expires_at < ?
                AND COALESCE(revoked_at, 0) < ? LIMIT ?)
            """, arguments: [cutoff, cutoff, limit])
        let leases = db.changesCount
        try db.execute(sql: """
            DELETE FROM tokens WHERE accessor IN (
                SELECT t.accessor FROM tokens t WHERE t.revoked_at IS NOT NULL AND t.revoked_at < ?
                AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.accessor = t.accessor) LIMIT ?)
            """, arguments: [cutoff, limit])
        return (db.changesCount, leases)
    }

    /// Counts for metrics and tests: live tokens, active leases, and ended leases whose
    /// provider has not confirmed yet (`revoking`, `revoke_failed`).
    public func liveCounts(now: Double) throws -> (tokens: Int, leases: Int, revocationsPending: Int) {
        let tokens = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM tokens WHERE revoked_at IS NULL AND expires_at > ?", arguments: [now]) ?? 0
        let leases = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM leases WHERE state = 'active'") ?? 0
        let pending = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM leases WHERE state IN ('revoking', 'revoke_failed')") ?? 0
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
