import MLCredAPI
import MLCredCrypto

/// One stored version of a secret, as it sits in the database: metadata in clear, value sealed.
public struct SecretRecord: Sendable, Equatable {
    public var name: String
    public var version: Int
    public var type: String
    public var phi: Bool
    /// nonce ‖ ciphertext; nil once the secret was removed.
    public var sealed: [UInt8]?
    public var createdAt: Double
    public var removedAt: Double?
    /// The key generation its ciphertext is under (1: the root-derived key; later: `vault rotate`).
    public var generation: Int = 1
    /// Seconds between scheduled rotations at the provider, if any.
    public var rotateEvery: Int?

    public init(name: String, version: Int, type: String, phi: Bool, sealed: [UInt8]?, createdAt: Double, removedAt: Double?,
                generation: Int = 1, rotateEvery: Int? = nil) {
        self.generation = generation
        self.rotateEvery = rotateEvery
        self.name = name
        self.version = version
        self.type = type
        self.phi = phi
        self.sealed = sealed
        self.createdAt = createdAt
        self.removedAt = removedAt
    }

    init(row: SQLRow) throws {
        name = try row.get("name")
        version = try row.get("version")
        type = try row.get("type")
        phi = try row.get("phi")
        sealed = try row.get("sealed")
        createdAt = try row.get("created_at")
        removedAt = try row.get("removed_at")
        generation = try row.get("generation") ?? 1
        rotateEvery = try row.get("rotate_every")
    }
}

/// Typed access to the store inside one job. Only `Store` hands these out; nothing outside
/// this module sees SQL, GRDB or PostgresNIO.
public struct StoreConnection {
    let session: any SQLSession
    let auditKey: AuditKeyHolder?
    /// The node this daemon is (SPEC §12): new tokens, leases and audit records carry it, and
    /// the queries of a node's own work (its chain, its bound tokens, its revocations) select by it.
    public let node: String

    init(session: any SQLSession, auditKey: AuditKeyHolder?, node: String) {
        self.session = session
        self.auditKey = auditKey
        self.node = node
    }

    var dialect: SQLDialect { session.dialect }

    // MARK: meta

    /// The value stored under `key` in `meta`, if any.
    public func meta(_ key: String) throws -> String? {
        try session.fetchScalar(String.self, "SELECT value FROM meta WHERE key = ?", key)
    }

    /// Removes `key` from `meta`, if present.
    public func removeMeta(_ key: String) throws {
        try session.execute("DELETE FROM meta WHERE key = ?", key)
    }

    /// Every `meta` entry whose key starts with `prefix`, by key.
    public func metaValues(prefix: String) throws -> [String: String] {
        let rows = try session.fetchAll("SELECT key, value FROM meta WHERE substr(key, 1, length(?)) = ?", prefix, prefix)
        return Dictionary(uniqueKeysWithValues: try rows.map { (try $0.get("key") as String, try $0.get("value") as String) })
    }

    /// Current secrets whose scheduled rotation is due at `now` (latest version older than its `rotate_every`).
    public func secretsDueForRotation(now: Double) throws -> [String] {
        try session.fetchColumn(String.self, """
            SELECT s.name FROM secrets s
            WHERE s.rotate_every IS NOT NULL AND s.removed_at IS NULL AND s.created_at + s.rotate_every <= ?
              AND s.version = (SELECT MAX(version) FROM secrets m WHERE m.name = s.name)
            """, now)
    }

    /// Stored ciphertexts under a key generation older than `generation`, a batch at a time.
    public func secretsBelow(generation: Int, limit: Int) throws -> [SecretRecord] {
        try session.fetchAll("SELECT * FROM secrets WHERE sealed IS NOT NULL AND generation < ? ORDER BY name, version LIMIT ?",
                             generation, limit).map(SecretRecord.init(row:))
    }

    /// Replaces one ciphertext by its re-encryption, if it is still under `from` (a concurrent
    /// removal or re-encryption wins). Returns whether it was replaced.
    @discardableResult
    public func reencryptSecret(name: String, version: Int, from: Int, to: Int, sealed: [UInt8]) throws -> Bool {
        try session.execute("UPDATE secrets SET sealed = ?, generation = ? WHERE name = ? AND version = ? AND generation = ? AND sealed IS NOT NULL",
                            SQLValue.blob(sealed), to, name, version, from) > 0
    }

    /// Stored ciphertexts not yet under `generation`.
    public func secretsPendingReencryption(generation: Int) throws -> Int {
        try session.fetchScalar(Int.self, "SELECT COUNT(*) FROM secrets WHERE sealed IS NOT NULL AND generation < ?", generation) ?? 0
    }

    /// Stores `value` under `key` in `meta`, replacing any previous value.
    public func setMeta(_ key: String, _ value: String) throws {
        try session.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", key, value)
    }

    /// Stores `value` under `key` only if `key` has no value yet; returns whether it did. Of
    /// two nodes racing (two `vault init` at once), exactly one wins, whatever the isolation level.
    public func insertMetaOnce(_ key: String, _ value: String) throws -> Bool {
        try session.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING", key, value) == 1
    }

    // MARK: secrets

    /// The highest version ever written for `name` (removed or not), or 0.
    public func latestSecretVersion(_ name: String) throws -> Int {
        try session.fetchScalar(Int.self, "SELECT MAX(version) FROM secrets WHERE name = ?", name) ?? 0
    }

    /// Inserts one new secret version.
    public func insertSecret(_ record: SecretRecord) throws {
        try session.execute(
            "INSERT INTO secrets(name, version, type, phi, sealed, created_at, removed_at, generation, rotate_every) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?)",
            record.name, record.version, record.type, record.phi, record.sealed.map { SQLValue.blob($0) } ?? .null, record.createdAt,
            record.generation, record.rotateEvery)
    }

    /// The latest version of `name` if it exists and was not removed.
    public func currentSecret(_ name: String) throws -> SecretRecord? {
        guard let row = try session.fetchOne("SELECT * FROM secrets WHERE name = ? ORDER BY version DESC LIMIT 1", name) else {
            return nil
        }
        let record = try SecretRecord(row: row)
        return record.removedAt == nil ? record : nil
    }

    /// The latest version of every secret not removed, by name, with the first version's time.
    public func currentSecrets() throws -> [(record: SecretRecord, firstCreatedAt: Double)] {
        let rows = try session.fetchAll("""
            SELECT s.*, (SELECT MIN(created_at) FROM secrets f WHERE f.name = s.name) AS first_created_at
            FROM secrets s
            WHERE s.version = (SELECT MAX(version) FROM secrets m WHERE m.name = s.name) AND s.removed_at IS NULL
            ORDER BY s.name
            """)
        return try rows.map { (try SecretRecord(row: $0), try $0.get("first_created_at") as Double) }
    }

    /// Destroys every stored version of `name` (the ciphertext is deleted, metadata kept).
    /// Returns whether a current secret existed.
    public func removeSecret(_ name: String, at time: Double) throws -> Bool {
        guard try currentSecret(name) != nil else { return false }
        try session.execute("UPDATE secrets SET sealed = NULL, removed_at = ? WHERE name = ?", time, name)
        return true
    }
}

extension StoreConnection {
    /// Installs (or with nil removes) the audit-chain key for this and every later write job.
    /// Only valid inside `Store.write`.
    public func installAuditKey(_ key: SecureBytes?) {
        auditKey?.key = key
    }
}
