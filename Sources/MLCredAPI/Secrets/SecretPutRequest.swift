/// `PUT /v1/secrets/{name}`.
public struct SecretPutRequest: Codable, Sendable {
    public var type: String
    public var phi: Bool?
    public var fields: [String: SecretFieldValue]
    /// Rotate at the provider on this schedule, e.g. "30d" (aws and postgres secrets; SPEC §13).
    public var rotateEvery: String?

    enum CodingKeys: String, CodingKey {
        case type, phi, fields
        case rotateEvery = "rotate_every"
    }

    public init(type: String, phi: Bool?, fields: [String: SecretFieldValue], rotateEvery: String? = nil) {
        self.rotateEvery = rotateEvery
        self.type = type
        self.phi = phi
        self.fields = fields
    }
}
