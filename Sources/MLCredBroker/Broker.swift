import MLCredAPI
import MLCredPolicy
import MLCredProviders
import MLCredStore
import MLCredVault
import Synchronization

/// Tokens, credentials and leases: every decision goes through `PolicyEvaluator`, every
/// effect is written with its audit record in one transaction before the answer leaves.
public final class Broker: Sendable {
    let vault: Vault
    public let store: Store
    /// The policy set in force.
    public let policies: PolicyStore
    let environment: String
    let phiDaemon: Bool
    let providers: [GrantType: any CredentialProvider]
    /// Leases whose provider is being told they ended, so the sweeper and a request never do it twice at once.
    let revocationsInFlight = Mutex<Set<String>>([])
    /// Secrets being rotated at their provider (one rotation of a secret at a time).
    let rotationsInFlight = Mutex<Set<String>>([])
    /// When a scheduled rotation of a secret last failed (tried again an hour later).
    let scheduledRotationFailures = Mutex<[String: Double]>([:])

    /// Every provider this build has.
    public static func defaultProviders() -> [any CredentialProvider] {
        [JWTProvider(), StaticProvider(), AWSProvider(), PostgresProvider()]
    }

    /// The most live tokens one uid may hold on this node unless `mlcredd --max-tokens-per-uid`
    /// says otherwise. Threat: a user whom some role admits issues tokens in a loop until the
    /// store reaches its free-space reserve, and everyone's new tokens are refused (507).
    public static let defaultMaxTokensPerUID = 10_000

    /// The most live tokens one uid may hold on this node; 0: no limit.
    let maxTokensPerUID: Int

    public init(vault: Vault, store: Store, policies: PolicyStore, providers: [any CredentialProvider] = Broker.defaultProviders(),
                maxTokensPerUID: Int = Broker.defaultMaxTokensPerUID) {
        self.maxTokensPerUID = maxTokensPerUID
        self.vault = vault
        self.store = store
        self.policies = policies
        environment = vault.settings.environment
        phiDaemon = vault.settings.phi
        var byType: [GrantType: any CredentialProvider] = [:]
        for provider in providers {
            for type in provider.grantTypes { byType[type] = provider }
        }
        self.providers = byType
    }

    /// Refuses (audited, 429) a token for a uid that holds `maxTokensPerUID` live ones here.
    /// Checked before the write, so parallel requests of one uid may pass it together: the
    /// limit bounds a flood to itself plus the uid's connection cap, not exactly.
    func requireTokenRoom(principal: Principal, role: String) async throws {
        guard maxTokensPerUID > 0 else { return }
        let (uid, limit, now) = (principal.uid, maxTokensPerUID, WallClock.now())
        let live = try await pointRead { try $0.liveTokenCount(uid: uid, now: now, limit: limit) }
        guard live >= limit else { return }
        let reason = "uid \(uid) holds \(limit) live tokens on this node, the most one uid may hold (mlcredd --max-tokens-per-uid)"
        await audit(AuditEvent(principal: principal, action: .tokenIssue, role: role, result: .denied, reason: reason))
        throw APIError(.tokenLimitReached, reason)
    }

    /// Wipes the key material providers keep between calls (at seal).
    public func forgetProviderKeys() {
        for provider in providers.values { provider.forgetKeys() }
    }

    /// The decision for `subject` asking for `role` here, with its reasons.
    public func decide(role: String, subject: PolicySubject) -> PolicyDecision {
        PolicyEvaluator.decide(role: role, in: policies.set, subject: subject, environment: environment, phiDaemon: phiDaemon)
    }

    /// The roles whose policy admits `subject` here: `roles` it may assume now, `emergency` ones
    /// usable only while an emergency is open (a closed one refuses it).
    public func assumableRoles(subject: PolicySubject) -> (roles: [String], emergency: [String]) {
        let set = policies.set
        let admitted = PolicyEvaluator.assumableRoles(in: set, subject: subject, environment: environment, phiDaemon: phiDaemon)
        let emergency = admitted.filter { set.roles[$0]?.emergency == true }
        return (admitted.filter { set.roles[$0]?.emergency != true }, emergency)
    }

