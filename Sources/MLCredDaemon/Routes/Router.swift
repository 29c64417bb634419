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
    let logger: Logger
    let metrics: Metrics
    let store: Store

    /// A router over `vault` and `broker`; `adminGroup` is the gid of the admin group, nil if it does not exist.
    public init(vault: Vault, broker: Broker, sweeper: Sweeper, store: Store, names: NameDirectory, adminGroup: UInt32?,
                metrics: Metrics, logger: Logger) {
        self.vault = vault
        self.broker = broker
        self.sweeper = sweeper
        self.store = store
        self.names = names
        self.adminGroup = adminGroup
        self.metrics = metrics
        self.logger = logger
    }

    /// Answers one request. Never throws: every failure becomes an error answer.
    public func handle(_ request: HTTPRequest, peer: PeerIdentity) async -> HTTPResponse {
        let response: HTTPResponse
        do {
            response = try await route(request, peer: peer)
        } catch let error as APIError {
            response = .error(error)
        } catch {
            logger.error("internal error", metadata: ["path": "\(request.path)", "error": "\(error)"])
            response = .error(.internal, "internal error; see the daemon log")
        }
        metrics.record(method: request.method, route: Metrics.routeLabel(request.path), status: response.status)
        logger.info("request", metadata: [
            "method": "\(request.method)", "path": "\(request.path)", "status": "\(response.status)",
            "uid": "\(peer.principal.uid)", "pid": "\(peer.principal.pid)",
        ])
        return response
    }

    private func route(_ request: HTTPRequest, peer: PeerIdentity) async throws -> HTTPResponse {
        let parts = request.path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        guard parts.first == "v1" else { throw APIError(.unknownRoute, "no route \(request.method) \(request.path)") }
        let tail = Array(parts.dropFirst())
        switch (request.method, tail.first, tail.count) {
        case ("GET", "status", 1):
            return try await status()
        case ("GET", "whoami", 1):
            return await whoami(peer)
        case ("POST", "vault", 2):
            switch tail[1] {
            case "init": return try await vaultInit(request, peer)
            case "unseal": return try await vaultUnseal(request, peer)
            case "seal": return try await vaultSeal(peer)
            default: break
            }
        case ("GET", "secrets", 1):
            try await requireAdmin(peer, action: "secret.list")
            return .json(SecretListResponse(secrets: try await vault.listSecrets()))
        case ("PUT", "secrets", 2):
            return try await secretPut(name: tail[1], request, peer)
        case ("DELETE", "secrets", 2):
            try await requireAdmin(peer, action: "secret.rm")
            // Threat: removing the broker login strands roles made from it, alive until VALID UNTIL.
            let dependent = try await broker.leasesNeedingSecret(tail[1])
            if !dependent.isEmpty && request.query["force"] != "true" {
                throw APIError(.secretInUse, "secret '\(tail[1])' is needed to revoke \(dependent.count) live lease\(dependent.count == 1 ? "" : "s") (\(dependent.prefix(5).map(\.id).joined(separator: ", "))): revoke them first, or remove it anyway with force")
            }
            try await vault.removeSecret(name: tail[1], principal: peer.principal)
            return .json(["removed": tail[1]])
        case ("POST", "secrets", 3) where tail[2] == "generate":
            return try await secretGenerate(name: tail[1], request, peer)
        case ("GET", "audit", 1):
            return try await auditShow(request, peer)
        case ("POST", "audit", 2) where tail[1] == "verify":
            try await requireAdmin(peer, action: "audit.verify")
            return .json(try await vault.verifyAudit())
        case ("POST", "tokens", 1):
            let started = WallClock.now()
            let answer = try await issueToken(request, peer)
            metrics.observe(operation: "token", seconds: WallClock.now() - started)
            return answer
        case ("POST", "tokens", 2) where tail[1] == "renew":
            let body = request.body.isEmpty ? RenewRequest(ttl: nil) : try decode(RenewRequest.self, request)
            return .json(try await broker.renew(authorization: request.authorization, principal: peer.principal, request: body))
        case ("POST", "tokens", 2) where tail[1] == "revoke":
            let outcome = try await broker.revoke(authorization: request.authorization, principal: peer.principal)
            return .json(RevocationResponse(revoked: true, unconfirmed: outcome.unconfirmed, stillValid: outcome.stillValid))
        case ("GET", "tokens", 1):
            try await requireAdmin(peer, action: "token.list")
            return .json(TokenListResponse(tokens: try await broker.listTokens()))
        case ("POST", "tokens", 3) where tail[2] == "revoke":
            try await requireAdmin(peer, action: "token.revoke")
            let outcome = try await broker.revoke(accessor: tail[1], principal: peer.principal, reason: "revoked by an admin")
            guard outcome.revoked else {
                throw APIError(.accessorMissing, "no live token with accessor '\(tail[1])'")
            }
            return .json(RevocationResponse(revoked: tail[1], unconfirmed: outcome.unconfirmed, stillValid: outcome.stillValid))
        case ("POST", "credentials", 1):
            let started = WallClock.now()
            let body = request.body.isEmpty ? CredentialsRequest(grants: nil) : try decode(CredentialsRequest.self, request)
            let answer = try await broker.fetchCredentials(authorization: request.authorization, principal: peer.principal,
                                                           subject: subject(peer), request: body)
            metrics.observe(operation: "credentials", seconds: WallClock.now() - started)
            return .json(answer)
        case ("GET", "metrics", 1):
            try await requireAdmin(peer, action: "metrics.read")
            let now = WallClock.now()
            let counts = try await store.read { try $0.liveCounts(now: now) }
            let state = await vault.status
            return HTTPResponse(status: 200, body: Array(metrics.render(tokens: counts.tokens, leases: counts.leases, revocationsPending: counts.revocationsPending,
                                                                       initialized: state.initialized, sealed: state.sealed).utf8),
                                contentType: "text/plain; version=0.0.4")
        case ("GET", "leases", 1):
            try await requireAdmin(peer, action: "lease.list")
            return .json(LeaseListResponse(leases: try await broker.listLeases(all: request.query["all"] == "true")))
        case ("POST", "leases", 3) where tail[2] == "revoke":
            try await requireAdmin(peer, action: "lease.revoke")
            let outcome = try await broker.revokeLease(id: tail[1], principal: peer.principal)
            return .json(RevocationResponse(revoked: tail[1], unconfirmed: outcome.unconfirmed, stillValid: outcome.stillValid))
        case ("GET", "jwks", 1):
            return .json(try await broker.jwks())
        case ("GET", "policies", 1):
            try await requireAdmin(peer, action: "policy.list")
            return .json(broker.policies.summary())
        case ("POST", "policies", 2) where tail[1] == "explain":
            try await requireAdmin(peer, action: "policy.explain")
            return try explain(request)
        case ("POST", "policies", 2) where tail[1] == "reload":
            try await requireAdmin(peer, action: "policy.reload")
            return try await reloadPolicies(principal: peer.principal)
        default:
            break
        }
        throw APIError(.unknownRoute, "no route \(request.method) \(request.path)")
    }

    // MARK: checks

    /// Refuses non-admins with 403 `not_admin`, writing the refusal to the audit first.
    func requireAdmin(_ peer: PeerIdentity, action: String) async throws {
        guard !peer.isAdmin(adminGroup: adminGroup) else { return }
        do {
            try await vault.audit(AuditEvent(principal: peer.principal, action: action, result: .denied, reason: "not an admin"))
        } catch {
            logger.error("could not audit a refusal", metadata: ["action": "\(action)", "error": "\(error)"])
        }
        throw APIError(.notAdmin, "\(action) needs an admin: uid 0, the daemon's uid, or a member of the admin group")
    }

    func decode<T: Decodable>(_ type: T.Type, _ request: HTTPRequest) throws -> T {
        guard !request.body.isEmpty else { throw APIError(.bodyMissing, "this route needs a JSON body") }
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
