import MLCredAPI
import MLCredPolicy
import MLCredProviders
import MLCredStore
import MLCredVault

extension Broker {
    /// The most grant names one credentials request may list.
    static let maximumGrantsPerRequest = 64

    /// Mints the role's credentials under the presented token: one lease per grant.
    /// `fromRun`: whether the caller is the installed `mlcred run` (asked for phi tokens only).
    public func fetchCredentials(authorization: String?, principal: Principal, subject: PolicySubject,
                                 request: CredentialsRequest, fromRun: () -> Bool = { false }) async throws -> CredentialsResponse {
        if let grants = request.grants {
            guard grants.count <= Self.maximumGrantsPerRequest, grants.allSatisfy(Names.isValidRoleName) else {
                throw APIError(.invalidName, "invalid grant list: at most \(Self.maximumGrantsPerRequest) names; \(Names.roleNameRequirement)")
            }
        }
        let token = try await authenticate(authorization: authorization, principal: principal, action: .credentialIssue)
        if token.phi && !fromRun() {
            // Threat: any program of the user asking for phi credentials under a phi token it
            // found (a job's environment): only `mlcred run` itself receives them (SPEC §3).
            let reason = "phi credentials of role '\(token.role)' go only to the installed 'mlcred run' (setgid to the run group, not traced)"
            await audit(AuditEvent(principal: principal, action: .credentialIssue, role: token.role, result: .denied, reason: reason,
                                   accessor: token.accessor))
            throw APIError(.rolePhiRunOnly, reason)
        }
        let awsMode = request.aws ?? .mint
        // The decision is taken again: a reload that removed this caller ends its access now.
        let decision = decide(role: token.role, subject: subject)
        guard decision.allowed, let role = policies.set.roles[token.role] else {
            await audit(AuditEvent(principal: principal, action: .credentialIssue, role: token.role, result: .denied,
                                   reason: decision.summary, accessor: token.accessor))
            if policies.set.roles[token.role] == nil {
                // As renew says it: the token outlived its role (a reload removed it).
                throw APIError(.roleRemoved, "role '\(token.role)' no longer exists")
            }
            throw APIError(.roleDenied, "role '\(token.role)' denied: \(decision.summary)")
        }
        var emergency: EmergencyRecord?
        if role.emergency {
            do {
                emergency = try await requireOpenEmergency(role)
            } catch let error as APIError {
                await audit(AuditEvent(principal: principal, action: .credentialIssue, role: role.name, result: .denied, reason: error.message,
                                       accessor: token.accessor))
                throw error
            }
        }
        var minted = try await mint(role: role, token: token, principal: principal, subject: subject, wanted: request.grants, aws: awsMode)
        if let emergency { minted.events = minted.events.map { Self.underEmergency($0, emergency) } }
        let revocable = revocableTypes
        let proposed = minted
        // The token is checked again in the transaction that records the leases: a revocation
        // that landed while minting (a race with `token revoke`) ends what was just made.
        let stored = try await write { connection -> [LeaseRecord] in
            let live = try connection.tokenIsLive(accessor: token.accessor)
            var leases = proposed.leases
            if !live {
                for index in leases.indices where leases[index].state == .active {
                    leases[index].state = leases[index].state.ended(revocableAtProvider: revocable.contains(leases[index].type))
                    leases[index].revokedAt = proposed.time
                }
            }
            for lease in leases { try connection.insertLease(lease) }
            for event in proposed.events { try connection.appendAudit(event, time: proposed.time) }
            return leases
        }
        minted.leases = stored
        if let failure = minted.failure {
            await settle(minted.leases, principal: principal)
            throw failure
        }
        if stored.contains(where: { $0.state != .active }) {
            await settle(stored, principal: principal)
            throw APIError(.tokenRevoked, "token revoked while its credentials were being made; they were ended")
        }
        return minted.response
    }

    /// Credentials minted for a token, not yet stored: the caller writes leases and audit
    /// records in its own transaction. With `failure`, minting stopped part-way: `leases` holds
    /// what was already made at providers, already ended (`revoking`), to be stored and then
    /// revoked (`settle`) before the failure is answered.
    struct Minted: Sendable {
        var response: CredentialsResponse
        var leases: [LeaseRecord]
        var events: [AuditEvent]
        var time: Double
        var failure: APIError?
    }