    /// For `policy explain` against this daemon: what the emergency state of `role` (an emergency
    /// role) means for a caller the policy admits, and whether it refuses it now.
    public func emergencyExplanation(role: String) async throws -> (allowed: Bool, reason: String) {
        let now = WallClock.now()
        guard let record = try await pointRead({ try $0.emergency(role: role) }), record.isOpen(at: now) else {
            return (false, "emergency role '\(role)' is closed: refused until two different admins open it ('mlcred emergency open --role \(role) --reason TEXT')")
        }
        return (true, "emergency role '\(role)' is open until \(Timestamp.format(epochSeconds: record.until ?? now)) (\(record.reason))")
    }

    /// Writes the merged records of denial windows that ended (`all`: every window, at shutdown).
    public func flushMergedDenials(all: Bool = false) async {
        await vault.flushMergedDenials(all: all)
    }

    func audit(_ event: AuditEvent) async {
        try? await vault.audit(event)
    }

    /// Issues a token for `request.role`. `boundStartTime` is the start time of the calling
    /// process when the token is to be bound to it (`bind = process`).
    /// `fromRun` says whether the caller is `mlcred run` as installed (setgid to the run group,
    /// untraced): phi tokens go only to it (SPEC §3); it is asked only for phi roles.
    public func issueToken(principal: Principal, subject: PolicySubject, request: TokenRequest,
                           boundStartTime: UInt64?, fromRun: () -> Bool = { false }) async throws -> TokenResponse {
        _ = try vault.hashToken("")  // fails early, with the right code, if sealed
        // Threat: a name of megabytes, audited twice per denial, fills the disk. Names are
        // checked against their grammar before anything is written.
        guard Names.isValidRoleName(request.role) else {
            throw APIError(.invalidName, "invalid role name: \(Names.roleNameRequirement)")
        }
        try store.reserve.check(refusing: "new tokens")
        let decision = decide(role: request.role, subject: subject)
        guard decision.allowed, let role = policies.set.roles[request.role] else {
            await audit(AuditEvent(principal: principal, action: .tokenIssue, role: request.role, result: .denied, reason: decision.summary))
            throw APIError(policies.set.roles[request.role] == nil ? .roleUnknown : .roleDenied, "role '\(request.role)' denied: \(decision.summary)")
        }
        if role.phi && (boundStartTime == nil || !fromRun()) {
            let reason = boundStartTime == nil
                ? "phi role '\(role.name)' is issued only to 'mlcred run' (a token bound to its process), never as a bare token or env"
                : "phi role '\(role.name)' is issued only to the installed 'mlcred run' (setgid to the run group, not traced)"
            await audit(AuditEvent(principal: principal, action: .tokenIssue, role: role.name, result: .denied, reason: reason))
            throw APIError(.rolePhiRunOnly, reason)
        }
        var emergency: EmergencyRecord?
        if role.emergency {
            do {
                emergency = try await requireOpenEmergency(role)
            } catch let error as APIError {
                await audit(AuditEvent(principal: principal, action: .tokenIssue, role: role.name, result: .denied, reason: error.message))
                throw error
            }
        }
        try await requireTokenRoom(principal: principal, role: role.name)
        var ttl = role.ttlSeconds
        if let text = request.ttl {
            guard let requested = PolicyDuration.parse(text) else {
                throw APIError(.invalidTTL, "invalid ttl: use a duration above zero, e.g. \"30m\" or \"1h\"")
            }
            ttl = min(requested, role.ttlSeconds)
        }
        ttl = min(ttl, role.maxTTLSeconds)
        let token = TokenFormat.generate()
        let hash = try vault.hashToken(token)
        let now = WallClock.now()
        // Under an emergency, nothing outlives its end.
        let cap = emergency?.until ?? .infinity
        let record = TokenRecord(
            accessor: TokenFormat.identifier(), tokenHash: hash, role: role.name, phi: role.phi, uid: principal.uid,
            user: principal.user, pid: principal.pid, boundStartTime: boundStartTime, issuedAt: now,
            expiresAt: min(now + Double(ttl), cap), maxExpiresAt: min(now + Double(role.maxTTLSeconds), cap))
        let reason = decision.summary + (boundStartTime != nil ? "; bound to pid \(principal.pid)" : "")
            + (emergency.map { "; emergency: \($0.reason)" } ?? "")
        // With `credentials`, the role's credentials are minted now and stored with the token in
        // one transaction: one round trip and one commit fewer for `mlcred run`.
        let awsMode = request.aws ?? .mint
        var mintedNow = request.credentials == true
            ? try await mint(role: role, token: record, principal: principal, subject: subject, wanted: nil, aws: awsMode) : nil
        if let emergency, var made = mintedNow {
            made.events = made.events.map { Self.underEmergency($0, emergency) }
            mintedNow = made
        }
        let minted = mintedNow
        let failure = minted?.failure
        try await write { connection in
            try connection.insertToken(record)
            try connection.appendAudit(AuditEvent(principal: principal, action: .tokenIssue, role: role.name, result: .allowed,
                                                  reason: reason, accessor: record.accessor), time: now)
            if let minted {
                for lease in minted.leases { try connection.insertLease(lease) }
                for event in minted.events { try connection.appendAudit(event, time: minted.time) }
            }
            if let failure {
                // Minting stopped part-way: the token ends with what it made, in this transaction.
                try connection.revokeToken(accessor: record.accessor, reason: "credential minting failed", at: now)
                try connection.appendAudit(AuditEvent(principal: principal, action: .tokenRevoke, role: role.name, result: .allowed,
                                                      reason: "credential minting failed: \(failure.message)", accessor: record.accessor), time: now)
            }
        }
        if let minted, let failure {
            await settle(minted.leases, principal: principal)
            throw failure
        }
        return TokenResponse(token: token, accessor: record.accessor, role: role.name, phi: role.phi,
                             expiresAt: Timestamp.format(epochSeconds: record.expiresAt),
                             maxExpiresAt: Timestamp.format(epochSeconds: record.maxExpiresAt), credentials: minted?.response)
    }

