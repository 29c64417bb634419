/// One node of the fleet as `GET /v1/fleet` shows it (SPEC §12).
public struct FleetNode: Codable, Sendable, Equatable {
    public var name: String
    /// Last heartbeat (RFC 3339 UTC), by the store's clock.
    public var lastSeen: String
    /// Seconds since that heartbeat, by the store's clock.
    public var silentFor: Double
    /// Silent past its timeout: its leases are taken over by the live nodes.
    public var silent: Bool
    public var timeout: Double
    public var version: String
    public var environment: String
    public var phi: Bool
    public var sealed: Bool
    public var policyDigest: String
    public var tokens: Int
    public var leases: Int
    /// Its environment's live nodes run different policy sets.
    public var drift: Bool
    /// The node that answered.
    public var answering: Bool

    enum CodingKeys: String, CodingKey {
        case name, silent, timeout, version, environment, phi, sealed, tokens, leases, drift, answering
        case lastSeen = "last_seen"
        case silentFor = "silent_for"
        case policyDigest = "policy_digest"
    }

    public init(name: String, lastSeen: String, silentFor: Double, silent: Bool, timeout: Double, version: String, environment: String,
                phi: Bool, sealed: Bool, policyDigest: String, tokens: Int, leases: Int, drift: Bool, answering: Bool) {
        self.name = name
        self.lastSeen = lastSeen
        self.silentFor = silentFor
        self.silent = silent
        self.timeout = timeout
        self.version = version
        self.environment = environment
        self.phi = phi
        self.sealed = sealed
        self.policyDigest = policyDigest
        self.tokens = tokens
        self.leases = leases
        self.drift = drift
        self.answering = answering
    }
}

/// Where a daemon keeps its state (SPEC §12 `--store`).
public enum StoreKind: String, Codable, Sendable {
    /// One node: `STATE_DIR/mlcred.db`.
    case sqlite
    /// A fleet sharing one PostgreSQL database.
    case postgres
}

/// `GET /v1/fleet`: every node's row, and policy drift in words.
public struct FleetStatusResponse: Codable, Sendable, Equatable {
    public var store: StoreKind
    public var nodes: [FleetNode]
    /// One line per environment whose live nodes run different policy digests.
    public var drift: [String]

    public init(store: StoreKind, nodes: [FleetNode], drift: [String]) {
        self.store = store
        self.nodes = nodes
        self.drift = drift
    }
}

/// `DELETE /v1/fleet/nodes/{name}`: the node forgotten, and how many of its live tokens were
/// revoked with it.
public struct FleetForgetResponse: Codable, Sendable, Equatable {
    public var node: String
    public var revokedTokens: Int

    enum CodingKeys: String, CodingKey {
        case node
        case revokedTokens = "revoked_tokens"
    }

    public init(node: String, revokedTokens: Int) {
        self.node = node
        self.revokedTokens = revokedTokens
    }
}
