/// A role as `GET /v1/policies` shows it.
public struct RoleSummary: Codable, Sendable, Equatable {
    public struct GrantSummary: Codable, Sendable, Equatable {
        public var name: String
        public var type: String
        public var secret: String
        public var environments: [String]?

        public init(name: String, type: String, secret: String, environments: [String]?) {
            self.name = name
            self.type = type
            self.secret = secret
            self.environments = environments
        }
    }

    public var name: String
    public var file: String
    public var phi: Bool
    public var environments: [String]?
    public var principals: [String]
    public var ttl: String
    public var maxTTL: String
    public var grants: [GrantSummary]

    enum CodingKeys: String, CodingKey {
        case name, file, phi, environments, principals, ttl, grants
        case maxTTL = "max_ttl"
    }

    public init(name: String, file: String, phi: Bool, environments: [String]?, principals: [String], ttl: String, maxTTL: String,
                grants: [GrantSummary]) {
        self.name = name
        self.file = file
        self.phi = phi
        self.environments = environments
        self.principals = principals
        self.ttl = ttl
        self.maxTTL = maxTTL
        self.grants = grants
    }
}