    /// Mints one credential per grant of `role` in this environment (or the `wanted` ones).
    func mint(role: Role, token: TokenRecord, principal: Principal, subject: PolicySubject, wanted: [String]?,
              aws: AWSGrantMode) async throws -> Minted {
        var grants = role.grants(in: environment)
        if let wanted {
            for name in wanted where !grants.contains(where: { $0.name == name }) {
                throw APIError(.grantMissing, "role '\(role.name)' has no grant '\(name)' in environment '\(environment)'")
            }
            grants = grants.filter { wanted.contains($0.name) }
        }
        if aws == .only {
            if let wanted, let name = wanted.first(where: { name in grants.contains { $0.name == name && $0.type.secretType != .aws } }) {
                throw APIError(.grantNotAWS, "grant '\(name)' of role '\(role.name)' is not an AWS grant")
            }
            grants = grants.filter { $0.type.secretType == .aws }
            if grants.isEmpty { throw APIError(.grantMissing, "role '\(role.name)' has no AWS grant in environment '\(environment)'") }
        }
        if wanted == nil && aws != .defer {
            // One set of AWS_* variables: the role's first AWS grant, as in the `default` profile
            // `run` writes. Others are fetched by name (credential-process --grant NAME).
            let firstAWS = grants.first { $0.type.secretType == .aws }
            grants = grants.filter { $0.type.secretType != .aws || $0.name == firstAWS?.name }
        }
        let now = WallClock.now()
        var env: [String: String] = [:]
        var setBy: [String: String] = [:]
        var plain: Set<String> = []
        var deferred: [DeferredAWSGrant] = []
        var leases: [LeaseRecord] = []
        var events: [AuditEvent] = []
        var failure: APIError?
        for grant in grants {
            do {
                if aws == .defer && grant.type.secretType == .aws {
                    // The job's SDK fetches these through credential_process when it needs them.
                    let secret = try await openChecked(grant: grant, role: role)
                    let described = AWSProvider.jobEnvironment(secret: secret)
                    deferred.append(DeferredAWSGrant(grant: grant.name, region: described["AWS_REGION"], endpointURL: described["AWS_ENDPOINT_URL_STS"]))
                    for (key, value) in described where env[key] == nil {
                        env[key] = value
                        plain.insert(key)
                    }
                    continue
                }
                let credential = try await issue(grant: grant, role: role, token: token, subject: subject, now: now)
                let lease = LeaseRecord(id: TokenFormat.identifier(), accessor: token.accessor, role: role.name, grant: grant.name,
                                        type: grant.type.rawValue, secret: grant.secret, providerID: credential.providerID,
                                        createdAt: now, expiresAt: credential.expiresAt, providerState: credential.providerState)
                leases.append(lease)
                events.append(AuditEvent(principal: principal, action: .credentialIssue, role: role.name, grant: grant.name, result: .allowed,
                                         reason: "\(grant.type.rawValue) lease \(lease.id) (\(credential.providerID))", accessor: token.accessor))
                for (key, value) in credential.env.sorted(by: { $0.key < $1.key }) {  // sorted: the same conflict named every time
                    if let other = setBy[key], other != grant.name, env[key] != value {
                        // AWS grants take no env table: the way out for them is fetching one at a time.
                        let awsInvolved = grant.type.secretType == .aws || grants.contains { $0.name == other && $0.type.secretType == .aws }
                        let way = awsInvolved ? "fetch AWS grants one at a time (mlcred credential-process --grant NAME)" : "give one an env table, or fetch them one at a time"
                        throw APIError(.variableConflict, "grants '\(other)' and '\(grant.name)' of role '\(role.name)' both set \(key): \(way)")
                    }
                    env[key] = value
                    setBy[key] = grant.name
                }
                plain.formUnion(credential.plain)
            } catch let error as APIError {
                events.append(AuditEvent(principal: principal, action: .credentialIssue, role: role.name, grant: grant.name,
                                         result: error.code == .denied ? .denied : .error, reason: error.message, accessor: token.accessor))
                failure = error
                break
            }
        }
        if failure != nil {
            // Whatever was made before the failure ends now: nothing half-issued stays behind.
            for index in leases.indices {
                let revocable = providers[GrantType(rawValue: leases[index].type) ?? .static]?.revocable ?? false
                leases[index].state = leases[index].state.ended(revocableAtProvider: revocable)
                leases[index].revokedAt = now
            }
            if leases.isEmpty {
                // Nothing to store but the refusal itself.
                let recorded = events
                try? await write { connection in
                    for event in recorded { try connection.appendAudit(event, time: now) }
                }
                events = []
            }
        }
        let response = CredentialsResponse(env: env, files: [:], leases: leases.map(Self.info),
                                           expiresAt: Timestamp.format(epochSeconds: token.expiresAt),
                                           plain: plain.sorted(), aws: aws == .defer ? deferred : nil)
        if let failure, leases.isEmpty { throw failure }
        return Minted(response: response, leases: leases, events: events, time: now, failure: failure)
    }

    /// Opens the secret a grant names, after the checks every grant type shares.
    private func openChecked(grant: Grant, role: Role) async throws -> OpenedSecret {
        if grant.type == .static && role.phi {
            throw APIError(.staticInPhi, "static grant '\(grant.name)' refused: phi roles never receive stored values as they are")
        }
        let opened: (type: String, phi: Bool, fields: [String: String])
        do {
            opened = try await vault.openSecret(name: grant.secret)
        } catch let error as APIError where error.reason == .secretMissing {
            throw APIError(.secretMissing, "grant '\(grant.name)' names secret '\(grant.secret)', which does not exist")
        }
        guard opened.type == grant.type.secretType.rawValue else {
            throw APIError(.secretTypeMismatch, "grant '\(grant.name)' (\(grant.type.rawValue)) needs a secret of type \(grant.type.secretType), but '\(grant.secret)' is of type \(opened.type)")
        }
        if opened.phi && !role.phi {
            throw APIError(.secretPhiOnly, "secret '\(grant.secret)' is labelled phi: only phi roles may use it, and '\(role.name)' is not one")
        }
        return OpenedSecret(name: grant.secret, type: opened.type, phi: opened.phi, fields: opened.fields)
    }

    private func issue(grant: Grant, role: Role, token: TokenRecord, subject: PolicySubject, now: Double) async throws -> IssuedCredential {
        guard let provider = providers[grant.type] else {
            throw APIError(.grantTypeUnavailable, "grant type \(grant.type.rawValue) is not available in this build")
        }
        let secret = try await openChecked(grant: grant, role: role)
        let context = IssuanceContext(role: role, grant: grant, subject: subject.user ?? "uid:\(subject.uid)", accessor: token.accessor,
                                      now: now, expiresAt: token.expiresAt)
        do {
            return try await provider.issue(secret: secret, context: context)
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError(.upstreamFailed, "grant '\(grant.name)': \(error)")
        }
    }

    /// The public keys of every jwt-signer secret, for JWT verifiers.
    public func jwks() async throws -> JWKSet {
        let names = try await vault.listSecrets().filter { $0.type == SecretType.jwtSigner.rawValue && $0.error == nil }.map(\.name)
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
