import Foundation
import GRDB
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

    init(row: Row) {
        name = row["name"]
        version = row["version"]
        type = row["type"]
        phi = (row["phi"] as Int) != 0
        sealed = (row["sealed"] as Data?).map { Array($0) }
        createdAt = row["created_at"]
        removedAt = row["removed_at"]
        generation = row["generation"] ?? 1
        rotateEvery = row["rotate_every"]
    }
}

/// Typed access to the database inside one job. Only `Store` hands these out; nothing outside
/// this module sees GRDB.
public struct StoreConnection {
    let db: Database
    let auditKey: AuditKeyHolder?

    // MARK: meta

    /// The value stored under `key` in `meta`, if any.
    public func meta(_ key: String) throws -> String? {
        try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key])
    }

    /// Removes `key` from `meta`, if present.
    public func removeMeta(_ key: String) throws {
        try db.execute(sql: "DELETE FROM meta WHERE key = ?", arguments: [key])
    }

    /// Every `meta` entry whose key starts with `prefix`, by key.
    public func metaValues(prefix: String) throws -> [String: String] {
        let rows = try Row.fetchAll(db, sql: "SELECT key, value FROM meta WHERE key >= ? AND key < ?", arguments: [prefix, prefix + "\u{FFFF}"])
        return Dictionary(uniqueKeysWithValues: rows.map { ($0["key"] as String, $0["value"] as String) })
    }

    /// Current secrets whose scheduled rotation is due at `now` (latest version older than its `rotate_every`).
    public func secretsDueForRotation(now: Double) throws -> [String] {
        try String.fetchAll(db, sql: """
            SELECT s.name FROM secrets s
            WHERE s.rotate_every IS NOT NULL AND s.removed_at IS NULL AND s.created_at + s.rotate_every <= ?
              AND s.version = (SELECT MAX(version) FROM secrets m WHERE m.name = s.name)
            """, arguments: [now])
    }

    /// Stored ciphertexts under a key generation older than `generation`, a batch at a time.
    public func secretsBelow(generation: Int, limit: Int) throws -> [SecretRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM secrets WHERE sealed IS NOT NULL AND generation < ? ORDER BY name, version LIMIT ?",
                         arguments: [generation, limit]).map(SecretRecord.init(row:))
    }

    /// Replaces one ciphertext by its re-encryption, if it is still under `from` (a concurrent
    /// removal or re-encryption wins). Returns whether it was replaced.
    @discardableResult
    public func reencryptSecret(name: String, version: Int, from: Int, to: Int, sealed: [UInt8]) throws -> Bool {
        try db.execute(sql: "UPDATE secrets SET sealed = ?, generation = ? WHERE name = ? AND version = ? AND generation = ? AND sealed IS NOT NULL",
                       arguments: [Data(sealed), to, name, version, from])
        return db.changesCount > 0
    }

    /// Stored ciphertexts not yet under `generation`.
    public func secretsPendingReencryption(generation: Int) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM secrets WHERE sealed IS NOT NULL AND generation < ?", arguments: [generation]) ?? 0
    }

    /// Stores `value` under `key` in `meta`, replacing any previous value.
    public func setMeta(_ key: String, _ value: String) throws {
        try db.execute(sql: "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                       arguments: [key, value])
    }

    // MARK: secrets

    /// The highest version ever written for `name` (removed or not), or 0.
    public func latestSecretVersion(_ name: String) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT MAX(version) FROM secrets WHERE name = ?", arguments: [name]) ?? 0
    }

    /// Inserts one new secret version.
    public func insertSecret(_ record: SecretRecord) throws {
        try db.execute(
            sql: "INSERT INTO secrets(name, version, type, phi, sealed, created_at, removed_at, generation, rotate_every) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?)",
            arguments: [record.name, record.version, record.type, record.phi ? 1 : 0, record.sealed.map { Data($0) }, record.createdAt,
                        record.generation, record.rotateEvery])
    }

    /// The latest version of `name` if it exists and was not removed.
    public func currentSecret(_ name: String) throws -> SecretRecord? {
        guard let row = try Row.fetchOne(try db.cachedStatement(sql: "SELECT * FROM secrets WHERE name = ? ORDER BY version DESC LIMIT 1"),
                                         arguments: [name]) else {
            return nil
        }
        let record = SecretRecord(row: row)
        return record.removedAt == nil ? record : nil
    }

    /// The latest version of every secret not removed, by name, with the first version's time.
    public func currentSecrets() throws -> [(record: SecretRecord, firstCreatedAt: Double)] {
        let rows = try Row.fetchAll(db, sql: """
            SELECT s.*, (SELECT MIN(created_at) FROM secrets f WHERE f.name = s.name) AS first_created_at
            FROM secrets s
            WHERE s.version = (SELECT MAX(version) FROM secrets m WHERE m.name = s.name) AND s.removed_at IS NULL
            ORDER BY s.name
            """)
        return rows.map { (SecretRecord(row: $0), $0["first_created_at"] as Double) }
    }

    /// Destroys every stored version of `name` (the ciphertext is deleted, metadata kept).
    /// Returns whether a current secret existed.
    public func removeSecret(_ name: String, at time: Double) throws -> Bool {
        guard try currentSecret(name) != nil else { return false }
        try db.execute(sql: "UPDATE secrets SET sealed = NULL, removed_at = ? WHERE name = ?", arguments: [time, name])
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
