import Logging
import MLCredAPI
import MLCredBroker
import MLCredPolicy
import MLCredStore
import MLCredVault

/// Maps requests to vault operations: admin checks, input decoding, error mapping, and the audit
/// of every refusal.
public final class Router: Sendable {
    let vault: Vault
    let broker: Broker
    let sweeper: Sweeper
    let names: NameDirectory
    let adminGroup: UInt32?
    /// The admin group's name, for refusals.
    let adminGroupName: String
    /// The gid of the run group (`--run-group`): the installed `mlcred` is setgid to it. Nil if
    /// it does not exist: then no phi token or credential is issued.
    let runGroup: UInt32?
    let logger: Logger
    /// This node's timeout and start, for its row in `fleet status`.
    let fleet: Sweeper.FleetMembership
    let metrics: Metrics
    let store: Store

    /// A router over `vault` and `broker`; `adminGroup` is the gid of the admin group, nil if it does not exist.
    public init(vault: Vault, broker: Broker, sweeper: Sweeper, store: Store, names: NameDirectory, adminGroup: UInt32?,
                adminGroupName: String = "mlcred-admin", runGroup: UInt32? = nil, metrics: Metrics, logger: Logger,
                fleet: Sweeper.FleetMembership = .init(timeout: 60, startedAt: WallClock.now())) {
        self.fleet = fleet
        self.adminGroupName = adminGroupName
        self.runGroup = runGroup
        self.vault = vault
        self.broker = broker
        self.sweeper = sweeper
        self.store = store
        self.names = names
        self.adminGroup = adminGroup
        self.metrics = metrics
        self.logger = logger
    }

    /// The answer to a request no route matches (counted, not audited: nothing was asked of the vault).
    func unmatched(_ request: HTTPRequest) -> HTTPResponse {
        metrics.record(route: nil, status: APIErrorReason.unknownRoute.code.httpStatus)
        return .error(APIError(.unknownRoute, "no route \(request.method) \(request.path)"))
    }

    /// Answers one request for `route`. Never throws: every failure becomes an error answer.
    func handle(_ request: HTTPRequest, route: Route, parameter: String?, peer: PeerIdentity) async -> HTTPResponse {
        let response: HTTPResponse
        do {
            // Names in the path (secrets, accessors, lease ids) follow their grammar before
            // anything, a refusal's audit record included, sees them.
            if let parameter, !ResourceName.isValid(parameter) {
                throw APIError(.invalidName, "invalid name in the path: \(ResourceName.requirement)")
            }
            if let action = route.adminAction { try await requireAdmin(peer, action: action) }
            if let problem = request.queryProblem { throw APIError(.invalidQuery, problem) }
            response = try await dispatch(route, parameter: parameter ?? "", request, peer: peer)
        } catch let error as APIError {
            response = .error(error)
        } catch let error as StoreError {
            response = .error(StoreError.apiError(for: error))
        } catch {
            logger.error("internal error", metadata: ["path": "\(request.path)", "error": "\(error)"])
            response = .error(.internal, "internal error; see the daemon log")
        }
        metrics.record(route: route, status: response.status)
        // Debug level: an info line per request cost more than the request's own work under load.
        logger.debug("request", metadata: [
            "method": "\(request.method)", "path": "\(request.path)", "status": "\(response.status)",
            "uid": "\(peer.principal.uid)", "pid": "\(peer.principal.pid)",
        ])
        return response
    }

