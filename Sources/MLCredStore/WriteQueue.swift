import GRDB

/// The single writer. Callers queue jobs; the drain loop takes every job waiting, runs each in
/// its own savepoint inside one transaction, commits once, then answers all of them. Under
/// load, many requests share one fsync (group commit); alone, a job commits immediately.
actor WriteQueue {
    private struct Job: Sendable {
        let run: @Sendable (Database, AuditKeyHolder) throws -> Void
        let finish: @Sendable (Error?) -> Void
    }

    private let pool: DatabasePool
    private var pending: [Job] = []
    private var draining = false

    init(pool: DatabasePool) {
        self.pool = pool
    }

    func submit<T: Sendable>(
        _ body: @escaping @Sendable (StoreConnection) throws -> T, auditKey: AuditKeyHolder
    ) async throws -> T {
        let box = ResultBox<T>()
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            pending.append(Job(
                run: { db, holder in box.value = try body(StoreConnection(db: db, auditKey: holder)) },
                finish: { error in
                    if let error { continuation.resume(throwing: error) } else { continuation.resume() }
                }))
            if !draining {
                draining = true
                Task { await self.drain(auditKey: auditKey) }
            }
        }
        guard let value = box.value else { throw StoreError.database("write produced no result") }
        return value
    }

    private func drain(auditKey: AuditKeyHolder) async {
        while !pending.isEmpty {
            let batch = pending
            pending.removeAll(keepingCapacity: true)
            let outcomes = OutcomeBox(count: batch.count)
            do {
                try await pool.writeWithoutTransaction { db in
                    try db.inTransaction(.immediate) {
                        for (index, job) in batch.enumerated() {
                            do {
                                try db.inSavepoint {
                                    try job.run(db, auditKey)
                                    return .commit
                                }
                            } catch {
                                outcomes.errors[index] = error
                            }
                        }
                        return .commit
                    }
                }
                for (index, job) in batch.enumerated() { job.finish(outcomes.errors[index].map(Self.wrap)) }
            } catch {
                // The commit itself failed: nothing of this batch is durable, so every job fails.
                for job in batch { job.finish(Self.wrap(error)) }
            }
        }
        draining = false
    }

    private static func wrap(_ error: Error) -> Error {
        if let error = error as? DatabaseError { return StoreError.database(error.message ?? "\(error.resultCode)") }
        return error
    }
}

/// Carries a job's result from the writer thread to its caller; written once before `finish`.
final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}

/// Per-job errors of one batch; written only on the writer thread, read after the batch ends.
final class OutcomeBox: @unchecked Sendable {
    var errors: [Error?]
    init(count: Int) { errors = Array(repeating: nil, count: count) }
}
