import MLCredAPI
import MLCredPolicy
import MLCredProviders
import MLCredStore
import MLCredVault

extension Broker {
    /// Mints the role's credentials under the presented token: one lease per grant.
    public func fetchCredentials(authorization: String?, principal: Principal, subject: PolicySubject,
                                 request: CredentialsRequest) async throws -> CredentialsResponse {
        let token = try await authenticate(authorization: authorization, principal: principal, action: "credential.issue")
        // The decision is taken again: a reload that removed this caller ends its access now.
        let decision = decide(role: token.role, subject: subject)
        guard decision.allowed, let role = policies.set.roles[token.role] else {
            await audit(AuditEvent(principal: principal, action: "credential.issue", role: token.role, result: .denied,
                                   reason: decision.summary, accessor: token.accessor))
            throw VaultError(.denied, "role '\(token.role)' denied: \(decision.summary)")
        }
        let minted = try await mint(role: role, token: token, principal: principal, subject: subject, wanted: request.grants)
        try await write { connection in
            for lease in minted.leases { try connection.insertLease(lease) }
            for event in minted.events { try connection.appendAudit(event, time: minted.time) }
        }
        return minted.response
    }

    /// Credentials minted for a token, not yet stored: the caller writes leases and audit
    /// records in its own transaction.
    struct Minted: Sendable {
        var response: CredentialsResponse
        var leases: [LeaseRecord]
        var events: [AuditEvent]
        var time: Double
    }

    /// Mints one credential per grant of `role` in this environment (or the `wanted` ones).
    func mint(role: Role, token: TokenRecord, principal: Principal, subject: PolicySubject, wanted: [String]?) async throws -> Minted {
        var grants = role.grants(in: environment)
        if let wanted {
            for name in wanted where !grants.contains(where: { $0.name == name }) {
                throw VaultError(.notFound, "role '\(role.name)' has no grant '\(name)' in environment '\(environment)'")
            }
            grants = grants.filter { wanted.contains($0.name) }
        }
        let now = WallClock.now()
        var env: [String: String] = [:]
        var leases: [LeaseRecord] = []
        var events: [AuditEvent] = []
        for grant in grants {
            let credential: IssuedCredential
            do {
                credential = try await issue(grant: grant, role: role, token: token, principal: principal, subject: subject, now: now)
            } catch let error as VaultError {
                await audit(AuditEvent(principal: principal, action: "credential.issue", role: role.name, grant: grant.name,
                                       result: error.code == .denied ? .denied : .error, reason: error.message, accessor: token.accessor))
                throw error
            }
            for (key, value) in credential.env { env[key] = value }
            let lease = LeaseRecord(id: TokenFormat.identifier(), accessor: token.accessor, role: role.name, grant: grant.name,
                                    type: grant.type.rawValue, secret: grant.secret, providerID: credential.providerID,
                                    createdAt: now, expiresAt: credential.expiresAt)
            leases.append(lease)
            events.append(AuditEvent(principal: principal, action: "credential.issue", role: role.name, grant: grant.name, result: .allowed,
                                     reason: "\(grant.type.rawValue) lease \(lease.id) (\(credential.providerID))", accessor: token.accessor))
        }
        let response = CredentialsResponse(env: env, files: [:], leases: leases.map(Self.info),
                                           expiresAt: Timestamp.format(epochSeconds: token.expiresAt))
        return Minted(response: response, leases: leases, events: events, time: now)
    }

    private func issue(grant: Grant, role: Role, token: TokenRecord, principal: Principal, subject: PolicySubject,
                       now: Double) async throws -> IssuedCredential {
        guard let provider = providers[grant.type] else {
            throw VaultError(.internal, "grant type \(grant.type.rawValue) is not available in this build")
        }
        if grant.type == .static && role.phi {
            throw VaultError(.denied, "static grant '\(grant.name)' refused: phi roles never receive stored values as they are")
        }
        let opened: (type: String, phi: Bool, fields: [String: String])
        do {
            opened = try await vault.openSecret(name: grant.secret)
        } catch let error as VaultError where error.code == .notFound {
            throw VaultError(.notFound, "grant '\(grant.name)' names secret '\(grant.secret)', which does not exist")
        }
        guard opened.type == grant.type.secretType else {
            throw VaultError(.conflict, "grant '\(grant.name)' (\(grant.type.rawValue)) needs a \(grant.type.secretType) secret, but '\(grant.secret)' is \(opened.type)")
        }
        if opened.phi && !role.phi {
            throw VaultError(.denied, "secret '\(grant.secret)' is labelled phi: only phi roles may use it, and '\(role.name)' is not one")
        }
        let context = IssuanceContext(role: role, grant: grant, subject: subject.user ?? "uid:\(subject.uid)", accessor: token.accessor,
                                      now: now, expiresAt: token.expiresAt)
        do {
            return try await provider.issue(secret: OpenedSecret(name: grant.secret, type: opened.type, phi: opened.phi, fields: opened.fields),
                                            context: context)
        } catch let error as ProviderError {
            throw VaultError(error.code, error.message)
        }
    }

    /// The public keys of every jwt-signer secret, for JWT verifiers.
    public func jwks() async throws -> JWKSet {
        let names = try await vault.listSecrets().filter { $0.type == "jwt-signer" && $0.error == nil }.map(\.name)
        var keys: [JWKSet.Key] = []
        for name in names {
            let opened = try await vault.openSecret(name: name)
            if let key = JWTProvider.jwk(of: OpenedSecret(name: name, type: opened.type, phi: opened.phi, fields: opened.fields)) {
                keys.append(key)
            }
        }
        return JWKSet(keys: keys)
    }
}
