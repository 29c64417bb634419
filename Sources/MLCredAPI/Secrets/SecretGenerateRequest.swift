/// `POST /v1/secrets/{name}/generate`.
public struct SecretGenerateRequest: Codable, Sendable {
    public var type: String
    public var issuer: String?
    public var phi: Bool?

    public init(type: String, issuer: String?, phi: Bool?) {
        self.type = type
        self.issuer = issuer
        self.phi = phi
    }
}