    /// The live token presented as `Authorization: Bearer`, owned by the caller's uid.
    /// 401 for a missing, malformed, unknown, expired or revoked token; 403 (audited) for a
    /// token of another uid.
    public func authenticate(authorization: String?, principal: Principal, action: AuditAction) async throws -> TokenRecord {
        guard let authorization, authorization.hasPrefix("Bearer ") else {
            throw APIError(.tokenMissing, "this route needs 'Authorization: Bearer <token>'")
        }
        let token = String(authorization.dropFirst("Bearer ".count))
        guard TokenFormat.isWellFormed(token) else {
            throw APIError(.tokenMalformed, "malformed token")
        }
        let hash = try vault.hashToken(token)
        guard let record = try await pointRead({ try $0.token(hash: hash) }) else {
            throw APIError(.tokenUnknown, "unknown token")
        }
        if store.isShared && record.node != store.node {
            // SPEC §12: a token is valid only on the node that issued it (its bound process, its
            // caller's identity, live only in that node's kernel). Copied to another node, it is refused there.
            await audit(AuditEvent(principal: principal, action: action, role: record.role, result: .denied,
                                   reason: "token of node \(record.node) presented on node \(store.node)", accessor: record.accessor))
            throw APIError(.tokenOtherNode, "this token was issued by node '\(record.node)'; tokens work only on the node that issued them")
        }
        if record.uid != principal.uid {
            // Threat: a token copied out of another user's job. It stays useless to anyone else.
            await audit(AuditEvent(principal: principal, action: action, role: record.role, result: .denied,
                                   reason: "token of uid \(record.uid) presented by uid \(principal.uid)", accessor: record.accessor))
            throw APIError(.tokenOtherUID, "this token belongs to another user")
        }
        if let revokedAt = record.revokedAt {
            // The sweeper ends a token once it expires (revoked_at at or after expires_at): that
            // token expired, nobody revoked it (a client branching on `reason` must be told so).
            if record.expiresAt <= revokedAt { throw APIError(.tokenExpired, "token expired") }
            throw APIError(.tokenRevoked, "token revoked")
        }
        if record.expiresAt <= WallClock.now() { throw APIError(.tokenExpired, "token expired") }
        return record
    }

    /// Extends a token's life by up to the role's ttl, never past its max_ttl from issue.
    public func renew(authorization: String?, principal: Principal, request: RenewRequest) async throws -> TokenInfo {
        let record = try await authenticate(authorization: authorization, principal: principal, action: .tokenRenew)
        guard let role = policies.set.roles[record.role] else {
            throw APIError(.roleRemoved, "role '\(record.role)' no longer exists")
        }
        var ttl = role.ttlSeconds
        if let text = request.ttl {
            guard let requested = PolicyDuration.parse(text) else { throw APIError(.invalidTTL, "invalid ttl: use a duration above zero, e.g. \"30m\" or \"1h\"") }
            ttl = min(requested, ttl)
        }
        let now = WallClock.now()
        let expiresAt = max(record.expiresAt, min(now + Double(ttl), record.maxExpiresAt))
        // Leases that follow the token move with it, at their provider first (PostgreSQL's VALID UNTIL).
        let accessor = record.accessor
        let leases = try await pointRead { try $0.leases(accessor: accessor) }.filter { $0.state == .active }
        let followers = await renewAtProviders(leases, expiresAt: expiresAt, principal: principal)
        try await write { connection in
            try connection.setTokenExpiry(accessor: record.accessor, expiresAt: expiresAt)
            for lease in followers.moved { try connection.setLeaseExpiry(id: lease.id, expiresAt: expiresAt) }
            for event in followers.events { try connection.appendAudit(event, time: now) }
            try connection.appendAudit(AuditEvent(principal: principal, action: .tokenRenew, role: record.role, result: .allowed,
                                                  reason: "expires \(Timestamp.format(epochSeconds: expiresAt))", accessor: record.accessor), time: now)
        }
        var renewed = record
        renewed.expiresAt = expiresAt
        return Self.info(renewed, now: now)
    }

