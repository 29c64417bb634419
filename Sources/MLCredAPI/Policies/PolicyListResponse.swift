/// `GET /v1/policies` and the answer of a successful reload.
public struct PolicyListResponse: Codable, Sendable {
    public var directory: String
    public var digest: String
    public var loadedAt: String
    public var roles: [RoleSummary]

    enum CodingKeys: String, CodingKey {
        case directory, digest, roles
        case loadedAt = "loaded_at"
    }

    public init(directory: String, digest: String, loadedAt: String, roles: [RoleSummary]) {
        self.directory = directory
        self.digest = digest
        self.loadedAt = loadedAt
        self.roles = roles
    }
}
