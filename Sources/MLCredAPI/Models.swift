/// The caller as the kernel describes it (SO_PEERCRED, SO_PEERGROUPS, /proc), never as it claims.
public struct Principal: Codable, Sendable, Equatable {
    public var uid: UInt32
    public var gid: UInt32
    public var user: String?
    public var pid: Int32
    /// Supplementary groups as gids, from SO_PEERGROUPS.
    public var groups: [UInt32]
    /// The systemd system unit the caller runs in, when it runs in one under `system.slice`.
    public var unit: String?

    enum CodingKeys: String, CodingKey { case uid, gid, user, pid, groups, unit }

    /// Every field is written, `user` and `unit` as null when unknown.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(uid, forKey: .uid)
        try container.encode(gid, forKey: .gid)
        try container.encode(user, forKey: .user)
        try container.encode(pid, forKey: .pid)
        try container.encode(groups, forKey: .groups)
        try container.encode(unit, forKey: .unit)
    }

    /// The JSON `encode(to:)` writes (keys sorted, as `APIJSON.encode`), written directly: every
    /// audit record carries it, and JSONEncoder made it a visible share of each request.
    public var json: String {
        "{\"gid\":\(gid),\"groups\":[\(groups.map(String.init).joined(separator: ","))],\"pid\":\(pid),\"uid\":\(uid),"
            + "\"unit\":\(JSONText.literal(unit)),\"user\":\(JSONText.literal(user))}"
    }

    public init(uid: UInt32, gid: UInt32, user: String?, pid: Int32, groups: [UInt32], unit: String?) {
        self.uid = uid
        self.gid = gid
        self.user = user
        self.pid = pid
        self.groups = groups
        self.unit = unit
    }

    /// A principal for actions the daemon takes on its own (expiry sweeps, start-up unseal).
    public static func daemon(uid: UInt32, gid: UInt32, pid: Int32) -> Principal {
        Principal(uid: uid, gid: gid, user: "mlcredd", pid: pid, groups: [], unit: nil)
    }
}

/// `GET /v1/status`.
public struct StatusResponse: Codable, Sendable, Equatable {
    public var initialized: Bool
    public var sealed: Bool
    public var environment: String
    public var phi: Bool
    public var version: String

    public init(initialized: Bool, sealed: Bool, environment: String, phi: Bool, version: String) {
        self.initialized = initialized
        self.sealed = sealed
        self.environment = environment
        self.phi = phi
        self.version = version
    }
}

/// `GET /v1/whoami`.
public struct WhoamiResponse: Codable, Sendable, Equatable {
    public var principal: Principal
    public var groupNames: [String]
    public var admin: Bool
    public var environment: String
    /// Roles this caller may assume in this environment.
    public var roles: [String]

    enum CodingKeys: String, CodingKey {
        case principal, admin, environment, roles
        case groupNames = "group_names"
    }

    public init(principal: Principal, groupNames: [String], admin: Bool, environment: String, roles: [String]) {
        self.principal = principal
        self.groupNames = groupNames
        self.admin = admin
        self.environment = environment
        self.roles = roles
    }
}

/// `POST /v1/vault/init` and `POST /v1/vault/unseal`: a passphrase, a 32-byte key (base64), or both (init only).
public struct VaultKeyRequest: Codable, Sendable {
    public var passphrase: String?
    /// Base64 of the 32-byte key file contents.
    public var key: String?

    public init(passphrase: String?, key: String?) {
        self.passphrase = passphrase
        self.key = key
    }
}

/// The vault's state after `init`, `unseal` or `seal`.
public struct VaultStateResponse: Codable, Sendable, Equatable {
    public var initialized: Bool
    public var sealed: Bool

    public init(initialized: Bool, sealed: Bool) {
        self.initialized = initialized
        self.sealed = sealed
    }
}

/// The value of one secret field: a string, or a number where SPEC allows one (`port`).
public enum SecretFieldValue: Codable, Sendable, Equatable {
    case string(String)
    case number(Int)

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            self = .string(text)
        } else if let number = try? container.decode(Int.self) {
            self = .number(number)
        } else {
            throw DecodingError.typeMismatch(
                String.self,
                DecodingError.Context(codingPath: decoder.codingPath, debugDescription: "a secret field must be a string or an integer"))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let text): try container.encode(text)
        case .number(let number): try container.encode(number)
        }
    }
}