    /// Runs the handler of `route`; admin routes were checked by `handle` already.
    private func dispatch(_ route: Route, parameter: String, _ request: HTTPRequest, peer: PeerIdentity) async throws -> HTTPResponse {
        switch route {
        case .status:
            return try await status()
        case .whoami:
            return await whoami(peer)
        case .vaultInit:
            return try await vaultInit(request, peer)
        case .vaultUnseal:
            return try await vaultUnseal(request, peer)
        case .vaultSeal:
            return try await vaultSeal(peer)
        case .vaultRekey:
            return try await vaultRekey(request, peer)
        case .vaultBackup:
            return try await vaultBackup(peer)
        case .secretRotate:
            return .json(try await broker.rotateSecret(name: parameter, principal: peer.principal))
        case .vaultRotate:
            return .json(try await vault.rotate(principal: peer.principal))
        case .secretList:
            return .json(SecretListResponse(secrets: try await vault.listSecrets()))
        case .secretPut:
            return try await secretPut(name: parameter, request, peer)
        case .secretRemove:
            // Threat: removing the broker login strands roles made from it, alive until VALID UNTIL.
            let dependent = try await broker.leasesNeedingSecret(parameter)
            if !dependent.isEmpty && request.query["force"] != "true" {
                throw APIError(.secretInUse, "secret '\(parameter)' is needed to revoke \(dependent.count) live lease\(dependent.count == 1 ? "" : "s") (\(dependent.prefix(5).map(\.id).joined(separator: ", "))): revoke them first, or remove it anyway with force")
            }
            try await vault.removeSecret(name: parameter, principal: peer.principal)
            return .json(["removed": parameter])
        case .secretGenerate:
            return try await secretGenerate(name: parameter, request, peer)
        case .auditShow:
            return try await auditShow(request, peer)
        case .auditVerify:
            return .json(try await vault.verifyAudit())
        case .tokenIssue:
            let started = WallClock.now()
            let answer = try await issueToken(request, peer)
            metrics.observe(.token, seconds: WallClock.now() - started)
            return answer
        case .tokenRenew:
            let body = request.body.isEmpty ? RenewRequest(ttl: nil) : try decode(RenewRequest.self, request)
            return .json(try await broker.renew(authorization: request.authorization, principal: peer.principal, request: body))
        case .tokenRevokeSelf:
            let outcome = try await broker.revoke(authorization: request.authorization, principal: peer.principal)
            return .json(RevocationResponse(revoked: true, unconfirmed: outcome.unconfirmed, stillValid: outcome.stillValid))
        case .tokenList:
            return .json(try await broker.listTokens(page: ListPage(query: request.query)))
        case .tokenRevokeByAccessor:
            let outcome = try await broker.revoke(accessor: parameter, principal: peer.principal, reason: "revoked by an admin")
            guard outcome.revoked else {
                throw APIError(.accessorMissing, "no live token with accessor '\(parameter)'")
            }
            return .json(RevocationResponse(revoked: parameter, unconfirmed: outcome.unconfirmed, stillValid: outcome.stillValid))
        case .credentials:
            let started = WallClock.now()
            let body = request.body.isEmpty ? CredentialsRequest(grants: nil) : try decode(CredentialsRequest.self, request)
            let answer = try await broker.fetchCredentials(authorization: request.authorization, principal: peer.principal,
                                                           subject: subject(peer), request: body,
                                                           fromRun: { PeerAttestation.isRunClient(peer) })
            metrics.observe(.credentials, seconds: WallClock.now() - started)
            return .json(answer)
        case .metrics:
            let now = WallClock.now()
            let counts = try await store.read { try $0.liveCounts(now: now) }
            let state = await vault.status
            return HTTPResponse(status: 200, body: Array(metrics.render(tokens: counts.tokens, leases: counts.leases, revocationsPending: counts.revocationsPending,
                                                                       initialized: state.initialized, sealed: state.sealed,
                                                                       commits: store.commitStatistics).utf8),
                                contentType: "text/plain; version=0.0.4")
        case .fleetStatus:
            return .json(try await broker.fleetStatus(principal: peer.principal, startedAt: fleet.startedAt, timeout: fleet.timeout))
        case .fleetForget:
            return .json(try await broker.forgetNode(parameter, principal: peer.principal))
        case .leaseList:
            guard let scope = LeaseListScope(query: request.query) else {
                throw APIError(.invalidQuery, "'all' and 'ended' take true or false")
            }
            return .json(try await broker.listLeases(scope: scope, page: ListPage(query: request.query)))
        case .leaseRevoke:
            let outcome = try await broker.revokeLease(id: parameter, principal: peer.principal)
            return .json(RevocationResponse(revoked: parameter, unconfirmed: outcome.unconfirmed, stillValid: outcome.stillValid))
        case .jwks:
            return .json(try await broker.jwks())
        case .policyList:
            return .json(broker.policies.summary())
        case .policyExplain:
            return try await explain(request)
        case .policyReload:
            return try await reloadPolicies(principal: peer.principal)
        case .emergencyOpen:
            return .json(try await broker.openEmergency(try decode(EmergencyOpenRequest.self, request), principal: peer.principal))
        case .emergencyClose:
            let body = try decode(EmergencyCloseRequest.self, request)
            let revoked = try await broker.closeEmergency(role: body.role, principal: peer.principal)
            return .json(EmergencyCloseResponse(role: body.role, revokedTokens: revoked))
        case .emergencyList:
            return .json(EmergencyListResponse(emergencies: try await broker.listEmergencies()))
        }
    }

    // MARK: checks

    /// Refuses non-admins with 403 `not_admin`, writing the refusal to the audit first.
    func requireAdmin(_ peer: PeerIdentity, action: AuditAction) async throws {
        guard !peer.isAdmin(adminGroup: adminGroup) else { return }
        do {
            try await vault.audit(AuditEvent(principal: peer.principal, action: action, result: .denied, reason: "not an admin"))
        } catch {
            logger.error("could not audit a refusal", metadata: ["action": "\(action)", "error": "\(error)"])
        }
        throw APIError(.notAdmin, "\(action.activity) needs an admin (a member of \(adminGroupName), root, or the daemon's user)")
    }

    func decode<T: Decodable>(_ type: T.Type, _ request: HTTPRequest) throws -> T {
        guard !request.body.isEmpty else { throw APIError(.bodyMissing, "this route needs a JSON body") }
        do {
            // JSONParser first: Foundation's decoder would hash every key as a String, escapes
            // decoded, before any check (StreamSafeText's threat).
            _ = try JSONParser.parse(request.body)
        } catch {
            throw APIError(.invalidBody, "invalid request body: \(error.description)")
        }
        do {
            return try APIJSON.decode(type, from: request.body)
        } catch let error as DecodingError {
            throw APIError(.invalidBody, "invalid request body: \(Self.describe(error))")
        } catch {
            throw APIError(.invalidBody, "invalid request body: not JSON")
        }
    }

    /// Describes a decoding error by field path only, never quoting the input (it may hold a secret).
    static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [CodingKey]) -> String {
            codingPath.isEmpty ? "the body" : "field '" + codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".") + "'"
        }
        switch error {
        case .keyNotFound(let key, let context): return "missing \(path(context.codingPath + [key]))"
        case .typeMismatch(_, let context): return "\(path(context.codingPath)) has the wrong type"
        case .valueNotFound(_, let context): return "\(path(context.codingPath)) is null"
        case .dataCorrupted(let context): return context.codingPath.isEmpty ? "not valid JSON" : "\(path(context.codingPath)) is invalid"
        @unknown default: return "not valid JSON"
        }
    }
}
