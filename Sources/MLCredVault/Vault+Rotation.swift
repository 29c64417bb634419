import Glibc
import MLCredAPI
import MLCredCrypto
import MLCredStore

/// `vault rotate` (SPEC §13): a new generation of the secret-encryption key. It is a random
/// 32-byte data key, stored wrapped under a root-derived wrapping key (`vault.dek.N` in meta),
/// in the same transaction as its audit record; new writes use it at once; existing records are
/// re-encrypted in the background, a batch per transaction (each a compare-and-set on the
/// record's generation), resumed after a seal or restart; older generations stay loaded, so a
/// record not yet re-encrypted still opens. The audit MAC key and token-hash key stay derived
/// from the root key: chains and kept heads verify across rotations.
extension Vault {
    /// Records re-encrypted per transaction.
    static let reencryptBatch = 100

    func dataKeyAssociatedData(generation: Int) -> [UInt8] {
        Array("mlcred-dek-v1\u{0}\(generation)\u{0}\(settings.environment)\u{0}\(settings.phi ? 1 : 0)".utf8)
    }

    /// Unwraps every stored data key into `keys.ring` (at unseal).
    func loadDataKeys(into keys: Keys) async throws {
        let wrapped = try await store.read { try $0.metaValues(prefix: MetaKey.dataKeyPrefix) }
        for (name, text) in wrapped {
            guard let generation = Int(name.dropFirst(MetaKey.dataKeyPrefix.count)), generation >= 2,
                  let sealed = Base64.decode(text) else {
                throw APIError(.storageError, "the vault's key generation record \(name) is unreadable: the database was edited")
            }
            if keys.ring.key(generation: generation) != nil { continue }  // already loaded
            do {
                keys.ring.add(generation: generation,
                              key: try AEAD.openSecret(sealed, key: keys.dataKeyWrapping, associatedData: dataKeyAssociatedData(generation: generation)))
            } catch {
                throw APIError(.storageError, "key generation \(generation) does not open under this root key: the database was edited or mixed with another vault's")
            }
        }
    }

    /// Loads key generations another node of a fleet made since this one unsealed.
    func reloadDataKeys() async throws {
        try await loadDataKeys(into: try unsealedKeys())
    }

    /// The fleet's heartbeat: while unsealed, loads key generations other nodes made, so new
    /// writes here use the current one (SPEC §13 `vault rotate` on another node).
    public func syncDataKeys() async {
        guard store.isShared, case .unsealed(let keys) = state, !lifecycleBusy else { return }
        try? await loadDataKeys(into: keys)
    }

    /// Makes and installs a new key generation; returns it and how many stored records wait for re-encryption.
    public func rotate(principal: Principal) async throws -> VaultRotateResponse {
        let keys = try unsealedKeys()
        try await beginLifecycle()
        defer { lifecycleBusy = false }
        let generation = keys.ring.current.generation + 1
        let dataKey = try SecureBytes.random(count: 32)
        let sealed = try AEAD.seal(secret: dataKey, key: keys.dataKeyWrapping, associatedData: dataKeyAssociatedData(generation: generation))
        let name = MetaKey.dataKeyPrefix + String(generation)
        let pending: Int
        do {
            pending = try await store.write { connection in
                guard try connection.meta(name) == nil else { throw APIError.vaultBusy }
                try connection.setMeta(name, Base64.encode(sealed))
                let pending = try connection.secretsPendingReencryption(generation: generation)
                try connection.appendAudit(AuditEvent(
                    principal: principal, action: .vaultRotate, result: .allowed,
                    reason: "key generation \(generation); \(Plural.count(pending, "stored record")) to re-encrypt"), time: WallClock.now())
                return pending
            }
        } catch {
            dataKey.wipe()
            throw translate(error)
        }
        keys.ring.add(generation: generation, key: dataKey)
        startReencryption()
        return VaultRotateResponse(generation: generation, pending: pending)
    }

    /// The current key generation and the records not yet under it (nil while sealed).
    public nonisolated func rotationStatus() async -> (generation: Int, pending: Int)? {
        guard let ring = try? hotKeys().ring else { return nil }
        let generation = ring.current.generation
        let pending = (try? await store.pointRead { try $0.secretsPendingReencryption(generation: generation) }) ?? 0
        return (generation, pending)
    }

    /// Starts the background re-encryption (one at a time).
    nonisolated func startReencryption() {
        Task { await self.reencryptAll() }
    }

    func reencryptAll() async {
        guard !reencrypting else { return }
        reencrypting = true
        defer { reencrypting = false }
        var done = 0
        var target = 0
        while case .unsealed(let keys) = state {
            let (generation, key) = keys.ring.current
            target = generation
            guard let batch = try? await store.read({ try $0.secretsBelow(generation: generation, limit: Self.reencryptBatch) }),
                  !batch.isEmpty else { break }
            var updates: [(name: String, version: Int, from: Int, sealed: [UInt8])] = []
            for record in batch {
                // A record that does not open (edited) stays as it is, reported by `secret list`.
                guard var plaintext = try? Self.open(record, ring: keys.ring) else { continue }
                defer { Sodium.wipe(&plaintext) }
                guard let sealed = try? AEAD.seal(plaintext, key: key, associatedData: Vault.secretAssociatedData(
                    name: record.name, type: record.type, version: record.version, phi: record.phi)) else { continue }
                updates.append((record.name, record.version, record.generation, sealed))
            }
            guard !updates.isEmpty else { break }  // only records that do not open are left
            let batchUpdates = updates
            guard let count = try? await store.write({ connection -> Int in
                var count = 0
                for update in batchUpdates where try connection.reencryptSecret(
                    name: update.name, version: update.version, from: update.from, to: generation, sealed: update.sealed) {
                    count += 1
                }
                return count
            }) else { break }
            done += count
        }
        // Once nothing is under an older generation, its data key goes from the database and
        // from memory: a rotation leaves no key that could open an old copy of a record.
        let reached = target
        if case .unsealed(let keys) = state, reached >= 2,
           let left = try? await store.read({ try $0.secretsPendingReencryption(generation: reached) }), left == 0 {
            let retired = reached
            let removed = (try? await store.write { connection -> [Int] in
                var gone: [Int] = []
                for (name, _) in try connection.metaValues(prefix: MetaKey.dataKeyPrefix) {
                    if let generation = Int(name.dropFirst(MetaKey.dataKeyPrefix.count)), generation < retired {
                        try connection.removeMeta(name)
                        gone.append(generation)
                    }
                }
                return gone
            }) ?? []
            keys.ring.retire(below: retired)
            if !removed.isEmpty {
                try? await audit(AuditEvent(principal: Principal.daemon(uid: getuid(), gid: getgid(), pid: getpid()), action: .vaultRotate,
                                            result: .allowed, reason: "retired key generation\(removed.count == 1 ? "" : "s") \(removed.sorted().map(String.init).joined(separator: ", "))"))
            }
        }
        if done > 0, case .unsealed = state {
            try? await audit(AuditEvent(principal: Principal.daemon(uid: getuid(), gid: getgid(), pid: getpid()), action: .vaultRotate,
                                        result: .allowed, reason: "re-encrypted \(Plural.count(done, "stored record")) under key generation \(target)"))
        }
    }
}