    /// Revokes the presented token and every lease under it.
    public func revoke(authorization: String?, principal: Principal) async throws -> RevocationOutcome {
        let record = try await authenticate(authorization: authorization, principal: principal, action: .tokenRevoke)
        return try await revoke(accessor: record.accessor, principal: principal, reason: "revoked by its holder")
    }

    /// What a revocation did: whether the token was live, leases whose provider has not
    /// confirmed yet (retried), and credentials that stay valid at their provider until they expire.
    public struct RevocationOutcome: Sendable {
        public var revoked: Bool
        public var unconfirmed: [LeaseInfo]
        public var stillValid: [LeaseInfo]
    }

    /// Revokes a token by accessor (admins, the sweeper), and tells providers about its leases.
    /// With `settleNow` false (the sweeper), providers are told by the lease sweep instead, so a
    /// slow provider never delays the revocation of other tokens.
    @discardableResult
    public func revoke(accessor: String, principal: Principal, reason: String, expired: Bool = false,
                       settleNow: Bool = true) async throws -> RevocationOutcome {
        let now = WallClock.now()
        let revocable = revocableTypes
        let outcome = try await write { connection -> (Bool, [LeaseRecord]) in
            let result = try connection.revokeToken(accessor: accessor, reason: reason, at: now, leaseState: expired ? .expired : .revoked,
                                                    revocableTypes: revocable)
            guard result.revoked, let token = try connection.token(accessor: accessor) else { return (false, []) }
            let count = result.leases.count
            try connection.appendAudit(AuditEvent(principal: principal, action: expired ? .tokenExpire : .tokenRevoke, role: token.role,
                                                  result: .allowed, reason: reason + "; \(count) lease\(count == 1 ? "" : "s") ended",
                                                  accessor: accessor), time: now)
            return (true, result.leases)
        }
        guard settleNow else { return RevocationOutcome(revoked: outcome.0, unconfirmed: [], stillValid: []) }
        let settled = await settle(outcome.1, principal: principal)
        return RevocationOutcome(revoked: outcome.0, unconfirmed: settled.unconfirmed, stillValid: settled.stillValid)
    }

    /// Revokes one lease (admin). A lease whose revocation failed before is tried again now.
    public func revokeLease(id: String, principal: Principal) async throws -> RevocationOutcome {
        let now = WallClock.now()
        let revocable = revocableTypes
        let lease = try await write { connection -> LeaseRecord? in
            guard var lease = try connection.lease(id: id) else { return nil }
            if lease.state.owedToProvider {
                try connection.makeRevocationsDue(secret: lease.secret, at: now)
                return lease
            }
            lease.state = lease.state.ended(revocableAtProvider: revocable.contains(lease.type))
            guard try connection.endLease(id: id, state: lease.state, at: now) else { return nil }
            try connection.appendAudit(AuditEvent(principal: principal, action: .leaseRevoke, role: lease.role, grant: lease.grant,
                                                  result: .allowed, reason: "lease \(id)", accessor: lease.accessor), time: now)
            return lease
        }
        guard let lease else { throw APIError(.leaseMissing, "no live lease '\(id)'") }
        let settled = await settle([lease], principal: principal)
        return RevocationOutcome(revoked: true, unconfirmed: settled.unconfirmed, stillValid: settled.stillValid)
    }

    /// Marks every token past its expiry as expired, ending its leases. Returns how many.
    public func expireDue(principal: Principal) async -> Int {
        let now = WallClock.now()
        guard let due = try? await read({ try $0.expiredUnrevokedTokens(now: now, limit: 500) }) else { return 0 }
        var count = 0
        for token in due where (try? await revoke(accessor: token.accessor, principal: principal, reason: "expired", expired: true,
                                                  settleNow: false))?.revoked == true {
            count += 1
        }
        return count
    }

