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
    private let database: DatabaseQueue
    private let condition = NSCondition()
    /// Writers waiting for the next commit, with what they write.
    private var pending: [(writer: Int, rows: Rows)] = []
    private var committed: [Int: Int] = [:]
    private var stopped = false
    private let work = DispatchSemaphore(value: 0)
    /// The audit sequence, as the daemon's chain keeps it.
    private var seq: Int64 = 0
    /// Group commits and the commits they carried, and the committer's busy time (ns).
    private(set) var groups = 0
    private(set) var carried = 0
    private(set) var busyNanoseconds: UInt64 = 0
    /// Group commits that failed (each said once on stderr): the floor counts only with none.
    private(set) var failures = 0

    /// One commit's rows: a token issue's or a credential fetch's. Their random parts are made
    /// by the writer threads, outside the committer's loop (as the daemon's are).
    enum Rows {
        case token(accessor: String, hash: String, prev: String, mac: String)
        case lease(accessor: String, id: String, providerID: String, prev: String, mac: String)
    }

    init(path: String) throws {
        // The daemon's schema and migrations, then the store is left alone (it writes nothing more).
        _ = try Store(path: path)
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        database = try DatabaseQueue(path: path, configuration: configuration)
        seq = try database.read { db in try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(seq), 0) FROM audit") ?? 0 }
        Thread.detachNewThread { self.commitLoop() }
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.unlock()
        work.signal()
    }

    /// `count` random hex digits.
    static func hex(_ count: Int) -> String {
        String((0..<((count + 15) / 16)).map { _ in String(format: "%016llx", UInt64.random(in: 0...UInt64.max)) }.joined().prefix(count))
    }

    /// A time-ordered identifier of the daemon's form (48-bit milliseconds, 48 random bits).
    static func identifier() -> String {
        String(format: "%012llx", UInt64(Date().timeIntervalSince1970 * 1000)) + hex(12)
    }

    private func commitLoop() {
        let principal = #"{"gid":0,"groups":[],"pid":21444,"uid":0,"unit":null,"user":"root"}"#
        while true {
            work.wait()
            condition.lock()
            if stopped { condition.unlock(); return }
            let batch = pending
            pending.removeAll(keepingCapacity: true)
            condition.unlock()
            let now = Date().timeIntervalSince1970
            let started = DispatchTime.now().uptimeNanoseconds
            defer {
                groups += 1
                carried += batch.count
                busyNanoseconds += DispatchTime.now().uptimeNanoseconds - started
            }
            do { try database.write { db in
                for (_, rows) in batch {
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
            } } catch { failures += 1; if failures == 1 { FileHandle.standardError.write(Data("same-shape floor: \(error)\n".utf8)) } }
            condition.lock()
            for (writer, _) in batch { committed[writer, default: 0] += 1 }
            condition.broadcast()
            condition.unlock()
        }
    }

    /// One durable commit of `rows` by `writer`, waiting for its group's commit.
    func commit(writer: Int, _ rows: Rows) {
        condition.lock()
        let target = committed[writer, default: 0] + 1
        pending.append((writer, rows))
        if pending.count == 1 { work.signal() }
        while committed[writer, default: 0] < target { condition.wait() }
        condition.unlock()
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
        floor.commit(writer: id, .token(accessor: accessor, hash: hex(64), prev: hex(64), mac: hex(64)))
        floor.commit(writer: id, .lease(accessor: accessor, id: ShapedCommitFloor.identifier(), providerID: hex(32), prev: hex(64), mac: hex(64)))
    }
}
