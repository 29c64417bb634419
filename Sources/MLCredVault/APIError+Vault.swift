import MLCredAPI
import MLCredStore

/// The vault's recurring errors, worded once.
extension APIError {
    static let uninitialized = APIError(.uninitialized, "the vault is not initialized")
    static let sealed = APIError(.sealed, "the vault is sealed")
    static let vaultBusy = APIError(.vaultBusy, "another vault operation (init, unseal or seal) is in progress; try again")

    /// A stored record failed authenticated decryption.
    static func corrupt(_ name: String, version: Int) -> APIError {
        APIError(.secretCorrupt, "secret '\(name)' (version \(version)) failed to decrypt: its record was altered, moved or copied from another vault")
    }

    /// No current secret has this name.
    static func secretMissing(_ name: String) -> APIError {
        APIError(.secretMissing, "no secret named '\(name)'")
    }

    /// A lower layer's failure, worded without its internals beyond their description.
    static func storage(_ error: any Error) -> APIError {
        StoreError.apiError(for: error)
    }
}
