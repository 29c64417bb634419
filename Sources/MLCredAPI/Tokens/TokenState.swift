/// A token's state as admins see it.
public enum TokenState: String, Codable, Sendable, CaseIterable, CustomStringConvertible {
    case active
    case expired
    case revoked

    /// The stored and wire spelling, also in messages.
    public var description: String { rawValue }
}
