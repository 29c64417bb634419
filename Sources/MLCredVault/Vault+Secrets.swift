#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import MLCredAPI
import MLCredCrypto
import MLCredStore

extension Vault {
    /// Associated data of a secret record: a ciphertext opens only under the name, type,
    /// version and phi label it was written with.
    static func secretAssociatedData(name: String, type: String, version: Int, phi: Bool) -> [UInt8] {
        Array("mlcred-secret-v1\u{0}\(name)\u{0}\(type)\u{0}\(version)\u{0}\(phi ? 1 : 0)".utf8)
    }

    /// Stores a new version of a secret. The value never leaves the vault again.
    /// `rotateEvery`: the schedule in seconds (`rotate_every`, parsed by the caller), aws and postgres only.
    public func putSecret(name: String, request: SecretPutRequest, rotateEvery: Int? = nil, principal: Principal) async throws -> SecretMetadata {
        let keys = try unsealedKeys()
        try SecretSchema.validateName(name)
        let type = try SecretSchema.parseType(request.type, forPut: true)
        let fields = try SecretSchema.normalize(request.fields, type: type)
        if rotateEvery != nil && type != .aws && type != .postgres {
            throw APIError(.invalidSecretFields, "rotate_every applies to aws and postgres secrets only")
        }
        return try await storeSecret(name: name, type: type, phi: request.phi ?? false, fields: fields, ring: keys.ring, rotateEvery: rotateEvery,
                                     action: .secretPut, principal: principal)
    }

    /// Creates a secret inside the vault: for `jwt-signer`, a fresh Ed25519 key pair.
    public func generateSecret(name: String, request: SecretGenerateRequest, principal: Principal) async throws -> SecretMetadata {
        let keys = try unsealedKeys()
        try SecretSchema.validateName(name)
        let type = try SecretSchema.parseType(request.type, forPut: false)
        guard type == .jwtSigner else {
            throw APIError(.invalidSecretType, "only jwt-signer secrets can be generated; store \(type.rawValue) secrets with 'secret put'")
        }
        let issuer = request.issuer ?? "mlcred"
        // It goes into every JWT's `iss` and verifiers' configuration: printable text only.
        guard !issuer.isEmpty, issuer.utf8.count <= 256, !issuer.containsControlCharacters else {
            throw APIError(.invalidSecretFields, "the issuer must be 1-256 bytes without control characters")
        }
        let pair = try Ed25519.generateKeyPair()
        defer { pair.secretKey.wipe() }
        let privateKey = try pair.secretKey.withUnsafeBytes { Base64.encode(Array($0.bindMemory(to: UInt8.self))) }
        let kid = Hex.encode(MAC.hash(pair.publicKey, length: 16))
        let fields = [
            "algorithm": "EdDSA", "issuer": issuer, "kid": kid,
            "public_key": Base64.encodeURL(pair.publicKey), "private_key": privateKey,
        ]
        return try await storeSecret(name: name, type: .jwtSigner, phi: request.phi ?? false, fields: fields, ring: keys.ring,
                                     action: .secretGenerate, principal: principal)
    }

    /// Stores a new version of `name` made by the broker itself (`secret rotate`): audited as
    /// `secret.rotate` with `detail` (what changed at the provider, never a value).
    public func storeRotated(name: String, type: SecretType, phi: Bool, fields: [String: String], detail: String,
                             principal: Principal) async throws -> SecretMetadata {
        let keys = try unsealedKeys()
        return try await storeSecret(name: name, type: type, phi: phi, fields: fields, ring: keys.ring, keepRotateEvery: true,
                                     action: .secretRotate, principal: principal, detail: detail)
    }

    private func storeSecret(name: String, type: SecretType, phi: Bool, fields: [String: String], ring: SecretKeyRing,
                             rotateEvery: Int? = nil, keepRotateEvery: Bool = false,
                             action: AuditAction, principal: Principal, detail: String? = nil) async throws -> SecretMetadata {
        let (generation, key) = ring.current
        try store.reserve.check(refusing: "new secrets")
        var plaintext = try APIJSON.encode(fields)
        defer { Sodium.wipe(&plaintext) }
        let sealedPlaintext = plaintext
        do {
            return try await store.write { connection in
                let now = WallClock.now()
                let current = try connection.currentSecret(name)
                if let current, current.type != type.rawValue {
                    // Threat: one mistyped `secret put` replacing a signing key (its kid gone from
                    // the JWKS, every jwt grant on it failing) with a static value.
                    throw APIError(.secretTypeMismatch, "secret '\(name)' is of type \(current.type): a new version keeps its type; to store a \(type.rawValue) secret under this name, remove it first ('mlcred secret rm \(name)')")
                }
                let version = try connection.latestSecretVersion(name) + 1
                let schedule = keepRotateEvery ? current?.rotateEvery : rotateEvery
                let sealed = try AEAD.seal(sealedPlaintext, key: key, associatedData: Vault.secretAssociatedData(
                    name: name, type: type.rawValue, version: version, phi: phi))
                try connection.insertSecret(SecretRecord(name: name, version: version, type: type.rawValue, phi: phi, sealed: sealed,
                                                         createdAt: now, removedAt: nil, generation: generation, rotateEvery: schedule))
                try connection.appendAudit(AuditEvent(
                    principal: principal, action: action, result: .allowed,
                    reason: "secret '\(name)' version \(version) (\(type.rawValue)\(phi ? ", phi" : ""))" + (detail.map { "; \($0)" } ?? "")), time: now)
                return SecretMetadata(name: name, type: type.rawValue, version: version, phi: phi,
                                      createdAt: Timestamp.format(epochSeconds: now), updatedAt: Timestamp.format(epochSeconds: now),
                                      generation: generation, rotateEverySeconds: schedule)
            }
        } catch {
            throw translate(error)
        }
    }

