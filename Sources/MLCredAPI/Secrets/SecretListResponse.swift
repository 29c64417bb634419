/// `GET /v1/secrets`.
public struct SecretListResponse: Codable, Sendable {
    public var secrets: [SecretMetadata]

    public init(secrets: [SecretMetadata]) { self.secrets = secrets }
}
