import MLCredAPI
import MLCredStore
import MLCredVault

/// The fleet (SPEC §12): heartbeats, the takeover of a silent node's leases, and its status.
extension Broker {
    /// Leases claimed per takeover transaction.
    static let takeoverBatch = 100

    /// Writes this node's row: version, environment, phi, sealed, policy digest, live counts.
    public func heartbeat(startedAt: Double, timeout: Double) async throws {
        let sealed = (try? vault.hashToken("")) == nil
        let digest = policies.set.digest
        let settings = vault.settings
        let now = WallClock.now()
        try await write { connection in
            let counts = try connection.liveCounts(now: now)
            try connection.heartbeat(NodeBeat(
                name: connection.node, startedAt: startedAt, timeout: timeout, version: mlcredVersion, environment: settings.environment,
                phi: settings.phi, sealed: sealed, policyDigest: digest, tokens: counts.tokens, leases: counts.leases))
        }
    }

    /// Ends the leases of every node silent past its timeout, as this (live, unsealed) node:
    /// each lease claimed exactly once among the live nodes, audited as `lease.takeover` in the
    /// claim's transaction; the silent node's run-bound tokens are revoked. The providers are
    /// told by this node's lease sweep. Returns how many leases it took over.
    /// `healthyFor`: how long this node has beaten without failure; a node is judged only if that
    /// covers the silent node's own timeout (after a store outage, every row looks stale until
    /// each node had a whole timeout of its own to beat again).
    public func takeOverSilentNodes(principal: Principal, healthyFor: Double) async -> Int {
        guard store.isShared, (try? vault.hashToken("")) != nil else { return 0 }
        guard let nodes = try? await read({ try $0.nodes() }) else { return 0 }
        let revocable = revocableTypes
        var total = 0
        for silent in nodes where silent.isSilent && silent.name != store.node && healthyFor >= silent.timeout {
            while true {
                let now = WallClock.now()
                let limit = Self.takeoverBatch
                let claimed = try? await write { connection -> Int in
                    let leases = try connection.takeOverLeases(from: silent.name, revocableTypes: revocable, at: now, limit: limit)
                    for lease in leases {
                        try connection.appendAudit(AuditEvent(
                            principal: principal, action: .leaseTakeover, role: lease.role, grant: lease.grant, result: .allowed,
                            reason: "lease \(lease.id) of node \(silent.name), silent for \(Int(silent.silentFor)) s (timeout \(Int(silent.timeout)) s), ended by node \(connection.node)",
                            accessor: lease.accessor), time: now)
                    }
                    let tokens = try connection.revokeBoundTokens(of: silent.name, reason: "node \(silent.name) went silent", at: now)
                    if tokens > 0 {
                        try connection.appendAudit(AuditEvent(
                            principal: principal, action: .tokenRevoke, result: .allowed,
                            reason: "revoked \(Plural.count(tokens, "run-bound token")) of node \(silent.name), silent for \(Int(silent.silentFor)) s"),
                            time: now)
                    }
                    return leases.count
                }
                guard let claimed else { break }
                total += claimed
                if claimed < limit { break }
            }
        }
        if total > 0 { _ = await sweepLeases(principal: principal) }
        return total
    }

    /// Whether this node runs the fleet's scheduled work (rotations on a schedule): the live,
    /// unsealed node with the smallest name. A single node always does.
    func leadsScheduledWork() async -> Bool {
        guard store.isShared else { return true }
        guard let nodes = try? await read({ try $0.nodes() }) else { return false }
        let leader = nodes.filter { !$0.isSilent && !$0.sealed }.map(\.name).min()
        return leader == nil || leader == store.node
    }

    /// Picks up a vault another node initialized (SPEC §12), and key generations another node's
    /// `vault rotate` made (so this node writes under the current one); returns why this node
    /// cannot serve the fleet's vault, if so.
    public func refreshVault() async -> String? {
        if let problem = await vault.refreshInitialization() { return problem }
        await vault.syncDataKeys()
        return nil
    }

