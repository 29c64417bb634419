import MLCredAPI
import MLCredBroker
import MLCredPolicy
import MLCredStore
import MLCredVault

extension Router {
    /// The caller as policies see it: kernel uid, gid and groups, with names.
    func subject(_ peer: PeerIdentity) -> PolicySubject {
        let principal = peer.principal
        var gids = principal.groups
        if !gids.contains(principal.gid) { gids.insert(principal.gid, at: 0) }
        return PolicySubject(uid: principal.uid, user: principal.user, gid: principal.gid,
                             groups: gids.map { ($0, names.groupName(gid: $0)) }, unit: principal.unit)
    }

    func issueToken(_ request: HTTPRequest, _ peer: PeerIdentity) async throws -> HTTPResponse {
        let body = try decode(TokenRequest.self, request)
        var startTime: UInt64?
        switch body.bind ?? .unbound {
        case .unbound:
            break
        case .process:
            // Bound to the process on the other end of this connection, as the kernel names it.
            guard let start = PeerAttestation.boundStartTime(of: peer) else {
                throw APIError(.bindUnavailable, "cannot bind the token to the calling process (it exited, or this kernel lacks SO_PEERPIDFD)")
            }
            startTime = start
        }
        let answer = try await broker.issueToken(principal: peer.principal, subject: subject(peer), request: body, boundStartTime: startTime,
                                                 fromRun: { PeerAttestation.isRunClient(peer) })
        if startTime != nil, let process = ProcessWatcher(peer: peer) {
            sweeper.watch(accessor: answer.accessor, process: process)
        }
        return .json(answer)
    }

    func reloadPolicies(principal: Principal) async throws -> HTTPResponse {
        do {
            let set = try broker.policies.reload(now: WallClock.now())
            try? await vault.audit(AuditEvent(principal: principal, action: .policyReload, result: .allowed,
                                              reason: "loaded \(Plural.count(set.roles.count, "role")), digest \(set.digest)"))
            logger.notice("policies reloaded", metadata: ["roles": "\(set.roles.count)", "digest": "\(set.digest)"])
            return .json(broker.policies.summary())
        } catch let error as PolicyLoadError {
            let count = error.diagnostics.count
            try? await vault.audit(AuditEvent(principal: principal, action: .policyReload, result: .error,
                                              reason: "\(Plural.count(count, "error")); kept digest \(broker.policies.set.digest)"))
            for diagnostic in error.diagnostics { logger.error("policy: \(diagnostic)") }
            throw APIError(.policyInvalid, "policy reload failed with \(count) error\(count == 1 ? "" : "s"); the last good set stays in force",
                             details: error.diagnostics.map(\.description))
        }
    }
}

extension Router {
    /// `POST /v1/policies/explain`: the loaded set's decision for a simulated caller.
    func explain(_ request: HTTPRequest) async throws -> HTTPResponse {
        let body = try decode(ExplainRequest.self, request)
        // The answer quotes these names: they follow their grammar, bounded, as everywhere else.
        guard Names.isValidRoleName(body.role) else { throw APIError(.invalidName, "invalid role name: \(Names.roleNameRequirement)") }
        guard body.user != nil || body.uid != nil else { throw APIError(.invalidBody, "invalid request body: give 'user' or 'uid'") }
        let texts = [body.user, body.environment].compactMap { $0 } + (body.groups ?? [])
        guard (body.groups ?? []).count <= 64, texts.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 256 && !$0.containsControlCharacters }) else {
            throw APIError(.invalidBody, "invalid request body: 'user', 'groups' (at most 64) and 'environment' are names of 1-256 characters without control characters")
        }
        let unknown = UInt32.max - 1
        let subject = PolicySubject(uid: body.uid ?? unknown, user: body.user, gid: unknown,
                                    groups: (body.groups ?? []).map { (unknown, $0) }, unit: nil)
        let set = broker.policies.set
        let environment = body.environment ?? vault.settings.environment
        let decision = PolicyEvaluator.decide(role: body.role, in: set, subject: subject, environment: environment,
                                              phiDaemon: body.phi ?? vault.settings.phi)
        var allowed = decision.allowed
        var reasons = decision.reasons
        if allowed, set.roles[body.role]?.emergency == true {
            // The daemon's own view: a closed emergency role is refused whatever its policy says.
            let emergency = try await broker.emergencyExplanation(role: body.role)
            allowed = emergency.allowed
            reasons.append(emergency.reason)
        }
        let grants = allowed ? GrantExplanation.lines(role: body.role, in: set, environment: environment) : []
        return .json(ExplainResponse(allowed: allowed, reasons: reasons + grants))
    }
}
