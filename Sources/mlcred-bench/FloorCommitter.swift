import Foundation
import GRDB

/// The committer of the group-commit floors (SPEC §11): `writers` threads each queue an item and
/// wait for it to be durable; one thread writes every waiting item in one transaction of a
/// `synchronous=FULL` WAL database and wakes them. The simplest loop, not mlcred's writer.
final class FloorCommitter<Item>: @unchecked Sendable {
    let database: DatabaseQueue
    private let write: (Database, [Item]) throws -> Void
    private let name: String
    private let condition = NSCondition()
    private var pending: [(writer: Int, item: Item)] = []  // waiting for the next commit
    private var committed: [Int: Int] = [:]  // writer id → commits completed
    private var stopped = false
    /// Wakes the committer; signalled when the queue goes from empty to not empty.
    private let work = DispatchSemaphore(value: 0)
    /// Group commits, the commits they carried, the committer's busy time (ns), and the group
    /// commits that failed (the first failure is said on stderr: a floor counts only with none).
    private(set) var groups = 0
    private(set) var carried = 0
    private(set) var busyNanoseconds: UInt64 = 0
    private(set) var failures = 0

    /// A committer writing with `write` (one call per group, inside its transaction) to the
    /// database at `path`; `name` names the floor in a failure.
    init(path: String, name: String, write: @escaping (Database, [Item]) throws -> Void) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        database = try DatabaseQueue(path: path, configuration: configuration)
        self.write = write
        self.name = name
        Thread.detachNewThread { self.commitLoop() }
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.unlock()
        work.signal()
    }

    private func commitLoop() {
        while true {
            work.wait()
            condition.lock()
            if stopped { condition.unlock(); return }
            let batch = pending
            pending.removeAll(keepingCapacity: true)
            condition.unlock()
            let started = DispatchTime.now().uptimeNanoseconds
            do {
                try database.write { db in try write(db, batch.map(\.item)) }
            } catch {
                failures += 1
                if failures == 1 { FileHandle.standardError.write(Data("\(name): \(error)\n".utf8)) }
            }
            groups += 1
            carried += batch.count
            busyNanoseconds += DispatchTime.now().uptimeNanoseconds - started
            condition.lock()
            for (writer, _) in batch { committed[writer, default: 0] += 1 }
            condition.broadcast()
            condition.unlock()
        }
    }

    /// One durable commit of `item` by `writer`, waiting for its group's commit.
    func commit(writer: Int, _ item: Item) {
        condition.lock()
        let target = committed[writer, default: 0] + 1
        pending.append((writer, item))
        if pending.count == 1 { work.signal() }
        while committed[writer, default: 0] < target { condition.wait() }
        condition.unlock()
    }

    /// The committer's line: its share of the wall time, group size and time per group.
    func line(seconds: Double) -> String {
        String(format: "  its committer: busy %.0f %% of the time; %.1f commits per group; %.0f µs per group",
               Double(busyNanoseconds) / 1e9 / seconds * 100, Double(carried) / Double(max(groups, 1)),
               Double(busyNanoseconds) / 1e3 / Double(max(groups, 1)))
    }
}
