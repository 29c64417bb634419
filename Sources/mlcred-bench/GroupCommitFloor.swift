import Foundation
import GRDB

/// The group-commit floor of SPEC §11: the simplest loop of `writers` threads sharing fsyncs on
/// the same file system as the daemon's store, independent of mlcred's own writer. Each writer
/// queues a one-row insert and waits for it to be durable; one committer thread commits every
/// waiting insert in one `synchronous=FULL` WAL transaction. An operation is two such commits in
/// turn, as token issue + credential fetch are.
final class GroupCommitFloor: @unchecked Sendable {
    private let database: DatabaseQueue
    private let condition = NSCondition()
    private var pending: [Int] = []          // writer ids waiting for the next commit
    private var committed: [Int: Int] = [:]  // writer id → commits completed
    private var stopped = false
    /// Wakes the committer; signalled when the queue goes from empty to not empty.
    private let work = DispatchSemaphore(value: 0)

    init(path: String) throws {
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA journal_mode = WAL")
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        database = try DatabaseQueue(path: path, configuration: configuration)
        try database.write { db in
            try db.execute(sql: "CREATE TABLE IF NOT EXISTS floor (id INTEGER PRIMARY KEY, writer INTEGER NOT NULL, payload TEXT NOT NULL)")
        }
        Thread.detachNewThread { self.commitLoop() }
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.unlock()
        work.signal()
    }

    private func commitLoop() {
        let payload = String(repeating: "x", count: 200)  // about an audit record's size
        while true {
            work.wait()
            condition.lock()
            if stopped { condition.unlock(); return }
            let batch = pending
            pending.removeAll(keepingCapacity: true)
            condition.unlock()
            try? database.write { db in
                for writer in batch {
                    try db.execute(sql: "INSERT INTO floor(writer, payload) VALUES (?, ?)", arguments: [writer, payload])
                }
            }
            condition.lock()
            for writer in batch { committed[writer, default: 0] += 1 }
            condition.broadcast()
            condition.unlock()
        }
    }

    /// One durable insert by `writer`, waiting for its group's commit.
    func commit(writer: Int) {
        condition.lock()
        let target = committed[writer, default: 0] + 1
        pending.append(writer)
        if pending.count == 1 { work.signal() }
        while committed[writer, default: 0] < target { condition.wait() }
        condition.unlock()
    }
}

/// A bench worker of the floor: two durable commits per operation.
final class GroupCommitWorker: Worker {
    let floor: GroupCommitFloor
    let id: Int

    init(floor: GroupCommitFloor, id: Int) {
        self.floor = floor
        self.id = id
    }

    func operate() throws {
        floor.commit(writer: id)
        floor.commit(writer: id)
    }
}
