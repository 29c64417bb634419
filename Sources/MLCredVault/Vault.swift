#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import MLCredAPI
import MLCredCrypto
import MLCredStore
import Synchronization

/// The vault: the root key's lifecycle (init, unseal, seal), sealed secrets, and the keyed audit
/// chain. One actor, so state changes are serial; blocking work (Argon2id) runs elsewhere.
public actor Vault {
    /// Non-secret settings fixed at `init` and checked at every start.
    public struct Settings: Codable, Sendable, Equatable {
        public var environment: String
        public var phi: Bool

        public init(environment: String, phi: Bool) {
            self.environment = environment
            self.phi = phi
        }
    }

    /// Keys alive while unsealed, all in guarded memory.
    struct Keys {
        let root: SecureBytes
        /// Secret-encryption keys by generation (generation 1 derived from the root key).
        let ring: SecretKeyRing
        let auditChain: SecureBytes
        let tokenHash: SecureBytes
        /// Wraps the data keys of generations after the first.
        let dataKeyWrapping: SecureBytes

        init(root: SecureBytes) throws {
            self.root = root
            ring = SecretKeyRing(first: try KeyDerivation.subkey(of: root, for: .secretEncryption))
            auditChain = try KeyDerivation.subkey(of: root, for: .auditChain)
            tokenHash = try KeyDerivation.subkey(of: root, for: .tokenHash)
            dataKeyWrapping = try KeyDerivation.subkey(of: root, for: .dataKeyWrapping)
        }

        func wipe() {
            ring.wipe()
            for key in [root, auditChain, tokenHash, dataKeyWrapping] { key.wipe() }
        }
    }

    enum State {
        case uninitialized
        case sealed
        case unsealed(Keys)
    }

    /// What the hot paths (token hashing, opening a secret) need, readable without waiting for
    /// the actor: a mirror of `state`, changed only together with it.
    enum HotState: Sendable {
        case uninitialized
        case sealed
        case unsealed(tokenHash: SecureBytes, ring: SecretKeyRing)
    }

    let store: Store
    /// Merges a uid's denials past its allowance (SPEC §3).
    nonisolated let denials = DenialLimiter()
    /// The settings this daemon was started with.
    nonisolated public let settings: Settings
    let kdfParameters: PasswordKDFParameters
    var state: State {
        didSet {
            let mirror: HotState
            switch state {
            case .uninitialized: mirror = .uninitialized
            case .sealed: mirror = .sealed
            case .unsealed(let keys): mirror = .unsealed(tokenHash: keys.tokenHash, ring: keys.ring)
            }
            hot.withLock { $0 = mirror }
        }
    }
    nonisolated let hot = Mutex<HotState>(.uninitialized)
    /// Set while init, unseal or seal is running, so they never interleave.
    var lifecycleBusy = false
    /// Shares brought toward an unseal so far (guarded memory; forgotten after 10 minutes).
    var shareCollection = ShareCollection()
    /// Set while the background re-encryption of a rotation runs.
    var reencrypting = false
    let throttle = UnsealThrottle()

    /// Opens the vault stored in `store`. Throws `VaultSettingsMismatch` if the vault was
    /// initialized with another environment or PHI setting than `settings`.
    public init(store: Store, settings: Settings, kdfParameters: PasswordKDFParameters) async throws {
        self.store = store
        self.settings = settings
        self.kdfParameters = kdfParameters
        let recorded = try await store.read { try $0.meta(MetaKey.settings) }
        guard let recorded else {
            state = .uninitialized
            hot.withLock { $0 = .uninitialized }
            return
        }
        guard let stored = try? APIJSON.decode(Settings.self, from: Array(recorded.utf8)) else {
            throw VaultSettingsMismatch(description: "the vault's recorded settings are unreadable: the database was edited")
        }
        if stored != settings {
            throw VaultSettingsMismatch(description: """
                this vault was initialized for environment '\(stored.environment)' with phi \(stored.phi ? "on" : "off"), \
                but the daemon was started with environment '\(settings.environment)' and phi \(settings.phi ? "on" : "off"); \
                start it with --environment \(stored.environment)\(stored.phi ? " --phi" : " (without --phi)") or use another --state-dir
                """)
        }
        state = .sealed
        hot.withLock { $0 = .sealed }
    }

    /// A node of a fleet started before the vault existed learns that another node initialized it
    /// (SPEC §12: `init` once, from any node). Returns why it cannot serve that vault, if it cannot
    /// (initialized for another environment or phi setting).
    @discardableResult
    public func refreshInitialization() async -> String? {
        guard case .uninitialized = state, !lifecycleBusy else { return nil }
        guard let recorded = try? await store.read({ try $0.meta(MetaKey.settings) }) else { return nil }
        guard case .uninitialized = state else { return nil }
        guard let stored = try? APIJSON.decode(Settings.self, from: Array(recorded.utf8)) else {
            return "the vault's recorded settings are unreadable: the database was edited"
        }
        guard stored == settings else {
            return "the vault was initialized for environment '\(stored.environment)' with phi \(stored.phi ? "on" : "off"); this node runs environment '\(settings.environment)' with phi \(settings.phi ? "on" : "off")"
        }
        state = .sealed
        return nil
    }

    /// `(initialized, sealed)`.
    public var status: (initialized: Bool, sealed: Bool) {
        switch state {
        case .uninitialized: (false, true)
        case .sealed: (true, true)
        case .unsealed: (true, false)
        }
    }

    func unsealedKeys() throws -> Keys {
        switch state {
        case .uninitialized: throw APIError.uninitialized
        case .sealed: throw APIError.sealed
        case .unsealed(let keys): return keys
        }
    }

    /// Writes one audit record on its own (denials, failures), in whatever state the vault is.
    /// Denials go through the per-uid limiter first (`DenialLimiter`): past its allowance they are
    /// counted into one merged record instead.
    public nonisolated func audit(_ event: AuditEvent) async throws {
        let now = WallClock.now()
        var events = [event]
        if event.result == .denied {
            let admitted = denials.admitting(event, now: now, mergeAll: store.reserve.isBelow)
            events = admitted.events
            if admitted.merged {
                // Past its allowance: the caller waits (the task is suspended, no thread is held),
                // so a flood of denials costs the daemon little CPU and other users little latency.
                try? await Task.sleep(nanoseconds: DenialLimiter.mergedAnswerDelayNanoseconds)
            }
        }
        guard !events.isEmpty else { return }
        let written = events
        _ = try await store.write { connection in
            for event in written { try connection.appendAudit(event, time: now) }
        }
    }

    /// Writes the merged record of every denial window that has ended (`all`: every window, at
    /// shutdown). The sweeper calls it every second.
    public nonisolated func flushMergedDenials(all: Bool = false) async {
        let now = WallClock.now()
        let events = denials.drain(now: now, all: all)
        guard !events.isEmpty else { return }
        _ = try? await store.write { connection in
            for event in events { try connection.appendAudit(event, time: now) }
        }
    }

    /// Maps errors from lower layers onto vault errors with caller-safe messages.
    func translate(_ error: Error) -> Error {
        if error is APIError { return error }
        if let crypto = error as? CryptoError, crypto == .keyWiped { return APIError.sealed }
        return APIError.storage(error)
    }
}

/// Keys of the `meta` table.
enum MetaKey {
    static let settings = "vault.settings"
    static let passphraseWrap = "vault.wrap.passphrase"
    static let keyFileWrap = "vault.wrap.keyfile"
    static let sharesWrap = "vault.wrap.shares"
    /// `vault.dek.N`: generation N's data key, wrapped (N >= 2).
    static let dataKeyPrefix = "vault.dek."
}

extension Vault {
    /// The keys of the hot paths, or the error of the current state.
    nonisolated func hotKeys() throws -> (tokenHash: SecureBytes, ring: SecretKeyRing) {
        switch hot.withLock({ $0 }) {
        case .uninitialized: throw APIError.uninitialized
        case .sealed: throw APIError.sealed
        case .unsealed(let tokenHash, let ring): return (tokenHash, ring)
        }
    }

    /// The keyed BLAKE2b hash a token is stored and looked up under. Needs the vault unsealed.
    public nonisolated func hashToken(_ token: String) throws -> String {
        let key = try hotKeys().tokenHash
        do {
            return Hex.encode(try MAC.blake2b(Array(token.utf8), key: key))
        } catch CryptoError.keyWiped {
            throw APIError.sealed
        }
    }
}
