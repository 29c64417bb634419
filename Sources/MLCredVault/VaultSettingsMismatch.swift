/// The daemon refused to start: the vault was initialized with other settings.
public struct VaultSettingsMismatch: Error, Sendable, CustomStringConvertible {
    /// What differs, and what to do about it.
    public let description: String
}
