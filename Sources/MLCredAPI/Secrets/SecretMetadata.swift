/// What is known about a secret without revealing it.
public struct SecretMetadata: Codable, Sendable, Equatable {
    public var name: String
    public var type: String
    public var version: Int
    public var phi: Bool
    public var createdAt: String
    public var updatedAt: String
    /// Set by `GET /v1/secrets` when the latest version fails to decrypt (record altered or moved).
    public var error: String?
    /// The key generation its ciphertext is under (`vault rotate`).
    public var generation: Int?
    /// The rotation schedule in seconds (`rotate_every`), if any.
    public var rotateEverySeconds: Int?

    enum CodingKeys: String, CodingKey {
        case name, type, version, phi, error, generation
        case rotateEverySeconds = "rotate_every_seconds"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    public init(name: String, type: String, version: Int, phi: Bool, createdAt: String, updatedAt: String, error: String? = nil,
                generation: Int? = nil, rotateEverySeconds: Int? = nil) {
        self.generation = generation
        self.rotateEverySeconds = rotateEverySeconds
        self.name = name
        self.type = type
        self.version = version
        self.phi = phi
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.error = error
    }
}

/// The answer to `POST /v1/secrets/{name}/rotate`.
public struct SecretRotateResponse: Codable, Sendable, Equatable {
    public var name: String
    /// The version holding the new credential.
    public var version: Int
    /// What was replaced: the old access key's id, or "password".
    public var replaced: String
    /// Whether the old credential is gone at the provider.
    public var oldRemoved: Bool
    /// What an admin must still do, if anything.
    public var note: String?

    enum CodingKeys: String, CodingKey {
        case name, version, replaced, note
        case oldRemoved = "old_removed"
    }

    public init(name: String, version: Int, replaced: String, oldRemoved: Bool, note: String?) {
        self.name = name
        self.version = version
        self.replaced = replaced
        self.oldRemoved = oldRemoved
        self.note = note
    }
}
