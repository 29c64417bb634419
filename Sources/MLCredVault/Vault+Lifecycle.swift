#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import MLCredAPI
import MLCredCrypto
import MLCredStore

/// The root key wrapped under a passphrase-derived key, with what is needed to derive it again.
struct PassphraseWrap: Codable {
    var salt: String
    var opsLimit: UInt64
    var memLimit: UInt64
    var sealed: String

    enum CodingKeys: String, CodingKey {
        case salt, sealed
        case opsLimit = "ops_limit"
        case memLimit = "mem_limit"
    }
}

/// The root key wrapped under a 32-byte key file.
struct KeyFileWrap: Codable {
    var sealed: String
}

extension Vault {
    /// Shortest passphrase `init` accepts.
    public static let minimumPassphraseLength = 8
    /// Length of a key file's key.
    public static let keyFileKeyLength = 32

    /// Associated data of a root-key wrap. It binds the settings recorded at `init`, so editing
    /// the environment or PHI flag in the database makes every unseal fail.
    func wrapAssociatedData(kind: String) -> [UInt8] {
        Array("mlcred-root-v1\u{0}\(kind)\u{0}\(settings.environment)\u{0}\(settings.phi ? 1 : 0)".utf8)
    }

    /// How long an init, unseal, seal, rekey or rotation waits for another one in progress
    /// before it answers `vault_busy`: each holds the vault for its own work only (a key
    /// derivation, a few writes), never for a wrong passphrase's back-off.
    static let lifecycleWaitSeconds = 5.0

