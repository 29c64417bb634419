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
    /// Variables of `env` that are not secret (region, host, port): left unmasked in job output.
    public var plain: Set<String>
    /// What identifies the credential at its provider (JWT `jti`, role name, session name).
    public var providerID: String
    public var expiresAt: Double
    /// Non-secret data the provider needs later to renew or revoke (stored with the lease).
    public var providerState: String?

    public init(env: [String: String], plain: Set<String> = [], providerID: String, expiresAt: Double, providerState: String? = nil) {
        self.env = env
        self.plain = plain
        self.providerID = providerID
        self.expiresAt = expiresAt
        self.providerState = providerState
    }
}

/// A stored lease as a provider sees it when renewing or revoking.
public struct LeaseHandle: Sendable {
    public var providerID: String
    public var grant: String
    /// What `IssuedCredential.providerState` held at issue.
    public var providerState: String?

    public init(providerID: String, grant: String, providerState: String?) {
        self.providerID = providerID
        self.grant = grant
        self.providerState = providerState
    }
}

/// Turns a secret and a grant into a short-lived credential (Vault's "secrets engine").
/// Adding a provider touches no other provider.
public protocol CredentialProvider: Sendable {
    /// The grant types this provider serves.
    var grantTypes: [GrantType] { get }
    /// Whether a credential can be ended at its provider before it expires, so that a failed
    /// revocation is worth retrying (PostgreSQL roles: yes; STS sessions, JWTs: no).
    var revocable: Bool { get }
    /// Whether a credential's expiry can be moved at its provider.
    var renewable: Bool { get }
    /// Mints one credential. A provider that fails leaves nothing behind at its end.
    func issue(secret: OpenedSecret, context: IssuanceContext) async throws -> IssuedCredential
    /// Moves a credential's expiry to `expiresAt` (only called when `renewable`).
    func renew(lease: LeaseHandle, secret: OpenedSecret, expiresAt: Double) async throws
    /// Ends a credential at its provider (only called when `revocable`). Idempotent: a
    /// credential already gone counts as revoked.
    func revoke(lease: LeaseHandle, secret: OpenedSecret) async throws
    /// Wipes any key material the provider keeps between calls (the vault is being sealed).
    func forgetKeys()
}

extension CredentialProvider {
    public var revocable: Bool { false }
    public var renewable: Bool { false }
    public func renew(lease: LeaseHandle, secret: OpenedSecret, expiresAt: Double) async throws {}
    public func revoke(lease: LeaseHandle, secret: OpenedSecret) async throws {}
    public func forgetKeys() {}
}

/// Default variable names: `GRANT_FIELD`, upper-cased, other characters as `_`.
public enum EnvironmentNames {
    public static func defaultName(grant: String, field: String) -> String {
        let raw = (grant + "_" + field).uppercased()
        return String(raw.map { ($0.isLetter && $0.isASCII) || ($0.isNumber && $0.isASCII) ? $0 : "_" })
    }
}
