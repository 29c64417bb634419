import Dispatch
import Foundation
import Synchronization

/// How the writer runs a batch of jobs in its one transaction.
public enum BatchMode: Sendable {
    /// First without savepoints: every job's statements, then COMMIT. If any job throws, the
    /// whole attempt is rolled back and the batch runs again with a savepoint per job (a batch
    /// of one: again alone, reading what it asserted the first time). Jobs rarely fail, so a
    /// batch usually costs two statements per job fewer (SQLite: a tenth of the writer thread's
    /// time per operation in `scripts/bench`; PostgreSQL: the round trips of a savepoint).
    case optimistic
    /// Each job in its own savepoint from the start; a failing job rolls back its own only.
    case savepointPerJob
}

/// The single writer: one dedicated thread that takes every job waiting, runs each in its own
/// savepoint inside one transaction, commits once, then completes all of them. Under load,
/// many requests share one fsync (group commit); alone, a job commits at once.
///
/// Why a thread and not an actor: a request crosses exactly one thread boundary to reach the
/// writer (the queue below) and one to come back (its completion), instead of the five an actor,
/// a drain task and GRDB's async API cost. GRDB's synchronous write runs on the calling thread;
/// on PostgreSQL the thread waits for each statement's answer (one round trip on loopback).
/// The engine is behind `transact`, which runs its body in one transaction and commits it.
final class StoreWriter: Sendable {
    /// One queued write: the work, run on the writer thread inside its savepoint, and the
    /// completion, called on the writer thread once the batch is committed (or failed).
    struct Job: Sendable {
        let run: @Sendable (any SQLSession) throws -> Void
        let finish: @Sendable (Error?) -> Void
        /// Undoes what `run` did outside the database (the chain head it moved), when its
        /// changes are rolled back but the batch goes on.
        var undo: @Sendable () -> Void = {}
        /// When it was queued: a batch's answer is due by its oldest job's time plus `answerWithin`.
        var queuedAt = DispatchTime.now()
    }

    /// Seconds by which every queued write is answered, committed or refused, on an engine that
    /// honours a deadline (PostgreSQL; SPEC §12: 503 within 2 s when the store is unreachable).
    /// 0.4 s of the 2 are left to the rest of the request (its point read, the queue, HTTP): at
    /// 1.8 s, a client on a loaded machine saw some 503s arrive after 1.85 s.
    static let answerWithin = 1.6

    private struct Queue {
        var pending: [Job] = []
        /// True while the writer thread sleeps on `wakeup`: the next submitter must signal it.
        var idle = true
    }

    /// Runs its body inside one transaction on the engine's writing connection and commits it;
    /// throws if the transaction could not be committed.
    /// `optimistic`: the batch's first attempt in the optimistic mode (see `SQLSession.optimistic`).
    typealias Transact = @Sendable (_ deadline: DispatchTime, _ optimistic: Bool, _ body: (any SQLSession) throws -> Void) throws -> Void
    private let transact: Transact
    private let queue = Mutex(Queue())
    /// Transactions committed and jobs completed so far: their ratio is the group size.
    let transactions = Atomic<Int>(0)
    let jobs = Atomic<Int>(0)
    /// Nanoseconds the writer thread spent on batches (from taking one to completing its jobs),
    /// and the part of them spent committing (from the last job's statements to the engine's
    /// answer to COMMIT: on SQLite the WAL writes and the fsync). Against wall time, the first
    /// says how close the writer is to being the bottleneck (`scripts/bench` prints it).
    let busyNanoseconds = Atomic<Int>(0)
    let commitNanoseconds = Atomic<Int>(0)
    /// Signalled once per idle → busy transition, so the count never runs ahead of the work.
    private let wakeup = DispatchSemaphore(value: 0)

    /// Whether a batch first runs without savepoints, all its statements pipelined with COMMIT
    /// and checked once (PostgreSQL: a savepoint and a check per job cost round trips); if any
    /// job fails, nothing is committed and the batch runs again with a savepoint per job (a
    /// batch of one: again alone, reading what it asserted the first time).
    private let optimistic: Bool

    init(mode: BatchMode, transact: @escaping Transact) {
        self.optimistic = mode == .optimistic
        self.transact = transact
        Thread.detachNewThread { [self] in self.loop() }
    }

    /// Queues `job` for the next group commit.
    func submit(_ job: Job) {
        let mustWake = queue.withLock { queue -> Bool in
            queue.pending.append(job)
            guard queue.idle else { return false }
            queue.idle = false
            return true
        }
        if mustWake { wakeup.signal() }
    }

