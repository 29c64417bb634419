/// `POST /v1/vault/rekey` (SPEC §13): the current unlock (a passphrase or a 32-byte key, base64),
/// then the new wrap(s). A wrap not named keeps its current form; at least one must be new.
public struct VaultRekeyRequest: Codable, Sendable {
    public var passphrase: String?
    public var key: String?
    public var newPassphrase: String?
    public var newKey: String?

    enum CodingKeys: String, CodingKey {
        case passphrase, key
        case newPassphrase = "new_passphrase"
        case newKey = "new_key"
    }

    public init(passphrase: String?, key: String?, newPassphrase: String?, newKey: String?) {
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

    public init(unlocks: [String], replaced: [String]) {
        self.unlocks = unlocks
        self.replaced = replaced
    }
}
