/// A lease's life (SPEC §7). Changes of state are functions of the old state, here, not
/// assignments spread over the broker.
public enum LeaseState: String, Codable, Sendable, CaseIterable, CustomStringConvertible {
    /// Issued and in force.
    case active
    /// Ended here; its provider has not been told yet.
    case revoking
    /// Ended here; its provider refused or could not be reached: retried with backoff.
    case revokeFailed = "revoke_failed"
    /// Ended here and, where the provider can end it early, there too.
    case revoked
    /// Reached its end of life.
    case expired

    /// Whether its provider still has to be told that it ended.
    public var owedToProvider: Bool { self == .revoking || self == .revokeFailed }

    /// The state once the lease ends here: `revoking` while a provider that can end it early
    /// has not been told (and was not already told), else `revoked` (or `expired` when its time ran out).
    /// An ended lease keeps its state.
    public func ended(revocableAtProvider: Bool, expired: Bool = false) -> LeaseState {
        guard self == .active else { return self }
        if revocableAtProvider { return .revoking }
        return expired ? .expired : .revoked
    }

    /// The stored and wire spelling, also in messages.
    public var description: String { rawValue }
}