    /// Every node's row with drift flagged: live nodes of one environment whose policy digests differ.
    /// The answering node beats first, so its own row is current (on SQLite, the only row).
    public func fleetStatus(principal: Principal, startedAt: Double, timeout: Double) async throws -> FleetStatusResponse {
        try await heartbeat(startedAt: startedAt, timeout: timeout)
        let rows = try await read { try $0.nodes() }
        var digestsByEnvironment: [String: Set<String>] = [:]
        for row in rows where !row.isSilent { digestsByEnvironment[row.environment, default: []].insert(row.policyDigest) }
        let drifting = Set(digestsByEnvironment.filter { $0.value.count > 1 }.keys)
        let nodes = rows.map { row in
            FleetNode(name: row.name, lastSeen: Timestamp.format(epochSeconds: row.lastSeen), silentFor: (row.silentFor * 10).rounded() / 10,
                      silent: row.isSilent, timeout: row.timeout, version: row.version, environment: row.environment, phi: row.phi,
                      sealed: row.sealed, policyDigest: row.policyDigest, tokens: row.tokens, leases: row.leases,
                      drift: !row.isSilent && drifting.contains(row.environment), answering: row.name == store.node)
        }
        let drift = drifting.sorted().map { environment in
            let members = rows.filter { !$0.isSilent && $0.environment == environment }.map { "\($0.name): \($0.policyDigest)" }
            return "environment '\(environment)': live nodes run different policy sets (\(members.joined(separator: ", ")))"
        }
        await audit(AuditEvent(principal: principal, action: .fleetStatus, result: .allowed))
        return FleetStatusResponse(store: store.kind, nodes: nodes, drift: drift)
    }

    /// Forgets a node retired for good (`fleet forget`): its row leaves `fleet status`, its
    /// tokens still live are revoked (they worked only on it). Refused while it is not silent past
    /// its timeout, for the answering node itself, and while a live node has not yet taken over
    /// its leases. Its audit chain stays (`audit verify` checks it, `audit show --node` shows it);
    /// a node started again under that name writes its row again.
    public func forgetNode(_ name: String, principal: Principal) async throws -> FleetForgetResponse {
        guard NodeName.isValid(name) else { throw APIError(.invalidName, "invalid node name: \(NodeName.requirement)") }
        let now = WallClock.now()
        let outcome = try await write { connection -> StoreConnection.ForgetOutcome in
            let outcome = try connection.forgetNode(name, reason: "node \(name) forgotten by an admin", at: now)
            if case .forgotten(let tokens) = outcome {
                try connection.appendAudit(AuditEvent(
                    principal: principal, action: .fleetForget, result: .allowed,
                    reason: "node \(name) forgotten; \(Plural.count(tokens, "live token")) of it revoked; its audit chain stays"), time: now)
            }
            return outcome
        }
        let refusal: APIError
        switch outcome {
        case .forgotten(let tokens):
            return FleetForgetResponse(node: name, revokedTokens: tokens)
        case .missing:
            refusal = APIError(.nodeMissing, "no node '\(name)' in the store (see 'mlcred fleet status')")
        case .live(let silentFor, let timeout):
            refusal = APIError(.nodeLive, name == store.node
                ? "node '\(name)' is the node answering: forget it from another node once it is stopped"
                : "node '\(name)' is live: last seen \(Int(silentFor)) s ago, within its timeout of \(Int(timeout)) s; stop it first")
        case .holdsName:
            refusal = APIError(.nodeLive, "node '\(name)' is silent but its daemon still holds its name on the store (stalled or cut off, not stopped): stop it first")
        case .hasLeases(let count):
            refusal = APIError(.nodeHasLeases, "\(Plural.count(count, "lease")) of node '\(name)' still wait for a live, unsealed node to take them over; try again after that")
        }
        await audit(AuditEvent(principal: principal, action: .fleetForget, result: .denied, reason: refusal.message))
        throw refusal
    }
}
