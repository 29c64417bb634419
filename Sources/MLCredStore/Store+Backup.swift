import Glibc
import GRDB
import MLCredAPI

/// What a snapshot holds, as far as can be told without the vault's keys: its audit record
/// count and last record (the head an admin compares after a restore, once unsealed).
public struct SnapshotSummary: Sendable, Equatable {
    public var records: Int64
    public var head: AuditVerifyResponse.Head?
}

extension Store {
    /// Writes a consistent copy of the whole database to `path` (a new file, 0600) with SQLite's
    /// online backup API, from a read snapshot: writers go on meanwhile (SPEC §13 `vault backup`).
    /// The copy holds what the store holds: ciphertext, keyed hashes and metadata.
    public func snapshot(to path: String) async throws -> SnapshotSummary {
        guard let pool = sqlite?.pool else {
            throw StoreError.database("vault backup copies the SQLite store; a PostgreSQL store is backed up with pg_dump or pg_basebackup (docs/fleet.md)")
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw StoreError.database("cannot create the snapshot file: \(String(cString: strerror(errno)))") }
        close(fd)
        do {
            let destination = try DatabaseQueue(path: path)
            // On a reader of the pool (GRDB's own queue, not a cooperative thread): a read
            // transaction's snapshot, copied page by page while writers go on.
            try await pool.read { db in
                try destination.writeWithoutTransaction { target in try db.backup(to: target) }
            }
            try destination.close()
            return try Self.summarize(snapshot: path)
        } catch let error as DatabaseError {
            unlink(path)
            throw StoreError.database(error.message ?? "\(error.resultCode)")
        }
    }

    /// Checks a snapshot without the vault's keys: SQLite's integrity check, an initialized
    /// vault's settings, an audit log without gaps. Returns its summary; throws naming what is wrong.
    public static func summarize(snapshot path: String) throws -> SnapshotSummary {
        var readOnly = Configuration()
        readOnly.readonly = true
        do {
            let queue = try DatabaseQueue(path: path, configuration: readOnly)
            defer { try? queue.close() }
            return try queue.read { db in
                let integrity = try String.fetchAll(db, sql: "PRAGMA integrity_check")
                guard integrity == ["ok"] else {
                    throw StoreError.database("the snapshot is damaged: \(integrity.prefix(3).joined(separator: "; "))")
                }
                guard try db.tableExists("meta"), try db.tableExists("audit"),
                      try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'vault.settings'") != nil else {
                    throw StoreError.database("the file is not an initialized mlcred vault")
                }
                let row = try Row.fetchOne(db, sql: "SELECT COUNT(*) AS n, MIN(seq) AS low, MAX(seq) AS high FROM audit")
                let count: Int64 = row?["n"] ?? 0
                if count > 0 {
                    let low: Int64 = row?["low"] ?? 0
                    let high: Int64 = row?["high"] ?? 0
                    guard low == 1, high == count else {
                        throw StoreError.database("the snapshot's audit log has gaps (records 1-\(high), \(count) present)")
                    }
                }
                let last = try Row.fetchOne(db, sql: "SELECT seq, mac FROM audit ORDER BY seq DESC LIMIT 1")
                let head = last.flatMap { row -> AuditVerifyResponse.Head? in
                    guard let mac: String = row["mac"] else { return nil }
                    return AuditVerifyResponse.Head(seq: row["seq"], mac: mac)
                }
                return SnapshotSummary(records: count, head: head)
            }
        } catch let error as DatabaseError {
            throw StoreError.database("the snapshot cannot be read: \(error.message ?? "\(error.resultCode)")")
        }
    }

    /// Restores `snapshot` into `path`, which must not exist (an empty state directory): checked
    /// first (`summarize`), then copied with the backup API into a fresh database.
    public static func restore(snapshot: String, into path: String) throws -> SnapshotSummary {
        let summary = try summarize(snapshot: snapshot)
        guard access(path, F_OK) != 0 else {
            throw StoreError.database("\(path) exists: restore only into an empty state directory")
        }
        do {
            var readOnly = Configuration()
            readOnly.readonly = true
            let source = try DatabaseQueue(path: snapshot, configuration: readOnly)
            let destination = try DatabaseQueue(path: path)
            try source.backup(to: destination)
            try destination.close()
            try source.close()
            chmod(path, 0o600)
        } catch let error as DatabaseError {
            unlink(path)
            throw StoreError.database("the restore failed: \(error.message ?? "\(error.resultCode)")")
        }
        return summary
    }
}
