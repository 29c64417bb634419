import MLCredAPI
import MLCredCrypto
import MLCredProviders
import MLCredStore
import MLCredVault

/// `mlcred secret rotate NAME` (SPEC §13): the broker's own long-lived credential is replaced at
/// its provider by one no person has seen. Order matters, so that a failure never leaves the
/// vault holding a credential that does not work:
/// - aws: a new access key is made (IAM CreateAccessKey), stored as a new version, then the old
///   key is deleted (signed with the new one). If storing fails, the new key is deleted again.
/// - postgres: the login's password is changed (ALTER ROLE) and the new one stored; if storing
///   fails, the old password is put back.
extension Broker {
    /// Letters and digits of a generated PostgreSQL password.
    static let passwordLength = 40

    public func rotateSecret(name: String, principal: Principal) async throws -> SecretRotateResponse {
        guard ResourceName.isValid(name) else { throw APIError(.invalidName, "invalid secret name: \(ResourceName.requirement)") }
        guard rotationsInFlight.withLock({ $0.insert(name).inserted }) else {
            throw APIError(.vaultBusy, "secret '\(name)' is being rotated already")
        }
        defer { _ = rotationsInFlight.withLock { $0.remove(name) } }
        let opened = try await vault.openSecret(name: name)
        guard let type = SecretType(rawValue: opened.type) else { throw APIError(.secretMissing, "secret '\(name)' has an unknown type") }
        do {
            switch type {
            case .aws: return try await rotateAWS(name: name, phi: opened.phi, fields: opened.fields, principal: principal)
            case .postgres: return try await rotatePostgres(name: name, phi: opened.phi, fields: opened.fields, principal: principal)
            case .static, .jwtSigner:
                throw APIError(.invalidSecretType, "only aws and postgres secrets are rotated at their provider; put a new static value with 'secret put', or generate a new signer")
            }
        } catch let error as APIError {
            await audit(AuditEvent(principal: principal, action: .secretRotate, result: error.code == .denied ? .denied : .error,
                                   reason: "secret '\(name)': \(error.message)"))
            throw error
        }
    }

    private func rotateAWS(name: String, phi: Bool, fields: [String: String], principal: Principal) async throws -> SecretRotateResponse {
        let rotation = AWSKeyRotation()
        let made = try await rotation.createKey(fields: fields, secretName: name)
        let newID = made.fields["access_key_id"] ?? ""
        let stored: SecretMetadata
        do {
            stored = try await vault.storeRotated(name: name, type: .aws, phi: phi, fields: made.fields,
                                                  detail: "new access key \(newID) for IAM user \(made.user), replacing \(made.oldKeyID)",
                                                  principal: principal)
        } catch {
            // Nobody may hold a key the vault does not: the new one goes again.
            try? await rotation.deleteKey(newID, user: made.user, signingWith: fields)
            throw error
        }
        do {
            try await rotation.deleteKey(made.oldKeyID, user: made.user, signingWith: made.fields)
        } catch let error as APIError {
            let note = "the old access key \(made.oldKeyID) could not be deleted (\(error.message)): delete it in IAM"
            await audit(AuditEvent(principal: principal, action: .secretRotate, result: .error, reason: "secret '\(name)': \(note)"))
            return SecretRotateResponse(name: name, version: stored.version, replaced: made.oldKeyID, oldRemoved: false, note: note)
        }
        return SecretRotateResponse(name: name, version: stored.version, replaced: made.oldKeyID, oldRemoved: true, note: nil)
    }

    private func rotatePostgres(name: String, phi: Bool, fields: [String: String], principal: Principal) async throws -> SecretRotateResponse {
        let provider = PostgresProvider()
        let password = Self.generatedPassword()
        let current = OpenedSecret(name: name, type: SecretType.postgres.rawValue, phi: phi, fields: fields)
        try await provider.changePassword(secret: current, to: password)
        var updated = fields
        updated["password"] = password
        let stored: SecretMetadata
        do {
            stored = try await vault.storeRotated(name: name, type: .postgres, phi: phi, fields: updated,
                                                  detail: "new password for login \(fields["user"] ?? "?")", principal: principal)
        } catch {
            // The vault keeps the old password: the server must too.
            if let old = fields["password"] {
                try? await provider.changePassword(secret: OpenedSecret(name: name, type: SecretType.postgres.rawValue, phi: phi, fields: updated), to: old)
            }
            throw error
        }
        return SecretRotateResponse(name: name, version: stored.version, replaced: "password", oldRemoved: true, note: nil)
    }

    /// Rotates every secret whose `rotate_every` has passed since its latest version (the
    /// sweeper asks each minute). A failure is audited and tried again after `retrySeconds`.
    public func rotateDueSecrets(principal: Principal, retrySeconds: Double = 3600) async -> Int {
        let now = WallClock.now()
        guard (try? vault.hashToken("")) != nil else { return 0 }  // sealed: nothing can rotate
        // In a fleet one node rotates (each node rotating would mint one new key per node).
        guard await leadsScheduledWork() else { return 0 }
        guard let due = try? await read({ try $0.secretsDueForRotation(now: now) }) else { return 0 }
        var rotated = 0
        for name in due {
            let skip = scheduledRotationFailures.withLock { failures in (failures[name] ?? 0) > now - retrySeconds }
            if skip { continue }
            do {
                _ = try await rotateSecret(name: name, principal: principal)
                rotated += 1
                scheduledRotationFailures.withLock { $0[name] = nil }
            } catch {
                scheduledRotationFailures.withLock { $0[name] = now }
            }
        }
        return rotated
    }

    static func generatedPassword() -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)
        // Rejection sampling: 62 letters, no modulo bias.
        var out: [UInt8] = []
        while out.count < passwordLength {
            for byte in Sodium.randomBytes(64) where byte < 248 && out.count < passwordLength {
                out.append(alphabet[Int(byte) % 62])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
