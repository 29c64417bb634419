/// What an audit record records (SPEC §10): the `action` column, stable across releases, since
/// audit consumers filter on it. Records written by older releases may carry actions not listed
/// here; readers keep `AuditRecord.action` as text for that reason.
public enum AuditAction: String, Codable, Sendable, CaseIterable, CustomStringConvertible {
    case vaultInit = "vault.init"
    case vaultUnseal = "vault.unseal"
    case vaultSeal = "vault.seal"
    case vaultRekey = "vault.rekey"
    case vaultBackup = "vault.backup"
    case vaultRotate = "vault.rotate"
    case emergencyOpen = "emergency.open"
    case emergencyClose = "emergency.close"
    case emergencyList = "emergency.list"
    case secretList = "secret.list"
    case secretPut = "secret.put"
    case secretRemove = "secret.rm"
    case secretGenerate = "secret.generate"
    case tokenIssue = "token.issue"
    case tokenRenew = "token.renew"
    case tokenRevoke = "token.revoke"
    case tokenExpire = "token.expire"
    case tokenList = "token.list"
    case credentialIssue = "credential.issue"
    case leaseList = "lease.list"
    case leaseRevoke = "lease.revoke"
    case leaseExpire = "lease.expire"
    case providerRenew = "provider.renew"
    case providerRevoke = "provider.revoke"
    case policyLoad = "policy.load"
    case policyList = "policy.list"
    case policyExplain = "policy.explain"
    case policyReload = "policy.reload"
    case auditShow = "audit.show"
    case auditVerify = "audit.verify"
    case metricsRead = "metrics.read"
    case storePurge = "store.purge"

    /// The stored and wire spelling, also in messages.
    public var description: String { rawValue }

    /// What the action does, for people ("listing secrets needs an admin"): the dotted name is
    /// for audit consumers, not for error messages.
    public var activity: String {
        switch self {
        case .vaultInit: "initializing the vault"
        case .vaultUnseal: "unsealing the vault"
        case .vaultSeal: "sealing the vault"
        case .vaultRekey: "rekeying the vault"
        case .vaultBackup: "backing up the vault"
        case .vaultRotate: "rotating the vault's encryption key"
        case .emergencyOpen: "opening an emergency role"
        case .emergencyClose: "closing an emergency role"
        case .emergencyList: "listing emergency roles"
        case .secretList: "listing secrets"
        case .secretPut: "storing a secret"
        case .secretRemove: "removing a secret"
        case .secretGenerate: "generating a secret"
        case .tokenIssue: "issuing a token"
        case .tokenRenew: "renewing a token"
        case .tokenRevoke: "revoking a token"
        case .tokenExpire: "expiring a token"
        case .tokenList: "listing tokens"
        case .credentialIssue: "issuing credentials"
        case .leaseList: "listing leases"
        case .leaseRevoke: "revoking a lease"
        case .leaseExpire: "expiring a lease"
        case .providerRenew: "renewing at a provider"
        case .providerRevoke: "revoking at a provider"
        case .policyLoad: "loading policies"
        case .policyList: "listing policies"
        case .policyExplain: "explaining a policy decision"
        case .policyReload: "reloading policies"
        case .auditShow: "reading the audit log"
        case .auditVerify: "verifying the audit log"
        case .metricsRead: "reading metrics"
        case .storePurge: "purging ended records"
        }
    }
}
