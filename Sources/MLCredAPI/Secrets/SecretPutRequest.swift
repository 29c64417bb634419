/// `PUT /v1/secrets/{name}`.
public struct SecretPutRequest: Codable, Sendable {
    public var type: String
    public var phi: Bool?
    public var fields: [String: SecretFieldValue]

    public init(type: String, phi: Bool?, fields: [String: SecretFieldValue]) {
        self.type = type
        self.phi = phi
        self.fields = fields
    }
}