    /// Deletes tokens and leases that ended more than `retention` seconds ago (the audit log
    /// keeps their history), a batch at a time; audited when anything went. Returns the count.
    public func purgeEnded(retention: Double, principal: Principal) async -> Int {
        let cutoff = WallClock.now() - retention
        let gone = try? await write { connection -> Int in
            let (tokens, leases) = try connection.purgeEnded(before: cutoff, limit: 5000)
            if tokens + leases > 0 {
                try connection.appendAudit(AuditEvent(principal: principal, action: .storePurge, result: .allowed,
                                                      reason: "\(Plural.count(tokens, "token")) and \(Plural.count(leases, "lease")) that ended before \(Timestamp.format(epochSeconds: cutoff))"),
                                           time: WallClock.now())
            }
            return tokens + leases
        }
        return gone ?? 0
    }

    /// Live tokens bound to a process (the sweeper watches them).
    public func boundTokens() async throws -> [TokenRecord] {
        try await read { try $0.boundLiveTokens() }
    }

    /// One page of live tokens for admins, in issue order.
    public func listTokens(page: ListPage) async throws -> TokenListResponse {
        let now = WallClock.now()
        // One more than asked: whether it comes says whether another page follows.
        let records = try await read { try $0.liveTokens(now: now, after: page.after, limit: page.limit + 1) }
        let shown = records.prefix(page.limit)
        return TokenListResponse(tokens: shown.map { Self.info($0, now: now) },
                                 next: records.count > page.limit ? shown.last?.accessor : nil)
    }

    /// One page of leases for admins (SPEC §5), newest first: live and failing ones (`active`,
    /// `revoking`, `revoke_failed`); with `ended`, also ended ones still valid at their provider
    /// (STS sessions, JWTs); with `all`, every lease kept.
    public func listLeases(scope: LeaseListScope, page: ListPage) async throws -> LeaseListResponse {
        let now = WallClock.now()
        let unrevocable = scope == .ended ? GrantType.allCases.filter { providers[$0]?.revocable != true }.map(\.rawValue) : []
        let records = try await read { connection in
            try connection.leasePage(all: scope == .all, endedStillValidTypes: unrevocable, now: now, before: page.after, limit: page.limit + 1)
        }
        let shown = records.prefix(page.limit)
        return LeaseListResponse(leases: shown.map(Self.info), next: records.count > page.limit ? shown.last?.id : nil)
    }

    static func info(_ token: TokenRecord, now: Double) -> TokenInfo {
        let state: TokenState = token.revokedAt != nil ? (token.revokeReason == "expired" ? .expired : .revoked) : (token.expiresAt <= now ? .expired : .active)
        return TokenInfo(accessor: token.accessor, role: token.role, phi: token.phi, uid: token.uid, user: token.user, pid: token.pid,
                         bound: token.boundStartTime != nil, issuedAt: Timestamp.format(epochSeconds: token.issuedAt),
                         expiresAt: Timestamp.format(epochSeconds: token.expiresAt),
                         maxExpiresAt: Timestamp.format(epochSeconds: token.maxExpiresAt), state: state, revokeReason: token.revokeReason,
                         node: token.node.isEmpty ? nil : token.node)
    }

    static func info(_ lease: LeaseRecord) -> LeaseInfo {
        LeaseInfo(id: lease.id, accessor: lease.accessor, role: lease.role, grant: lease.grant, type: lease.type,
                  providerID: lease.providerID, expiresAt: Timestamp.format(epochSeconds: lease.expiresAt), state: lease.state,
                  lastError: lease.lastError, node: lease.node.isEmpty ? nil : lease.node)
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (StoreConnection) throws -> T) async throws -> T {
        do {
            return try await store.write(body)
        } catch {
            throw StoreError.apiError(for: error)
        }
    }

    /// A point lookup for a request (see `Store.pointRead`).
    func pointRead<T: Sendable>(_ body: @escaping @Sendable (StoreConnection) throws -> T) async throws -> T {
        do {
            return try await store.pointRead(body)
        } catch {
            throw StoreError.apiError(for: error)
        }
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (StoreConnection) throws -> T) async throws -> T {
        do {
            return try await store.read(body)
        } catch {
            throw StoreError.apiError(for: error)
        }
    }
}
