/// `POST /v1/tokens`.
public struct TokenRequest: Codable, Sendable {
    public var role: String
    /// A duration such as `30m`; capped at the role's ttl.
    public var ttl: String?
    /// `process`: bind the token to the calling process (what `mlcred run` asks for); the daemon
    /// revokes it when that process is gone. Required for phi roles.
    public var bind: String?
    /// Also mint the role's credentials, stored with the token in one transaction.
    public var credentials: Bool?
    /// With `credentials`: how AWS grants are handled (`AWSGrantMode`); default `mint`.
    public var aws: String?

    public init(role: String, ttl: String?, bind: String?, credentials: Bool? = nil, aws: String? = nil) {
        self.role = role
        self.ttl = ttl
        self.bind = bind
        self.credentials = credentials
        self.aws = aws
    }
}

/// How a credentials request treats AWS grants.
public enum AWSGrantMode: String, Codable, Sendable {
    /// Mint STS credentials now, like any other grant (`mlcred env`).
    case mint
    /// Mint nothing for AWS grants now; describe them instead, so the caller can write an AWS
    /// config whose `credential_process` fetches credentials when the SDK wants them (`mlcred run`).
    case `defer`
    /// Mint only the AWS grants (`mlcred credential-process` without `--grant`).
    case only
}

/// The answer to `POST /v1/tokens`. The only place a token text ever appears.
public struct TokenResponse: Codable, Sendable {
    public var token: String
    public var accessor: String
    public var role: String
    public var phi: Bool
    public var expiresAt: String
    public var maxExpiresAt: String
    /// The role's credentials, when the request asked for them.
    public var credentials: CredentialsResponse?

    enum CodingKeys: String, CodingKey {
        case token, accessor, role, phi, credentials
        case expiresAt = "expires_at"
        case maxExpiresAt = "max_expires_at"
    }

    public init(token: String, accessor: String, role: String, phi: Bool, expiresAt: String, maxExpiresAt: String,
                credentials: CredentialsResponse? = nil) {
        self.token = token
        self.accessor = accessor
        self.role = role
        self.phi = phi
        self.expiresAt = expiresAt
        self.maxExpiresAt = maxExpiresAt
        self.credentials = credentials
    }
}

/// `POST /v1/tokens/renew`.
public struct RenewRequest: Codable, Sendable {
    public var ttl: String?

    public init(ttl: String?) { self.ttl = ttl }
}

/// A token as admins see it: never the token itself.
public struct TokenInfo: Codable, Sendable, Equatable {
    public var accessor: String
    public var role: String
    public var phi: Bool
    public var uid: UInt32
    public var user: String?
    public var pid: Int32
    public var bound: Bool
    public var issuedAt: String
    public var expiresAt: String
    public var maxExpiresAt: String
    /// `active`, `revoked` or `expired`.
    public var state: TokenState
    public var revokeReason: String?

    enum CodingKeys: String, CodingKey {
        case accessor, role, phi, uid, user, pid, bound, state
        case issuedAt = "issued_at"
        case expiresAt = "expires_at"
        case maxExpiresAt = "max_expires_at"
        case revokeReason = "revoke_reason"
    }

    public init(accessor: String, role: String, phi: Bool, uid: UInt32, user: String?, pid: Int32, bound: Bool,
                issuedAt: String, expiresAt: String, maxExpiresAt: String, state: TokenState, revokeReason: String?) {
        self.accessor = accessor
        self.role = role
        self.phi = phi
        self.uid = uid
        self.user = user
        self.pid = pid
        self.bound = bound
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.maxExpiresAt = maxExpiresAt
        self.state = state
        self.revokeReason = revokeReason
    }
}

/// `GET /v1/tokens`.
public struct TokenListResponse: Codable, Sendable {
    public var tokens: [TokenInfo]

    public init(tokens: [TokenInfo]) { self.tokens = tokens }
}

/// `POST /v1/credentials`.
public struct CredentialsRequest: Codable, Sendable {
    /// Grant names to fetch; nil = every grant of the role in this environment.
    public var grants: [String]?
    /// How AWS grants are handled (`AWSGrantMode`); default `mint`.
    public var aws: String?

    public init(grants: [String]?, aws: AWSGrantMode? = nil) {
        self.grants = grants
        self.aws = aws?.rawValue
    }
}

/// An AWS grant left for the job's SDK to fetch through `credential_process`.
public struct DeferredAWSGrant: Codable, Sendable, Equatable {
    public var grant: String
    public var region: String?
    public var endpointURL: String?

    enum CodingKeys: String, CodingKey {
        case grant, region
        case endpointURL = "endpoint_url"
    }

    public init(grant: String, region: String?, endpointURL: String?) {
        self.grant = grant
        self.region = region
        self.endpointURL = endpointURL
    }
}

/// The answer to a revocation (`POST /v1/tokens/revoke`, `/v1/tokens/{accessor}/revoke`,
/// `/v1/leases/{id}/revoke`): what was revoked (`true`, or the accessor or lease id), leases
/// whose provider has not confirmed yet (retried by the daemon), and credentials that stay
/// valid at their provider until they expire (STS sessions, JWTs, static values).
public struct RevocationResponse<Revoked: Codable & Sendable>: Codable, Sendable {
    public var revoked: Revoked
    public var unconfirmed: [LeaseInfo]
    public var stillValid: [LeaseInfo]

    enum CodingKeys: String, CodingKey {
        case revoked, unconfirmed
        case stillValid = "still_valid"
    }

    public init(revoked: Revoked, unconfirmed: [LeaseInfo], stillValid: [LeaseInfo]) {
        self.revoked = revoked
        self.unconfirmed = unconfirmed
        self.stillValid = stillValid
    }
}

