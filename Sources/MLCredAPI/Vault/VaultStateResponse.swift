/// The vault's state after `init`, `unseal` or `seal`.
public struct VaultStateResponse: Codable, Sendable, Equatable {
    public var initialized: Bool
    public var sealed: Bool

    public init(initialized: Bool, sealed: Bool) {
        self.initialized = initialized
        self.sealed = sealed
    }
}
