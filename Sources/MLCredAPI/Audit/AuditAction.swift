/// What an audit record records (SPEC §10): the `action` column, stable across releases, since
/// audit consumers filter on it. Records written by older releases may carry actions not listed
/// here; readers keep `AuditRecord.action` as text for that reason.
public enum AuditAction: String, Codable, Sendable, CaseIterable, CustomStringConvertible {
    case vaultInit = "vault.init"
    case vaultUnseal = "vault.unseal"
    case vaultSeal = "vault.seal"
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
}