/// One lease (SPEC §7).
public struct LeaseInfo: Codable, Sendable, Equatable {
    public var id: String
    public var accessor: String
    public var role: String
    public var grant: String
    public var type: String
    public var providerID: String
    public var expiresAt: String
    public var state: LeaseState
    public var lastError: String?

    enum CodingKeys: String, CodingKey {
        case id, accessor, role, grant, type, state
        case providerID = "provider_id"
        case expiresAt = "expires_at"
        case lastError = "last_error"
    }

    /// Encodes every SPEC §7 field, `last_error` as null when there is none.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(accessor, forKey: .accessor)
        try container.encode(role, forKey: .role)
        try container.encode(grant, forKey: .grant)
        try container.encode(type, forKey: .type)
        try container.encode(providerID, forKey: .providerID)
        try container.encode(expiresAt, forKey: .expiresAt)
        try container.encode(state, forKey: .state)
        try container.encode(lastError, forKey: .lastError)
    }

    public init(id: String, accessor: String, role: String, grant: String, type: String, providerID: String,
                expiresAt: String, state: LeaseState, lastError: String?) {
        self.id = id
        self.accessor = accessor
        self.role = role
        self.grant = grant
        self.type = type
        self.providerID = providerID
        self.expiresAt = expiresAt
        self.state = state
        self.lastError = lastError
    }
}

/// The answer to `POST /v1/credentials`.
public struct CredentialsResponse: Codable, Sendable {
    /// Environment variables for the job.
    public var env: [String: String]
    /// Files for the job: relative name → content (none yet: `mlcred run` writes the AWS config itself).
    public var files: [String: String]
    public var leases: [LeaseInfo]
    public var expiresAt: String
    /// Variables of `env` whose values are not secret (a region, a host, a port): not masked.
    public var plain: [String]?
    /// AWS grants left for `credential_process` (requests with `aws: defer`).
    public var aws: [DeferredAWSGrant]?

    enum CodingKeys: String, CodingKey {
        case env, files, leases, plain, aws
        case expiresAt = "expires_at"
    }

    public init(env: [String: String], files: [String: String], leases: [LeaseInfo], expiresAt: String,
                plain: [String]? = nil, aws: [DeferredAWSGrant]? = nil) {
        self.env = env
        self.files = files
        self.leases = leases
        self.expiresAt = expiresAt
        self.plain = plain
        self.aws = aws
    }
}

/// `GET /v1/leases`.
public struct LeaseListResponse: Codable, Sendable {
    public var leases: [LeaseInfo]

    public init(leases: [LeaseInfo]) { self.leases = leases }
}

/// `GET /v1/jwks`: the public keys of every jwt-signer secret.
public struct JWKSet: Codable, Sendable {
    public struct Key: Codable, Sendable {
        public var kty = "OKP"
        public var crv = "Ed25519"
        public var alg = "EdDSA"
        public var use = "sig"
        public var kid: String
        public var x: String

        public init(kid: String, x: String) {
            self.kid = kid
            self.x = x
        }
    }

    public var keys: [Key]

    public init(keys: [Key]) { self.keys = keys }
}

/// A role as `GET /v1/policies` shows it.
public struct RoleSummary: Codable, Sendable, Equatable {
    public struct GrantSummary: Codable, Sendable, Equatable {
        public var name: String
        public var type: String
        public var secret: String
        public var environments: [String]?

        public init(name: String, type: String, secret: String, environments: [String]?) {
            self.name = name
            self.type = type
            self.secret = secret
            self.environments = environments
        }
    }

    public var name: String
    public var file: String
    public var phi: Bool
    public var environments: [String]?
    public var principals: [String]
    public var ttl: String
    public var maxTTL: String
    public var grants: [GrantSummary]

    enum CodingKeys: String, CodingKey {
        case name, file, phi, environments, principals, ttl, grants
        case maxTTL = "max_ttl"
    }

    public init(name: String, file: String, phi: Bool, environments: [String]?, principals: [String], ttl: String, maxTTL: String,
                grants: [GrantSummary]) {
        self.name = name
        self.file = file
        self.phi = phi
        self.environments = environments
        self.principals = principals
        self.ttl = ttl
        self.maxTTL = maxTTL
        self.grants = grants
    }
}

/// `GET /v1/policies` and the answer of a successful reload.
public struct PolicyListResponse: Codable, Sendable {
    public var directory: String
    public var digest: String
    public var loadedAt: String
    public var roles: [RoleSummary]

    enum CodingKeys: String, CodingKey {
        case directory, digest, roles
        case loadedAt = "loaded_at"
    }

    public init(directory: String, digest: String, loadedAt: String, roles: [RoleSummary]) {
        self.directory = directory
        self.digest = digest
        self.loadedAt = loadedAt
        self.roles = roles
    }
}

/// `POST /v1/policies/explain`: the daemon's decision for a simulated caller, with reasons.
public struct ExplainRequest: Codable, Sendable {
    public var role: String
    public var user: String?
    public var uid: UInt32?
    public var groups: [String]?
    /// Defaults to the daemon's own environment and phi setting.
    public var environment: String?
    public var phi: Bool?

    public init(role: String, user: String?, uid: UInt32?, groups: [String]?, environment: String?, phi: Bool?) {
        self.role = role
        self.user = user
        self.uid = uid
        self.groups = groups
        self.environment = environment
        self.phi = phi
    }
}

/// A decision and its chain of reasons.
public struct ExplainResponse: Codable, Sendable {
    public var allowed: Bool
    public var reasons: [String]

    public init(allowed: Bool, reasons: [String]) {
        self.allowed = allowed
        self.reasons = reasons
    }
}
