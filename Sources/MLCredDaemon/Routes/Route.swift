import MLCredAPI

/// Every route of the API (SPEC §9), in one table: its method and path template, whether it
/// is admin-only (and the audit action a refusal is recorded under), whether its handler runs
/// on the connection's event loop, and its metrics label. `Router` dispatches on it with an
/// exhaustive switch, so a route cannot exist without a handler, nor a handler without a row.
enum Route: Int, CaseIterable, Sendable {
    case status
    case whoami
    case vaultInit
    case vaultUnseal
    case vaultSeal
    case vaultRekey
    case vaultBackup
    case vaultRotate
    case secretList
    case secretPut
    case secretRemove
    case secretGenerate
    case secretRotate
    case tokenIssue
    case tokenRenew
    case tokenRevokeSelf
    case tokenList
    case tokenRevokeByAccessor
    case credentials
    case leaseList
    case leaseRevoke
    case jwks
    case policyList
    case policyExplain
    case policyReload
    case auditShow
    case auditVerify
    case metrics
    case emergencyOpen
    case emergencyClose
    case emergencyList
    case fleetStatus
    case fleetForget

    /// The HTTP method.
    var method: String {
        switch self {
        case .status, .whoami, .secretList, .tokenList, .leaseList, .jwks, .policyList, .auditShow, .metrics, .emergencyList, .fleetStatus: "GET"
        case .secretPut: "PUT"
        case .secretRemove, .fleetForget: "DELETE"
        default: "POST"
        }
    }

    /// The path template; `{…}` is the one path parameter a route may have.
    var template: String {
        switch self {
        case .status: "/v1/status"
        case .whoami: "/v1/whoami"
        case .vaultInit: "/v1/vault/init"
        case .vaultUnseal: "/v1/vault/unseal"
        case .vaultSeal: "/v1/vault/seal"
        case .vaultRekey: "/v1/vault/rekey"
        case .vaultBackup: "/v1/vault/backup"
        case .vaultRotate: "/v1/vault/rotate"
        case .secretList: "/v1/secrets"
        case .secretPut, .secretRemove: "/v1/secrets/{name}"
        case .secretGenerate: "/v1/secrets/{name}/generate"
        case .secretRotate: "/v1/secrets/{name}/rotate"
        case .tokenIssue, .tokenList: "/v1/tokens"
        case .tokenRenew: "/v1/tokens/renew"
        case .tokenRevokeSelf: "/v1/tokens/revoke"
        case .tokenRevokeByAccessor: "/v1/tokens/{accessor}/revoke"
        case .credentials: "/v1/credentials"
        case .leaseList: "/v1/leases"
        case .leaseRevoke: "/v1/leases/{id}/revoke"
        case .jwks: "/v1/jwks"
        case .policyList: "/v1/policies"
        case .policyExplain: "/v1/policies/explain"
        case .policyReload: "/v1/policies/reload"
        case .auditShow: "/v1/audit"
        case .auditVerify: "/v1/audit/verify"
        case .metrics: "/v1/metrics"
        case .emergencyOpen: "/v1/emergency/open"
        case .emergencyClose: "/v1/emergency/close"
        case .emergencyList: "/v1/emergency"
        case .fleetStatus: "/v1/fleet"
        case .fleetForget: "/v1/fleet/nodes/{name}"
        }
    }

    /// The audit action of an admin-only route (its refusal is recorded under it); nil for
    /// routes any caller, or a token holder, may use.
    var adminAction: AuditAction? {
        switch self {
        case .status, .whoami, .tokenIssue, .tokenRenew, .tokenRevokeSelf, .credentials, .jwks: nil
        case .vaultInit: .vaultInit
        case .vaultUnseal: .vaultUnseal
        case .vaultSeal: .vaultSeal
        case .vaultRekey: .vaultRekey
        case .vaultBackup: .vaultBackup
        case .vaultRotate: .vaultRotate
        case .secretList: .secretList
        case .secretPut: .secretPut
        case .secretRemove: .secretRemove
        case .secretGenerate: .secretGenerate
        case .secretRotate: .secretRotate
        case .tokenList: .tokenList
        case .tokenRevokeByAccessor: .tokenRevoke
        case .leaseList: .leaseList
        case .leaseRevoke: .leaseRevoke
        case .policyList: .policyList
        case .policyExplain: .policyExplain
        case .policyReload: .policyReload
        case .auditShow: .auditShow
        case .auditVerify: .auditVerify
        case .metrics: .metricsRead
        case .emergencyOpen: .emergencyOpen
        case .emergencyClose: .emergencyClose
        case .emergencyList: .emergencyList
        case .fleetStatus: .fleetStatus
        case .fleetForget: .fleetForget
        }
    }

    /// Whether the handler runs on the connection's event loop (see `EventLoopTaskExecutor`):
    /// the hot, non-blocking routes. The rest may run Argon2id (vault), scans (lists, audit),
    /// policy file reads or name-service look-ups (whoami), which must never hold an event loop.
    var runsOnEventLoop: Bool {
        switch self {
        case .status, .tokenIssue, .tokenRenew, .tokenRevokeSelf, .credentials: true
        default: false
        }
    }

    /// The metrics label: the template, so labels stay bounded whatever paths callers send.
    var label: String { template }

    private static let table: [(route: Route, method: String, segments: [Substring])] = allCases.map {
        ($0, $0.method, $0.template.split(separator: "/"))
    }

    /// The route `method path` names and its path parameter, or nil when no route matches.
    static func match(method: String, path: String) -> (route: Route, parameter: String?)? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        // "/v1/x/" and "//v1" have empty segments: no template has one.
        guard !segments.contains(where: \.isEmpty) else { return nil }
        candidates: for entry in table where entry.method == method && entry.segments.count == segments.count {
            var parameter: String?
            for (expected, actual) in zip(entry.segments, segments) {
                if expected.first == "{" {
                    parameter = String(actual)
                } else if expected != actual {
                    continue candidates
                }
            }
            return (entry.route, parameter)
        }
        return nil
    }
}
