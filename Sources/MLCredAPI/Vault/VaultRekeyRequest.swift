/// `POST /v1/vault/rekey` (SPEC §13): the current unlock (a passphrase or a 32-byte key, base64),
/// then the new wrap(s). A wrap not named keeps its current form; at least one must be new.
public struct VaultRekeyRequest: Codable, Sendable {
    public var passphrase: String?
    public var key: String?
    public var newPassphrase: String?
    public var newKey: String?
    /// The current unlock as the threshold's shares (their text forms).
    public var shares: [String]?
    /// New shares: how many, and how many unseal.
    public var newShares: Int?
    public var newThreshold: Int?

    enum CodingKeys: String, CodingKey {
        case passphrase, key, shares
        case newPassphrase = "new_passphrase"
        case newKey = "new_key"
        case newShares = "new_shares"
        case newThreshold = "new_threshold"
    }

    public init(passphrase: String?, key: String?, newPassphrase: String?, newKey: String?, shares: [String]? = nil,
                newShares: Int? = nil, newThreshold: Int? = nil) {
        self.shares = shares
        self.newShares = newShares
        self.newThreshold = newThreshold
        self.passphrase = passphrase
        self.key = key
        self.newPassphrase = newPassphrase
        self.newKey = newKey
    }
}

/// The answer to a rekey: which unlocks open the vault now.
public struct VaultRekeyResponse: Codable, Sendable {
    /// `passphrase`, `key file`, in that order.
    public var unlocks: [String]
    /// What was replaced.
    public var replaced: [String]
    /// New shares' text forms (shown once).
    public var shares: [String]?

    public init(unlocks: [String], replaced: [String], shares: [String]? = nil) {
        self.shares = shares
        self.unlocks = unlocks
        self.replaced = replaced
    }
}

/// The answer to `POST /v1/vault/rotate`.
public struct VaultRotateResponse: Codable, Sendable, Equatable {
    /// The new key generation, used by every write from now on.
    public var generation: Int
    /// Stored records still under older generations (re-encrypted in the background).
    public var pending: Int

    public init(generation: Int, pending: Int) {
        self.generation = generation
        self.pending = pending
    }
}
