import MLCredAPI
import MLCredPolicy
import MLCredProviders
import MLCredStore
import MLCredVault

/// Lease upkeep at providers: renewal with the token, revocation when a lease ends, retries
/// with backoff for revocations that failed, and the expiry of leases past their end.
extension Broker {
    /// First wait after a failed revocation; doubles per failure.
    static let revocationBackoffBaseSeconds = 1.0
    /// Longest wait between two revocation attempts: a role an operator fixed by hand should not wait long.
    static let revocationBackoffMaxSeconds = 300.0
    /// Leases handled per sweep, so one sweep stays short.
    static let leasesPerSweep = 100
    /// Provider revocations in flight at once during a sweep.
    static let concurrentRevocations = 8

    /// Lease types whose provider can end them early (a failure there is retried).
    var revocableTypes: Set<String> {
        Set(providers.filter { $0.value.revocable }.map { $0.key.rawValue })
    }

    /// Tells providers about `leases` that ended here (`revoking` / `revoke_failed`). Returns
    /// what the caller should be told: leases not confirmed yet (with their error), and leases
    /// that stay valid at their provider until they expire.
    @discardableResult
    func settle(_ leases: [LeaseRecord], principal: Principal) async -> (unconfirmed: [LeaseInfo], stillValid: [LeaseInfo]) {
        var unconfirmed: [LeaseInfo] = []
        var stillValid: [LeaseInfo] = []
        let now = WallClock.now()
        for lease in leases {
            if lease.state.owedToProvider {
                if let error = await revokeAtProvider(lease, principal: principal) {
                    var info = Self.info(lease)
                    info.state = .revokeFailed
                    info.lastError = error
                    unconfirmed.append(info)
                }
            } else if lease.expiresAt > now {
                stillValid.append(Self.info(lease))
            }
        }
        return (unconfirmed, stillValid)
    }

    /// Ends one lease at its provider and records the outcome (audited). Returns the error when
    /// the provider did not confirm (nil when it did, or when another caller is on it). A sealed
    /// vault leaves the lease as it is: the sweeper tries again after the next unseal.
    @discardableResult
    func revokeAtProvider(_ lease: LeaseRecord, principal: Principal) async -> String? {
        let claimed = revocationsInFlight.withLock { $0.insert(lease.id).inserted }
        guard claimed else { return nil }
        defer { _ = revocationsInFlight.withLock { $0.remove(lease.id) } }
        // Someone else may have finished it between our read and the claim.
        guard let current = try? await read({ try $0.lease(id: lease.id) }), current.state.owedToProvider else {
            return nil
        }
        guard let type = GrantType(rawValue: lease.type), let provider = providers[type], provider.revocable else {
            try? await write { try $0.finishRevocation(id: lease.id, at: WallClock.now()) }
            return nil
        }
        do {
            let opened: (type: String, phi: Bool, fields: [String: String])
            do {
                opened = try await vault.openSecret(name: lease.secret)
            } catch let error as APIError where error.reason == .secretMissing {
                throw APIError(.secretMissing, "secret '\(lease.secret)' no longer exists: put it back to let the revocation finish")
            }
            try await provider.revoke(lease: LeaseHandle(providerID: lease.providerID, grant: lease.grant, providerState: lease.providerState),
                                      secret: OpenedSecret(name: lease.secret, type: opened.type, phi: opened.phi, fields: opened.fields))
            let now = WallClock.now()
            try? await write { connection in
                try connection.finishRevocation(id: lease.id, at: now)
                try connection.appendAudit(AuditEvent(principal: principal, action: .providerRevoke, role: lease.role, grant: lease.grant,
                                                      result: .allowed, reason: "\(lease.type) \(lease.providerID) ended (lease \(lease.id))",
                                                      accessor: lease.accessor), time: now)
            }
            return nil
        } catch let error as APIError where error.reason == .sealed || error.reason == .uninitialized {
            return "the vault is sealed: the revocation is retried after the next unseal"
        } catch {
            let message = (error as? APIError)?.message ?? "\(error)"
            let now = WallClock.now()
            let delay = min(Self.revocationBackoffMaxSeconds, Self.revocationBackoffBaseSeconds * Double(1 << min(current.attempts, 20)))
            try? await write { connection in
                try connection.failRevocation(id: lease.id, error: message, nextAttemptAt: now + delay)
                try connection.appendAudit(AuditEvent(principal: principal, action: .providerRevoke, role: lease.role, grant: lease.grant,
                                                      result: .error, reason: "lease \(lease.id): \(message); next attempt in \(Int(delay)) s",
                                                      accessor: lease.accessor), time: now)
            }
            return message
        }
    }