    func beginLifecycle() async throws {
        let until = WallClock.now() + Self.lifecycleWaitSeconds
        while lifecycleBusy && WallClock.now() < until {
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        guard !lifecycleBusy else { throw APIError.vaultBusy }
        lifecycleBusy = true
    }

    /// `beginLifecycle` for an operation that checks a passphrase, key or shares (unseal,
    /// rekey): first this uid's back-off is waited out. Parallel attempts of one uid wait out
    /// the same back-off together; the first to fail starts a new one, which the others, queued
    /// for the vault meanwhile, wait out again (one guess per back-off, however many are sent).
    func beginCheckedLifecycle(uid: UInt32) async throws {
        while true {
            try await throttle.waitForTurn(uid: uid)
            try await beginLifecycle()
            guard await throttle.backOffRunning(uid: uid) else { return }
            lifecycleBusy = false
        }
    }

    /// After a wrong passphrase, key or shares: the failure is durable in the audit before the
    /// caller hears of it, the vault is released, and the answer waits out the uid's back-off.
    /// The back-off is the guesser's own: an admin guessing in a loop held the vault through it,
    /// and no other admin could seal. The caller holds the lifecycle and must not release it again.
    func refuseGuess(_ event: AuditEvent, uid: UInt32) async {
        let delay = await throttle.recordFailure(uid: uid)
        try? await audit(event)
        lifecycleBusy = false
        try? await Task.sleep(nanoseconds: UInt64(delay * 1e9))
    }

    /// Creates a random root key, wraps it under the passphrase and/or key-file key, and leaves
    /// the vault unsealed.
    /// With `shares` (count, threshold), the root key is also wrapped under a key split into
    /// Shamir shares, whose text forms are returned (shown once, never stored); no passphrase then.
    @discardableResult
    public func initialize(passphrase: [UInt8]?, keyFileKey: [UInt8]?, shares: (count: Int, threshold: Int)? = nil,
                           principal: Principal) async throws -> [String] {
        try await beginLifecycle()
        defer { lifecycleBusy = false }
        guard case .uninitialized = state else {
            throw APIError(.alreadyInitialized, "the vault is already initialized")
        }
        guard passphrase != nil || keyFileKey != nil || shares != nil else {
            throw APIError(.vaultMethodInvalid, "init needs a passphrase, a key file, shares, or a key file with either")
        }
        if shares != nil && passphrase != nil {
            throw APIError(.vaultMethodInvalid, "with shares the shares are the unlock: give no passphrase (a key file may be added)")
        }
        if let shares, !(2...255).contains(shares.count) || !(2...max(2, shares.count)).contains(shares.threshold) {
            throw APIError(.vaultMethodInvalid, "--shares must be 2-255 and --threshold 2 to --shares")
        }
        if let passphrase, passphrase.count < Self.minimumPassphraseLength {
            throw APIError(.passphraseTooShort, "the passphrase is too short: use at least \(Self.minimumPassphraseLength) characters")
        }
        if let keyFileKey, keyFileKey.count != Self.keyFileKeyLength {
            throw APIError(.keyFileInvalid, "a key file must hold exactly \(Self.keyFileKeyLength) bytes")
        }
        let root = try SecureBytes.random(count: 32)
        var passphraseWrap: PassphraseWrap?
        if let passphrase { passphraseWrap = try await makePassphraseWrap(root: root, passphrase: passphrase) }
        let keyFileWrap = try keyFileKey.map { try makeKeyFileWrap(root: root, keyFileKey: $0) }
        let split = try shares.map { try makeSharesWrap(root: root, count: $0.count, threshold: $0.threshold) }
        let sharesJSON = try split.map { String(decoding: try APIJSON.encode($0.wrap), as: UTF8.self) }
        let keys = try Keys(root: root)
        let settingsJSON = String(decoding: try APIJSON.encode(settings), as: UTF8.self)
        let passphraseJSON = try passphraseWrap.map { String(decoding: try APIJSON.encode($0), as: UTF8.self) }
        let keyFileJSON = try keyFileWrap.map { String(decoding: try APIJSON.encode($0), as: UTF8.self) }
        let auditKey = keys.auditChain
        let methods = [passphraseWrap == nil ? nil : "passphrase", keyFileWrap == nil ? nil : "key file",
                       shares.map { "\($0.threshold) of \($0.count) shares" }].compactMap { $0 }
        do {
            _ = try await store.write { connection in
                // Insert-once: of two nodes of a fleet initializing at the same moment, one wins.
                guard try connection.insertMetaOnce(MetaKey.settings, settingsJSON) else {
                    throw APIError(.alreadyInitialized, "the vault is already initialized")
                }
                if let passphraseJSON { try connection.setMeta(MetaKey.passphraseWrap, passphraseJSON) }
                if let keyFileJSON { try connection.setMeta(MetaKey.keyFileWrap, keyFileJSON) }
                if let sharesJSON { try connection.setMeta(MetaKey.sharesWrap, sharesJSON) }
                connection.installAuditKey(auditKey)
                try connection.chainPendingAudit()
                try connection.appendAudit(AuditEvent(
                    principal: principal, action: .vaultInit, result: .allowed,
                    reason: "root key created; unseal with \(methods.joined(separator: " or "))"), time: WallClock.now())
            }
        } catch {
            try? await store.setAuditKey(nil)
            keys.wipe()
            throw translate(error)
        }
        state = .unsealed(keys)
        return split?.texts ?? []
    }

    /// Records chained per transaction at unseal.
    static let chainBatch = 1000

    /// Unwraps the root key with a passphrase or a key-file key. A wrong one is audited and
    /// answered after a delay that doubles per consecutive failure of the caller's uid.
    public func unseal(passphrase: [UInt8]?, keyFileKey: [UInt8]?, principal: Principal) async throws {
        if case .uninitialized = state { await refreshInitialization() }
        if case .uninitialized = state { throw APIError.uninitialized }
        guard (passphrase == nil) != (keyFileKey == nil) else {
            throw APIError(.vaultMethodInvalid, "unseal needs exactly one of a passphrase or a key file")
        }
        try await beginCheckedLifecycle(uid: principal.uid)
        var holding = true
        defer { if holding { lifecycleBusy = false } }

        let root: SecureBytes
        do {
            root = try await unwrapRoot(passphrase: passphrase, keyFileKey: keyFileKey)
        } catch let error as APIError where error.reason == .wrongPassphrase || error.reason == .wrongKeyFile {
            // Threat: online guessing, slowed per uid.
            holding = false
            await refuseGuess(AuditEvent(principal: principal, action: .vaultUnseal, result: .denied,
                                         reason: passphrase != nil ? "wrong passphrase" : "wrong key file"), uid: principal.uid)
            throw error
        }
        if case .unsealed = state {
            // Already unsealed: the passphrase or key was still checked (a wrong one is refused
            // above), and nothing changes.
            root.wipe()
            await throttle.recordSuccess(uid: principal.uid)
            return
        }
        await throttle.recordSuccess(uid: principal.uid)
        try await completeUnseal(root: root, method: passphrase != nil ? "passphrase" : "key file", principal: principal)
    }

    /// The unseal after the root key was recovered (passphrase, key file or shares): keys derived,
    /// data keys loaded, records written while sealed chained, the unseal audited, rotation resumed.
    func completeUnseal(root: SecureBytes, method: String, principal: Principal) async throws {
        let keys: Keys
        do {
            keys = try Keys(root: root)
        } catch {
            root.wipe()
            throw translate(error)
        }
        let auditKey = keys.auditChain
        do {
            try await loadDataKeys(into: keys)
        } catch {
            keys.wipe()
            throw translate(error)
        }
        do {
            // Records written while sealed are chained first, a batch per transaction; the last
            // few (written meanwhile) with the key's installation, so the chain has no gap.
            var chainedBefore = 0
            while true {
                let count = try await store.write { try $0.chainPendingAudit(key: auditKey, limit: Self.chainBatch) }
                chainedBefore += count
                if count < Self.chainBatch { break }
            }
            let earlier = chainedBefore
            _ = try await store.write { connection in
                connection.installAuditKey(auditKey)
                let chained = try connection.chainPendingAudit() + earlier
                try connection.appendAudit(AuditEvent(
                    principal: principal, action: .vaultUnseal, result: .allowed,
                    reason: method + (chained > 0 ? "; chained \(Plural.count(chained, "record")) written while sealed" : "")),
                    time: WallClock.now())
            }
        } catch {
            try? await store.setAuditKey(nil)
            keys.wipe()
            throw translate(error)
        }
        state = .unsealed(keys)
        // A rotation a seal or a restart interrupted goes on.
        startReencryption()
    }

    private func unwrapRoot(passphrase: [UInt8]?, keyFileKey: [UInt8]?) async throws -> SecureBytes {
        if let passphrase {
            guard let text = try await store.read({ try $0.meta(MetaKey.passphraseWrap) }),
                  let wrap = try? APIJSON.decode(PassphraseWrap.self, from: Array(text.utf8)),
                  let salt = Base64.decode(wrap.salt), let sealed = Base64.decode(wrap.sealed) else {
                throw APIError(.passphraseNotSet, "this vault has no passphrase: unseal it with its key file")
            }
            let parameters = PasswordKDFParameters(opsLimit: wrap.opsLimit, memLimit: wrap.memLimit)
            let wrappingKey = try await Blocking.run {
                try PasswordKDF.deriveKey(passphrase: passphrase, salt: salt, parameters: parameters)
            }
            defer { wrappingKey.wipe() }
            do {
                return try AEAD.openSecret(sealed, key: wrappingKey, associatedData: wrapAssociatedData(kind: "passphrase"))
            } catch {
                throw APIError(.wrongPassphrase, "unseal failed: wrong passphrase")
            }
        }
        guard let keyFileKey else { throw APIError(.vaultMethodInvalid, "unseal needs a passphrase or a key file") }
        guard keyFileKey.count == Self.keyFileKeyLength else {
            throw APIError(.wrongKeyFile, "unseal failed: wrong key file")
        }
        guard let text = try await store.read({ try $0.meta(MetaKey.keyFileWrap) }),
              let wrap = try? APIJSON.decode(KeyFileWrap.self, from: Array(text.utf8)),
              let sealed = Base64.decode(wrap.sealed) else {
            throw APIError(.keyFileNotSet, "this vault has no key file: unseal it with its passphrase")
        }
        let wrappingKey = try SecureBytes.copying(keyFileKey)
        defer { wrappingKey.wipe() }
        do {
            return try AEAD.openSecret(sealed, key: wrappingKey, associatedData: wrapAssociatedData(kind: "keyfile"))
        } catch {
            throw APIError(.wrongKeyFile, "unseal failed: wrong key file")
        }
    }

    /// The root key wrapped under a key derived from `passphrase` (Argon2id, fresh salt).
    func makePassphraseWrap(root: SecureBytes, passphrase: [UInt8]) async throws -> PassphraseWrap {
        let salt = Sodium.randomBytes(PasswordKDF.saltLength)
        let parameters = kdfParameters
        let wrappingKey = try await Blocking.run {
            try PasswordKDF.deriveKey(passphrase: passphrase, salt: salt, parameters: parameters)
        }
        defer { wrappingKey.wipe() }
        let sealed = try AEAD.seal(secret: root, key: wrappingKey, associatedData: wrapAssociatedData(kind: "passphrase"))
        return PassphraseWrap(salt: Base64.encode(salt), opsLimit: parameters.opsLimit, memLimit: parameters.memLimit, sealed: Base64.encode(sealed))
    }

    /// The root key wrapped under a 32-byte key file's key.
    func makeKeyFileWrap(root: SecureBytes, keyFileKey: [UInt8]) throws -> KeyFileWrap {
        let wrappingKey = try SecureBytes.copying(keyFileKey)
        defer { wrappingKey.wipe() }
        let sealed = try AEAD.seal(secret: root, key: wrappingKey, associatedData: wrapAssociatedData(kind: "keyfile"))
        return KeyFileWrap(sealed: Base64.encode(sealed))
    }

    /// Replaces the passphrase wrap and/or the key-file wrap of the root key (SPEC §13), after
    /// proving the current unlock (a wrong one is throttled and audited as at unseal). Both new
    /// wraps are written in one transaction with the audit record: a crash leaves the old wraps
    /// or the new ones, never a vault no unlock opens. The old passphrase (or key file) stops
    /// working at once. Works sealed or unsealed; it changes no key the data is encrypted with.
    public func rekey(passphrase: [UInt8]?, keyFileKey: [UInt8]?, shares currentShares: [String]? = nil,
                      newPassphrase: [UInt8]?, newKeyFileKey: [UInt8]?, newShares: (count: Int, threshold: Int)? = nil,
                      principal: Principal) async throws -> VaultRekeyResponse {
        if case .uninitialized = state { throw APIError.uninitialized }
        guard [passphrase != nil, keyFileKey != nil, currentShares != nil].filter({ $0 }).count == 1 else {
            throw APIError(.vaultMethodInvalid, "rekey needs exactly one current unlock: the passphrase, the key file, or the threshold's shares")
        }
        guard newPassphrase != nil || newKeyFileKey != nil || newShares != nil else {
            throw APIError(.vaultMethodInvalid, "rekey needs a new passphrase, a new key file, new shares, or several")
        }
        guard !(newPassphrase != nil && newShares != nil) else {
            throw APIError(.vaultMethodInvalid, "a passphrase and shares exclude each other: the shares are the unlock")
        }
        if let newPassphrase, newPassphrase.count < Self.minimumPassphraseLength {
            throw APIError(.passphraseTooShort, "the new passphrase is too short: use at least \(Self.minimumPassphraseLength) characters")
        }
        if let newKeyFileKey, newKeyFileKey.count != Self.keyFileKeyLength {
            throw APIError(.keyFileInvalid, "a key file must hold exactly \(Self.keyFileKeyLength) bytes")
        }
        if let newShares, !(2...255).contains(newShares.count) || newShares.threshold < 2 || newShares.threshold > newShares.count {
            throw APIError(.vaultMethodInvalid, "--shares must be 2-255 and --threshold 2 to --shares")
        }
        try await beginCheckedLifecycle(uid: principal.uid)
        var holding = true
        defer { if holding { lifecycleBusy = false } }
        let root: SecureBytes
        do {
            if let currentShares {
                root = try await unwrapRoot(shares: currentShares)
            } else {
                root = try await unwrapRoot(passphrase: passphrase, keyFileKey: keyFileKey)
            }
        } catch let error as APIError where error.reason == .wrongPassphrase || error.reason == .wrongKeyFile || error.reason == .shareInvalid {
            holding = false
            await refuseGuess(AuditEvent(principal: principal, action: .vaultRekey, result: .denied,
                                         reason: passphrase != nil ? "wrong passphrase" : keyFileKey != nil ? "wrong key file" : "shares that do not open the vault"),
                              uid: principal.uid)
            throw APIError(error.reason, error.message.replacingOccurrences(of: "unseal failed", with: "rekey refused"))
        }
        defer { root.wipe() }
        await throttle.recordSuccess(uid: principal.uid)
        var passphraseJSON: String?
        if let newPassphrase {
            passphraseJSON = String(decoding: try APIJSON.encode(try await makePassphraseWrap(root: root, passphrase: newPassphrase)), as: UTF8.self)
        }
        let keyFileJSON = try newKeyFileKey.map {
            String(decoding: try APIJSON.encode(try makeKeyFileWrap(root: root, keyFileKey: $0)), as: UTF8.self)
        }
        let split = try newShares.map { try makeSharesWrap(root: root, count: $0.count, threshold: $0.threshold) }
        let sharesJSON = try split.map { String(decoding: try APIJSON.encode($0.wrap), as: UTF8.self) }
        let replaced = [passphraseJSON == nil ? nil : "passphrase", keyFileJSON == nil ? nil : "key file",
                        sharesJSON == nil ? nil : "shares"].compactMap { $0 }
        let newPassphraseJSON = passphraseJSON
        do {
            var answer = try await store.write { connection in
                // A passphrase and shares exclude each other: the new one removes the other.
                if let passphraseJSON = newPassphraseJSON {
                    try connection.setMeta(MetaKey.passphraseWrap, passphraseJSON)
                    try connection.removeMeta(MetaKey.sharesWrap)
                }
                if let keyFileJSON { try connection.setMeta(MetaKey.keyFileWrap, keyFileJSON) }
                if let sharesJSON {
                    try connection.setMeta(MetaKey.sharesWrap, sharesJSON)
                    try connection.removeMeta(MetaKey.passphraseWrap)
                }
                let unlocks = [try connection.meta(MetaKey.passphraseWrap) == nil ? nil : "passphrase",
                               try connection.meta(MetaKey.keyFileWrap) == nil ? nil : "key file",
                               try connection.meta(MetaKey.sharesWrap) == nil ? nil : "shares"].compactMap { $0 }
                try connection.appendAudit(AuditEvent(
                    principal: principal, action: .vaultRekey, result: .allowed,
                    reason: "replaced the \(replaced.joined(separator: " and ")) wrap; unseal with \(unlocks.joined(separator: " or "))"),
                    time: WallClock.now())
                return VaultRekeyResponse(unlocks: unlocks, replaced: replaced)
            }
            answer.shares = split?.texts
            return answer
        } catch {
            throw translate(error)
        }
    }

    /// The root key from K shares' text forms given at once (`vault rekey --share-files`).
    private func unwrapRoot(shares texts: [String]) async throws -> SecureBytes {
        guard let wrapText = try await store.read({ try $0.meta(MetaKey.sharesWrap) }),
              let wrap = try? APIJSON.decode(SharesWrap.self, from: Array(wrapText.utf8)), let sealed = Base64.decode(wrap.sealed) else {
            throw APIError(.vaultMethodInvalid, "this vault is not unsealed with shares")
        }
        var shares: [Shamir.Share] = []
        defer { for share in shares { share.wipe() } }
        do {
            for text in texts { shares.append(try ShareText.decode(text)) }
            guard shares.allSatisfy({ $0.splitIDHex == wrap.splitID }) else {
                throw APIError(.shareInvalid, "a share belongs to another split than this vault's")
            }
            let key = try Shamir.combine(shares)
            defer { key.wipe() }
            return try AEAD.openSecret(sealed, key: key, associatedData: wrapAssociatedData(kind: "shares"))
        } catch let error as APIError {
            throw error
        } catch let error as ShamirError {
            throw APIError(.shareInvalid, "the shares do not open the vault: \(error)")
        } catch {
            throw APIError(.shareInvalid, "the shares do not open the vault")
        }
    }

    /// Wipes every key from memory. The seal is audited (MAC'd) before the keys go.
    public func seal(principal: Principal) async throws {
        try await beginLifecycle()
        defer { lifecycleBusy = false }
        switch state {
        case .uninitialized: throw APIError.uninitialized
        case .sealed: return
        case .unsealed(let keys):
            // Seal even if the audit write fails: leaving keys in memory is the worse outcome.
            defer {
                keys.wipe()
                state = .sealed
            }
            do {
                _ = try await store.write { connection in
                    try connection.appendAudit(AuditEvent(principal: principal, action: .vaultSeal, result: .allowed), time: WallClock.now())
                    connection.installAuditKey(nil)
                }
            } catch {
                try? await store.setAuditKey(nil)
                throw translate(error)
            }
        }
    }

    /// Recomputes the audit chain; needs the vault unsealed (the chain is keyed).
    public func verifyAudit() async throws -> AuditVerifyResponse {
        let key = try unsealedKeys().auditChain
        do {
            return try await store.read { try $0.verifyAudit(key: key) }
        } catch {
            throw translate(error)
        }
    }
}

/// Per-uid back-off for failed unseals: 1 s, 2 s, 4 s, ... capped at 30 s; reset by a success.
actor UnsealThrottle {
    /// The longest delay after a failure.
    static let maximumDelay = 30.0
    private var failures: [UInt32: Int] = [:]
    private var notBefore: [UInt32: Double] = [:]

    /// Waits out the delay of an earlier failure that is still running for this uid, so parallel
    /// attempts cannot skip it.
    func waitForTurn(uid: UInt32) async throws {
        if let until = notBefore[uid] {
            let wait = until - WallClock.now()
            if wait > 0 { try await Task.sleep(nanoseconds: UInt64(wait * 1e9)) }
        }
    }

    /// Whether a failure's delay is still running for this uid.
    func backOffRunning(uid: UInt32) -> Bool {
        notBefore[uid].map { $0 > WallClock.now() } ?? false
    }

    /// Records a failure; returns how long to delay this answer.
    func recordFailure(uid: UInt32) -> Double {
        let count = (failures[uid] ?? 0) + 1
        failures[uid] = count
        let delay = min(Self.maximumDelay, Double(1 << min(count - 1, 10)))
        notBefore[uid] = WallClock.now() + delay
        return delay
    }

    func recordSuccess(uid: UInt32) {
        failures[uid] = nil
        notBefore[uid] = nil
    }
}