    /// The writer thread's life: sleep until work arrives, then commit batches until none waits.
    /// The writer lives as long as the process (the daemon has one store).
    private func loop() {
        ThreadName.set("mlcred-writer")
        while true {
            wakeup.wait()
            while true {
                let batch = queue.withLock { queue -> [Job] in
                    if queue.pending.isEmpty {
                        queue.idle = true
                        return []
                    }
                    defer { queue.pending.removeAll(keepingCapacity: true) }
                    return queue.pending
                }
                if batch.isEmpty { break }
                let started = DispatchTime.now().uptimeNanoseconds
                commit(batch)
                busyNanoseconds.add(Int(DispatchTime.now().uptimeNanoseconds - started), ordering: .relaxed)
            }
        }
    }

    /// Runs one batch in one transaction. A job that throws rolls back only its own savepoint
    /// and only it sees the error; a failed commit fails every job of the batch, since nothing
    /// of it is durable. A batch of one needs no savepoint: its transaction is its boundary.
    private func commit(_ batch: [Job]) {
        var errors = [Error?](repeating: nil, count: batch.count)
        var oldest = batch[0].queuedAt
        for job in batch where job.queuedAt < oldest { oldest = job.queuedAt }
        if optimistic {
            do {
                var ran: UInt64 = 0
                try transact(oldest + Self.answerWithin, true) { session in
                    for job in batch { try job.run(session) }
                    ran = DispatchTime.now().uptimeNanoseconds
                }
                countCommit(since: ran)
                transactions.add(1, ordering: .relaxed)
                jobs.add(batch.count, ordering: .relaxed)
                for job in batch { job.finish(nil) }
                return
            } catch StoreError.unavailable(let message) {
                for job in batch.reversed() { job.undo() }
                for job in batch { job.finish(StoreError.unavailable(message)) }
                return
            } catch {
                // A job failed and the whole attempt was rolled back: again, each job alone.
                for job in batch.reversed() { job.undo() }
            }
        }
        var ran: UInt64 = 0
        do {
            try transact(oldest + Self.answerWithin, false) { session in
                defer { ran = DispatchTime.now().uptimeNanoseconds }
                if batch.count == 1 {
                    // Its statements are checked with COMMIT: a failure is its own.
                    try batch[0].run(session)
                    return
                }
                for (index, job) in batch.enumerated() {
                    do {
                        try Self.inSavepoint(session) { try job.run(session) }
                    } catch StoreError.unavailable(let message) {
                        // The store is gone: the whole batch fails now, none of it committed.
                        throw StoreError.unavailable(message)
                    } catch {
                        job.undo()
                        errors[index] = error
                    }
                }
            }
        } catch {
            let failure = Self.wrap(error)
            // Counted as a single-job batch's own failure when that is what it was.
            for (index, job) in batch.enumerated() { job.finish(errors[index].map(Self.wrap) ?? failure) }
            return
        }
        countCommit(since: ran)
        transactions.add(1, ordering: .relaxed)
        jobs.add(batch.count, ordering: .relaxed)
        for (index, job) in batch.enumerated() { job.finish(errors[index].map(Self.wrap)) }
    }

    /// Adds the time from `ran` (the batch's statements done) to now to `commitNanoseconds`.
    private func countCommit(since ran: UInt64) {
        guard ran > 0 else { return }
        commitNanoseconds.add(Int(DispatchTime.now().uptimeNanoseconds &- ran), ordering: .relaxed)
    }

    /// Runs `body` in a savepoint with prepared statements (GRDB's `inSavepoint` parses its SQL
    /// on every call, a third of the writer's own time per job in the profile). The same three
    /// statements on both engines.
    private static func inSavepoint(_ session: any SQLSession, _ body: () throws -> Void) throws {
        try session.send("SAVEPOINT job", [])
        do {
            try body()
            // What the job sent is checked before its savepoint is released: a failure rolls
            // back this job alone.
            try session.flush()
        } catch {
            try session.execute("ROLLBACK TO SAVEPOINT job", [])
            try session.send("RELEASE SAVEPOINT job", [])
            throw error
        }
        // Checked with the next job's statements (or before COMMIT): a RELEASE after a clean
        // flush fails only with the connection, which fails the batch anyway.
        try session.send("RELEASE SAVEPOINT job", [])
    }

    static func wrap(_ error: Error) -> Error {
        SQLiteSession.wrap(error)
    }
}

/// Carries a job's result from the writer thread to its completion; written once, before `finish`.
final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}
