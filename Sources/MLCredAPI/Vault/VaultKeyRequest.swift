/// `POST /v1/vault/init` and `POST /v1/vault/unseal`: a passphrase, a 32-byte key (base64), or both (init only).
public struct VaultKeyRequest: Codable, Sendable {
    public var passphrase: String?
    /// Base64 of the 32-byte key file contents.
    public var key: String?
    /// `unseal --share`: one Shamir share's text form.
    public var share: String?
    /// `unseal --reset`: forget the shares brought so far.
    public var reset: Bool?
    /// `init --shares N --threshold K`.
    public var shares: Int?
    public var threshold: Int?

    public init(passphrase: String?, key: String?, share: String? = nil, reset: Bool? = nil, shares: Int? = nil, threshold: Int? = nil) {
        self.passphrase = passphrase
        self.key = key
        self.share = share
        self.reset = reset
        self.shares = shares
        self.threshold = threshold
    }
}
