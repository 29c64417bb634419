import Foundation
import GRDB
import MLCredStore

/// A second group-commit floor, of the same shape as the daemon's two commits: the same
/// schema (made by `Store`, so every index the daemon maintains is there), and per operation
/// the rows a token issue + jwt fetch write, of their real sizes (a token and its audit record;
/// a lease and its audit record), by the simplest loop: `writers` threads sharing fsyncs, one
/// committer, no HTTP, no crypto, no broker. The plain floor (`GroupCommitFloor`, one 200-byte
/// row per commit) says what the disk allows; this one says what these rows on this disk
/// allow, so the gap between it and the daemon is the daemon's own path.
final class ShapedCommitFloor: @unchecked Sendable {
    let committer: FloorCommitter<Rows>

    /// One commit's rows: a token issue's or a credential fetch's. Their random parts are made
    /// by the writer threads, outside the committer's loop (as the daemon's are).
    enum Rows {
        case token(accessor: String, hash: String, prev: String, mac: String)
        case lease(accessor: String, id: String, providerID: String, prev: String, mac: String)
    }

    init(path: String) throws {
        // The daemon's schema and migrations, then the store is left alone (it writes nothing more).
        _ = try Store(path: path)
        let principal = #"{"gid":0,"groups":[],"pid":21444,"uid":0,"unit":null,"user":"root"}"#
        var seq: Int64 = 0  // the audit sequence, as the daemon's chain keeps it
        committer = try FloorCommitter(path: path, name: "same-shape floor") { db, batch in
            let now = Date().timeIntervalSince1970
            for rows in batch {
                seq += 1
                switch rows {
                case .token(let accessor, let hash, let prev, let mac):
                    try db.execute(sql: """
                        INSERT INTO tokens(accessor, token_hash, role, phi, uid, user, pid, issued_at, expires_at, max_expires_at, node)
                        VALUES (?, ?, 'bench', 0, 0, 'root', 21444, ?, ?, ?, 'vm')
                        """, arguments: [accessor, hash, now, now + 3600, now + 7200])
                    try db.execute(sql: """
                        INSERT INTO audit(seq, time, principal, action, role, result, reason, accessor, prev, mac, node)
                        VALUES (?, '2026-12-03T17:21:11.782Z', ?, 'token.issue', 'bench', 'allowed', 'principal uid:0 matches', ?, ?, ?, 'vm')
                        """, arguments: [seq, principal, accessor, prev, mac])
                case .lease(let accessor, let id, let providerID, let prev, let mac):
                    try db.execute(sql: """
                        INSERT INTO leases(id, accessor, role, grant_name, type, secret, provider_id, created_at, expires_at, state, node)
                        VALUES (?, ?, 'bench', 'signer', 'jwt', 'signer', ?, ?, ?, 'active', 'vm')
                        """, arguments: [id, accessor, providerID, now, now + 3600])
                    try db.execute(sql: """
                        INSERT INTO audit(seq, time, principal, action, role, grant_name, result, reason, accessor, prev, mac, node)
                        VALUES (?, '2026-12-03T17:21:11.782Z', ?, 'credential.issue', 'bench', 'signer', 'allowed', ?, ?, ?, ?, 'vm')
                        """, arguments: [seq, principal, "jwt lease \(id) (\(providerID))", accessor, prev, mac])
                }
            }
        }
        seq = try committer.database.read { db in try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(seq), 0) FROM audit") ?? 0 }
    }

    func stop() { committer.stop() }

    /// `count` random hex digits.
    static func hex(_ count: Int) -> String {
        String((0..<((count + 15) / 16)).map { _ in String(format: "%016llx", UInt64.random(in: 0...UInt64.max)) }.joined().prefix(count))
    }

    /// A time-ordered identifier of the daemon's form (48-bit milliseconds, 48 random bits).
    static func identifier() -> String {
        String(format: "%012llx", UInt64(Date().timeIntervalSince1970 * 1000)) + hex(12)
    }
}

/// A bench worker of the same-shape floor: a token's commit, then a lease's under it.
final class ShapedCommitWorker: Worker {
    let floor: ShapedCommitFloor
    let id: Int

    init(floor: ShapedCommitFloor, id: Int) {
        self.floor = floor
        self.id = id
    }

    func operate() throws {
        let hex = ShapedCommitFloor.hex
        let accessor = ShapedCommitFloor.identifier()
        floor.committer.commit(writer: id, .token(accessor: accessor, hash: hex(64), prev: hex(64), mac: hex(64)))
        floor.committer.commit(writer: id, .lease(accessor: accessor, id: ShapedCommitFloor.identifier(), providerID: hex(32), prev: hex(64), mac: hex(64)))
    }
}
