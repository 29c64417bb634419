import MLCredAPI

/// Errors of vault operations. Each carries a message safe to show the caller (never a value,
/// passphrase or key) and maps to exactly one API error code.
public struct VaultError: Error, Sendable, CustomStringConvertible {
    /// The API error code this error is answered with.
    public let code: APIErrorCode
    /// A message for the caller.
    public let message: String

    public init(_ code: APIErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    static let uninitialized = VaultError(.uninitialized, "the vault is not initialized")
    static let sealed = VaultError(.sealed, "the vault is sealed")
    static let busy = VaultError(.conflict, "another vault operation (init, unseal or seal) is in progress; try again")

    /// A stored record failed authenticated decryption.
    static func corrupt(_ name: String, version: Int) -> VaultError {
        VaultError(.internal, "secret '\(name)' (version \(version)) failed to decrypt: its record was altered, moved or copied from another vault")
    }
}

/// The daemon refused to start: the vault was initialized with other settings.
public struct VaultSettingsMismatch: Error, Sendable, CustomStringConvertible {
    public let description: String
}
