import MLCredAPI
import MLCredPolicy

/// A stored secret, opened for one issuance. Lives only for the call.
public struct OpenedSecret: Sendable {
    public var name: String
    public var type: String
    public var phi: Bool
    public var fields: [String: String]

    public init(name: String, type: String, phi: Bool, fields: [String: String]) {
        self.name = name
        self.type = type
        self.phi = phi
        self.fields = fields
    }
}

/// What a provider needs to know about the issuance.
public struct IssuanceContext: Sendable {
    public var role: Role
    public var grant: Grant
    /// The principal as a JWT `sub` / session name source: the user name, or `uid:N`.
    public var subject: String
    public var accessor: String
    public var now: Double
    /// When the token (and so this lease) expires.
    public var expiresAt: Double

    public init(role: Role, grant: Grant, subject: String, accessor: String, now: Double, expiresAt: Double) {
        self.role = role
        self.grant = grant
        self.subject = subject
        self.accessor = accessor
        self.now = now
        self.expiresAt = expiresAt
    }
}

/// One derived credential.
public struct IssuedCredential: Sendable {
    /// Environment variables for the job.
    public var env: [String: String]
    /// What identifies the credential at its provider (JWT `jti`, role name, session name).
    public var providerID: String
    public var expiresAt: Double

    public init(env: [String: String], providerID: String, expiresAt: Double) {
        self.env = env
        self.providerID = providerID
        self.expiresAt = expiresAt
    }
}

/// A provider failure, with the API code it is answered with. Messages never hold secrets.
public struct ProviderError: Error, Sendable, CustomStringConvertible {
    public var code: APIErrorCode
    public var message: String

    public init(_ code: APIErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

/// Turns a secret and a grant into a short-lived credential (Vault's "secrets engine").
/// Adding a provider touches no other provider.
public protocol CredentialProvider: Sendable {
    /// The grant types this provider serves.
    var grantTypes: [GrantType] { get }
    /// Mints one credential.
    func issue(secret: OpenedSecret, context: IssuanceContext) async throws -> IssuedCredential
    /// Revokes a credential at its provider, where the provider allows it.
    func revoke(providerID: String, secret: OpenedSecret?, grant: Grant?) async throws
}

/// Default variable names: `GRANT_FIELD`, upper-cased, other characters as `_`.
public enum EnvironmentNames {
    public static func defaultName(grant: String, field: String) -> String {
        let raw = (grant + "_" + field).uppercased()
        return String(raw.map { ($0.isLetter && $0.isASCII) || ($0.isNumber && $0.isASCII) ? $0 : "_" })
    }
}
