/// `POST /v1/policies/explain`: the daemon's decision for a simulated caller, with reasons.
public struct ExplainRequest: Codable, Sendable {
    public var role: String
    public var user: String?
    public var uid: UInt32?
    public var groups: [String]?
    /// Defaults to the daemon's own environment and phi setting.
    public var environment: String?
    public var phi: Bool?

    public init(role: String, user: String?, uid: UInt32?, groups: [String]?, environment: String?, phi: Bool?) {
        self.role = role
        self.user = user
        self.uid = uid
        self.groups = groups
        self.environment = environment
        self.phi = phi
    }
}
