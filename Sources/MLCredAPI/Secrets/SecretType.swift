/// The types of stored secrets (SPEC §6); each grant type needs one (`GrantType.secretType`).
/// Stored and sent as the raw value.
public enum SecretType: String, Sendable, CaseIterable, CustomStringConvertible {
    case `static`
    case aws
    case postgres
    case jwtSigner = "jwt-signer"

    /// The name users type and read (`jwt-signer`), also in messages.
    public var description: String { rawValue }
}
