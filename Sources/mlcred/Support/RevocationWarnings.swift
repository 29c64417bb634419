import MLCredAPI

/// What a revocation could not finish, said on stderr.
enum RevocationWarnings {
    static func print(unconfirmed: [LeaseInfo], stillValid: [LeaseInfo] = []) {
        for lease in unconfirmed {
            Terminal.err("mlcred: warning: lease \(lease.id) (\(lease.type) \(lease.providerID)) is not revoked at its provider yet: \(lease.lastError ?? "no answer"); the daemon retries ('mlcred lease list' shows it)\n")
        }
        for lease in stillValid {
            let what = lease.type.hasPrefix("aws-") ? "STS sessions cannot be ended early: its keys stay valid at AWS"
                : lease.type == "jwt" ? "a JWT cannot be recalled: it stays valid for verifiers"
                : "a static value cannot be revoked at its source: rotate it there"
            Terminal.err("mlcred: warning: lease \(lease.id) (\(lease.type) \(lease.providerID)): \(what) until \(lease.expiresAt)\n")
        }
    }
}
