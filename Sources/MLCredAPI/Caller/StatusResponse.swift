/// `GET /v1/status`.
public struct StatusResponse: Codable, Sendable, Equatable {
    public var initialized: Bool
    public var sealed: Bool
    public var environment: String
    public var phi: Bool
    public var version: String

    public init(initialized: Bool, sealed: Bool, environment: String, phi: Bool, version: String) {
        self.initialized = initialized
        self.sealed = sealed
        self.environment = environment
        self.phi = phi
        self.version = version
    }
}