    /// Metadata of every current secret. Each record is also test-opened, so an altered one is
    /// reported by name instead of surfacing later as a failed credential.
    public func listSecrets() async throws -> [SecretMetadata] {
        let ring = try unsealedKeys().ring
        let rows: [(record: SecretRecord, firstCreatedAt: Double)]
        do {
            rows = try await store.read { try $0.currentSecrets() }
        } catch {
            throw translate(error)
        }
        return try rows.map { row in
            let record = row.record
            var error: String?
            do {
                var plaintext = try Self.open(record, ring: ring)
                Sodium.wipe(&plaintext)
            } catch let failure as APIError where failure.reason == .secretCorrupt {
                error = failure.message
            }
            return SecretMetadata(name: record.name, type: record.type, version: record.version, phi: record.phi,
                                  createdAt: Timestamp.format(epochSeconds: row.firstCreatedAt),
                                  updatedAt: Timestamp.format(epochSeconds: record.createdAt), error: error, generation: record.generation,
                                  rotateEverySeconds: record.rotateEvery)
        }
    }

    /// Destroys every version of a secret (ciphertexts deleted; the version counter is kept).
    public func removeSecret(name: String, principal: Principal) async throws {
        _ = try unsealedKeys()
        try SecretSchema.validateName(name)
        let removed: Bool
        do {
            removed = try await store.write { connection in
                let now = WallClock.now()
                guard try connection.removeSecret(name, at: now) else { return false }
                try connection.appendAudit(AuditEvent(principal: principal, action: .secretRemove, result: .allowed,
                                                      reason: "secret '\(name)' removed"), time: now)
                return true
            }
        } catch {
            throw translate(error)
        }
        guard removed else { throw APIError.secretMissing(name) }
    }

    /// The current value of a secret as fields, for providers inside the daemon. Throws
    /// `secret_missing`, or `secret_corrupt` naming the secret when its record fails to decrypt.
    public nonisolated func openSecret(name: String) async throws -> (type: String, phi: Bool, fields: [String: String]) {
        let ring = try hotKeys().ring
        guard let record = try await store.pointRead({ try $0.currentSecret(name) }) else {
            throw APIError.secretMissing(name)
        }
        if ring.key(generation: record.generation) == nil, store.isShared {
            // Another node of the fleet ran `vault rotate`: its new generation is in the store.
            try await reloadDataKeys()
        }
        var plaintext = try Self.open(record, ring: ring)
        defer { Sodium.wipe(&plaintext) }
        // Read without Foundation's decoder: this runs on every credential fetch.
        guard let fields = Self.stringFields(plaintext) else {
            throw APIError.corrupt(record.name, version: record.version)
        }
        return (record.type, record.phi, fields)
    }

    static func open(_ record: SecretRecord, ring: SecretKeyRing) throws -> [UInt8] {
        guard let sealed = record.sealed else { throw APIError.secretMissing(record.name) }
        guard let key = ring.key(generation: record.generation) else {
            // A record claiming a generation this vault never made: edited, or from another vault.
            throw APIError.corrupt(record.name, version: record.version)
        }
        do {
            return try AEAD.open(sealed, key: key, associatedData: Vault.secretAssociatedData(
                name: record.name, type: record.type, version: record.version, phi: record.phi))
        } catch CryptoError.keyWiped {
            throw APIError.sealed
        } catch {
            throw APIError.corrupt(record.name, version: record.version)
        }
    }

    /// Audit records (no key needed: they hold nothing secret).
    public func auditRecords(node: String? = nil, afterNode: String? = nil, afterSeq: Int64?, since: Double?,
                             limit: Int) async throws -> [AuditRecord] {
        do {
            return try await store.read {
                try $0.auditRecords(node: node, afterNode: afterNode, afterSeq: afterSeq, since: since, limit: limit)
            }
        } catch {
            throw translate(error)
        }
    }
}

extension Vault {
    /// A stored secret's fields: a JSON object of strings, or nil if it is not one.
    static func stringFields(_ plaintext: [UInt8]) -> [String: String]? {
        guard case .object(let object)? = try? JSONParser.parse(plaintext) else { return nil }
        var fields: [String: String] = [:]
        fields.reserveCapacity(object.count)
        for (name, value) in object {
            guard case .string(let text) = value else { return nil }
            fields[name] = text
        }
        return fields
    }
}
