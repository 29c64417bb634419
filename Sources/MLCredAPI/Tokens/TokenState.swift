/// A token's state as admins see it.
public enum TokenState: String, Codable, Sendable, CaseIterable {
    case active
    case expired
    case revoked
}