    /// Live leases whose revocation needs `secret` (their provider can end them early).
    public func leasesNeedingSecret(_ secret: String) async throws -> [LeaseInfo] {
        let revocable = revocableTypes
        return try await read { try $0.liveLeases(secret: secret) }.filter { revocable.contains($0.type) }.map(Self.info)
    }

    /// Makes the failed revocations of leases made from `secret` due now (a secret put back or
    /// fixed should not wait out the backoff).
    public func retryRevocations(secret: String) async {
        let now = WallClock.now()
        _ = try? await write { try $0.makeRevocationsDue(secret: secret, at: now) }
    }

    /// Moves renewable `leases` to `expiresAt` at their providers. Returns the leases that moved
    /// and an audit record per provider call.
    func renewAtProviders(_ leases: [LeaseRecord], expiresAt: Double, principal: Principal) async -> (moved: [LeaseRecord], events: [AuditEvent]) {
        var moved: [LeaseRecord] = []
        var events: [AuditEvent] = []
        for lease in leases {
            guard let type = GrantType(rawValue: lease.type), let provider = providers[type], provider.renewable else { continue }
            do {
                if provider.revocable {
                    let opened = try await vault.openSecret(name: lease.secret)
                    try await provider.renew(lease: LeaseHandle(providerID: lease.providerID, grant: lease.grant, providerState: lease.providerState),
                                             secret: OpenedSecret(name: lease.secret, type: opened.type, phi: opened.phi, fields: opened.fields),
                                             expiresAt: expiresAt)
                    events.append(AuditEvent(principal: principal, action: .providerRenew, role: lease.role, grant: lease.grant, result: .allowed,
                                             reason: "\(lease.type) \(lease.providerID) valid until \(Timestamp.format(epochSeconds: expiresAt))",
                                             accessor: lease.accessor))
                }
                moved.append(lease)
            } catch {
                let message = (error as? APIError)?.message ?? "\(error)"
                events.append(AuditEvent(principal: principal, action: .providerRenew, role: lease.role, grant: lease.grant, result: .error,
                                         reason: "lease \(lease.id): \(message)", accessor: lease.accessor))
            }
        }
        return (moved, events)
    }

    /// The sweeper's lease work: ends active leases past their expiry, and tells providers about
    /// ended leases not yet confirmed (after a failure, once its backoff passed; after a restart,
    /// right after the next unseal). Returns how many leases it handled.
    public func sweepLeases(principal: Principal) async -> Int {
        guard (try? vault.hashToken("")) != nil else { return 0 }  // sealed: provider secrets are out of reach
        let now = WallClock.now()
        let revocable = revocableTypes
        let limit = Self.leasesPerSweep
        let expired = (try? await write { connection -> [LeaseRecord] in
            var ended: [LeaseRecord] = []
            for var lease in try connection.expiredActiveLeases(now: now, limit: limit) {
                lease.state = lease.state.ended(revocableAtProvider: revocable.contains(lease.type), expired: true)
                try connection.endLease(id: lease.id, state: lease.state, at: now)
                if lease.state == .revoking {
                    try connection.appendAudit(AuditEvent(principal: principal, action: .leaseExpire, role: lease.role, grant: lease.grant,
                                                          result: .allowed, reason: "lease \(lease.id) reached its expiry", accessor: lease.accessor),
                                               time: now)
                }
                ended.append(lease)
            }
            return ended
        }) ?? []
        let due = (try? await read { try $0.dueRevocations(now: now, limit: limit) }) ?? []
        // A few at a time: one unreachable provider must not hold up the others.
        await withTaskGroup(of: Void.self) { group in
            for (index, lease) in due.enumerated() {
                if index >= Self.concurrentRevocations { await group.next() }
                group.addTask { _ = await self.revokeAtProvider(lease, principal: principal) }
            }
        }
        return expired.count + due.count
    }
}