/// `PUT /v1/secrets/{name}`.
public struct SecretPutRequest: Codable, Sendable {
    public var type: String
    public var phi: Bool?
    public var fields: [String: SecretFieldValue]

    public init(type: String, phi: Bool?, fields: [String: SecretFieldValue]) {
        self.type = type
        self.phi = phi
        self.fields = fields
    }
}

/// `POST /v1/secrets/{name}/generate`.
public struct SecretGenerateRequest: Codable, Sendable {
    public var type: String
    public var issuer: String?
    public var phi: Bool?

    public init(type: String, issuer: String?, phi: Bool?) {
        self.type = type
        self.issuer = issuer
        self.phi = phi
    }
}

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

    enum CodingKeys: String, CodingKey {
        case name, type, version, phi, error
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    public init(name: String, type: String, version: Int, phi: Bool, createdAt: String, updatedAt: String, error: String? = nil) {
        self.name = name
        self.type = type
        self.version = version
        self.phi = phi
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.error = error
    }
}

/// `GET /v1/secrets`.
public struct SecretListResponse: Codable, Sendable {
    public var secrets: [SecretMetadata]

    public init(secrets: [SecretMetadata]) { self.secrets = secrets }
}

/// The result of an audited action.
public enum AuditResult: String, Codable, Sendable {
    case allowed, denied, error
}

/// One audit record (SPEC §10). Never holds a secret, passphrase or token.
public struct AuditRecord: Codable, Sendable, Equatable {
    public var seq: Int64
    public var time: String
    public var principal: Principal
    public var action: String
    public var role: String?
    public var grant: String?
    public var result: AuditResult
    public var reason: String?
    public var accessor: String?
    /// Hex of the previous record's MAC; null while the record awaits the next unseal.
    public var prev: String?
    /// Hex of this record's keyed BLAKE2b MAC; null while the vault was sealed when it was written.
    public var mac: String?

    enum CodingKeys: String, CodingKey { case seq, time, principal, action, role, grant, result, reason, accessor, prev, mac }

    /// Every SPEC §10 field is written, absent values as null.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(seq, forKey: .seq)
        try container.encode(time, forKey: .time)
        try container.encode(principal, forKey: .principal)
        try container.encode(action, forKey: .action)
        try container.encode(role, forKey: .role)
        try container.encode(grant, forKey: .grant)
        try container.encode(result, forKey: .result)
        try container.encode(reason, forKey: .reason)
        try container.encode(accessor, forKey: .accessor)
        try container.encode(prev, forKey: .prev)
        try container.encode(mac, forKey: .mac)
    }

    public init(
        seq: Int64, time: String, principal: Principal, action: String, role: String?, grant: String?,
        result: AuditResult, reason: String?, accessor: String?, prev: String?, mac: String?
    ) {
        self.seq = seq
        self.time = time
        self.principal = principal
        self.action = action
        self.role = role
        self.grant = grant
        self.result = result
        self.reason = reason
        self.accessor = accessor
        self.prev = prev
        self.mac = mac
    }
}

/// `GET /v1/audit`.
public struct AuditPage: Codable, Sendable {
    public var records: [AuditRecord]

    public init(records: [AuditRecord]) { self.records = records }
}

/// `POST /v1/audit/verify`.
public struct AuditVerifyResponse: Codable, Sendable, Equatable {
    /// The last record of the chain, to compare with a copy kept elsewhere.
    public struct Head: Codable, Sendable, Equatable {
        public var seq: Int64
        public var mac: String

        public init(seq: Int64, mac: String) {
            self.seq = seq
            self.mac = mac
        }
    }

    /// The first record that failed, and why.
    public struct Broken: Codable, Sendable, Equatable {
        public var seq: Int64
        public var reason: String

        public init(seq: Int64, reason: String) {
            self.seq = seq
            self.reason = reason
        }
    }

    public var ok: Bool
    public var checked: Int64
    public var head: Head?
    public var firstBroken: Broken?

    enum CodingKeys: String, CodingKey {
        case ok, checked, head
        case firstBroken = "first_broken"
    }

    public init(ok: Bool, checked: Int64, head: Head?, firstBroken: Broken?) {
        self.ok = ok
        self.checked = checked
        self.head = head
        self.firstBroken = firstBroken
    }
}
