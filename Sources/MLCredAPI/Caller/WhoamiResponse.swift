/// `GET /v1/whoami`.
public struct WhoamiResponse: Codable, Sendable, Equatable {
    public var principal: Principal
    public var groupNames: [String]
    public var admin: Bool
    public var environment: String
    /// Roles this caller may assume in this environment.
    public var roles: [String]

    enum CodingKeys: String, CodingKey {
        case principal, admin, environment, roles
        case groupNames = "group_names"
    }

    public init(principal: Principal, groupNames: [String], admin: Bool, environment: String, roles: [String]) {
        self.principal = principal
        self.groupNames = groupNames
        self.admin = admin
        self.environment = environment
        self.roles = roles
    }
}
