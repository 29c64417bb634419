/// The vault's state after `init`, `unseal` or `seal`.
public struct VaultStateResponse: Codable, Sendable, Equatable {
    public var initialized: Bool
    public var sealed: Bool
    /// `init --shares`: the shares' text forms, shown once and never stored.
    public var shares: [String]?
    /// `unseal --share`: shares brought so far and how many unseal.
    public var progress: UnsealProgress?

    public init(initialized: Bool, sealed: Bool, shares: [String]? = nil, progress: UnsealProgress? = nil) {
        self.initialized = initialized
        self.sealed = sealed
        self.shares = shares
        self.progress = progress
    }
}

/// Shares brought toward an unseal ("K of N" in `status`).
public struct UnsealProgress: Codable, Sendable, Equatable {
    public var received: Int
    public var threshold: Int
    public var shares: Int
    public var sealed: Bool

    public init(received: Int, threshold: Int, shares: Int, sealed: Bool) {
        self.received = received
        self.threshold = threshold
        self.shares = shares
        self.sealed = sealed
    }
}
