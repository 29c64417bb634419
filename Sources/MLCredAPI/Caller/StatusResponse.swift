/// `GET /v1/status`.
public struct StatusResponse: Codable, Sendable, Equatable {
    public var initialized: Bool
    public var sealed: Bool
    public var environment: String
    public var phi: Bool
    public var version: String
    /// Emergency roles open now (break-glass, SPEC §13); absent when none is.
    public var emergencies: [EmergencyInfo]?
    /// The secret-encryption key generation, once `vault rotate` made one after the first.
    public var keyGeneration: Int?
    /// Stored records still under an older generation (the background re-encryption's progress).
    public var reencryptPending: Int?
    /// Shares brought toward an unseal, while some wait for the rest.
    public var unsealProgress: UnsealProgress?

    enum CodingKeys: String, CodingKey {
        case initialized, sealed, environment, phi, version, emergencies
        case keyGeneration = "key_generation"
        case reencryptPending = "reencrypt_pending"
        case unsealProgress = "unseal_progress"
    }

    public init(initialized: Bool, sealed: Bool, environment: String, phi: Bool, version: String, emergencies: [EmergencyInfo]? = nil) {
        self.emergencies = emergencies
        self.initialized = initialized
        self.sealed = sealed
        self.environment = environment
        self.phi = phi
        self.version = version
    }
}
