/// The daemon refused to start: the vault was initialized with other settings.
public struct VaultSettingsMismatch: Error, Sendable, CustomStringConvertible {
    public let description: String
}
