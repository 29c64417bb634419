/// `GET /v1/jwks`: the public keys of every jwt-signer secret.
public struct JWKSet: Codable, Sendable {
    public struct Key: Codable, Sendable {
        public var kty = "OKP"
        public var crv = "Ed25519"
        public var alg = "EdDSA"
        public var use = "sig"
        public var kid: String
        public var x: String

        public init(kid: String, x: String) {
            self.kid = kid
            self.x = x
        }
    }

    public var keys: [Key]

    public init(keys: [Key]) { self.keys = keys }
}
