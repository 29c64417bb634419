/// `GET /v1/whoami`.
public struct WhoamiResponse: Codable, Sendable, Equatable {
    public var principal: Principal
    public var groupNames: [String]
    public var admin: Bool
    public var environment: String
    /// Roles this caller may assume in this environment (emergency roles not among them).
    public var roles: [String]
    /// Emergency roles whose policy admits this caller: usable only while an emergency is open
    /// (SPEC §13). Absent from daemons before it was added.
    public var emergencyRoles: [String]?

    enum CodingKeys: String, CodingKey {
        case principal, admin, environment, roles
        case groupNames = "group_names"
        case emergencyRoles = "emergency_roles"
    }

    public init(principal: Principal, groupNames: [String], admin: Bool, environment: String, roles: [String],
                emergencyRoles: [String]? = nil) {
        self.principal = principal
        self.groupNames = groupNames
        self.admin = admin
        self.environment = environment
        self.roles = roles
        self.emergencyRoles = emergencyRoles
    }
}
