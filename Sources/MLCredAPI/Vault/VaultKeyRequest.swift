/// `POST /v1/vault/init` and `POST /v1/vault/unseal`: a passphrase, a 32-byte key (base64), or both (init only).
public struct VaultKeyRequest: Codable, Sendable {
    public var passphrase: String?
    /// Base64 of the 32-byte key file contents.
    public var key: String?

    public init(passphrase: String?, key: String?) {
        self.passphrase = passphrase
        self.key = key
    }
}
