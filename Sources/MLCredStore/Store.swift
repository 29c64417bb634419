import GRDB
import MLCredAPI
import MLCredCrypto

/// Errors raised by the store. Messages name records, never their contents.
public enum StoreError: Error, Sendable, CustomStringConvertible {
    /// The database could not be opened or migrated.
    case openFailed(String)
    /// A write or read failed in SQLite.
    case database(String)

    public var description: String {
        switch self {
        case .openFailed(let message): "cannot open the database: \(message)"
        case .database(let message): "database error: \(message)"
        }
    }
}

/// The daemon's one SQLite database (`STATE_DIR/mlcred.db`): WAL, `synchronous=FULL` on the
/// writing connection, migrations, and one serial writer that commits queued writes in groups.
public final class Store: Sendable {
    /// File name of the database inside the state directory.
    public static let fileName = "mlcred.db"

    let pool: DatabasePool
    /// A read-only connection of its own for `readNow`, outside the pool: a thread blocked on
    /// the pool's readers could wait on an async read whose release needs that very thread.
    let pointReader: DatabaseQueue
    let writer: StoreWriter
    /// The audit-chain key, present while the vault is unsealed; read and changed only by writer jobs.
    let auditKeyHolder: AuditKeyHolder
    /// The free-space reserve of the file system the database lives on.
    public let reserve: FreeSpaceReserve
    /// The directory holding the database (the state directory).
    public let directory: String

    /// Opens (creating if needed) the database at `path` and runs pending migrations.
    /// `reserve` sizes the free space kept for revocations and admin audit (SPEC §3 `--min-free`).
    public init(path: String, reserve: FreeSpaceReserve.Size = .automatic) throws {
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        self.directory = directory.isEmpty ? "/" : directory
        self.reserve = FreeSpaceReserve(directory: self.directory, size: reserve)
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        // Two readers match the two cores this runs on; each holds its own page cache (RSS).
        configuration.maximumReaderCount = 2
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            // GRDB's WAL set-up sets synchronous=NORMAL on the writer after `prepareDatabase`
            // runs, so FULL is set here, afterwards, on the one connection that writes.
            // Threat: NORMAL in WAL mode can lose the last commits on power loss, i.e. an
            // acknowledged secret or an audit record that vouched for a credential.
            try pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = FULL")
            }
            try Self.migrator.migrate(pool)
            var readOnly = Configuration()
            readOnly.readonly = true
            readOnly.busyMode = .timeout(5)
            pointReader = try DatabaseQueue(path: path, configuration: readOnly)
        } catch {
            throw StoreError.openFailed(String(describing: error))
        }
        writer = StoreWriter(pool: pool)
        auditKeyHolder = AuditKeyHolder()
    }

    /// The `synchronous` setting of the writing connection (2 = FULL).
    public func writerSynchronousSetting() async throws -> Int {
        try await pool.writeWithoutTransaction { db in
            try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1
        }
    }

    /// Queues `body` for the next group commit and calls `completion` once the group's
    /// transaction is durably committed (or failed), on the writer thread: keep it short, and
    /// hand the result to where it belongs (an event loop's promise, a continuation).
    /// `body` runs inside its own savepoint: if it throws, only its own changes are undone and
    /// only its caller sees the error.
    public func write<T: Sendable>(_ body: @escaping @Sendable (StoreConnection) throws -> T,
                                   completion: @escaping @Sendable (Result<T, Error>) -> Void) {
        let box = ResultBox<T>()
        let holder = auditKeyHolder
        writer.submit(StoreWriter.Job(
            run: { db in box.value = try body(StoreConnection(db: db, auditKey: holder)) },
            finish: { error in
                if let error {
                    completion(.failure(error))
                } else if let value = box.value {
                    completion(.success(value))
                } else {
                    completion(.failure(StoreError.database("write produced no result")))
                }
            }))
    }

    /// Runs `body` in the next group commit (see `write(_:completion:)`) and returns once the
    /// group's transaction is durably committed. The caller resumes on its own executor.
    public func write<T: Sendable>(_ body: @escaping @Sendable (StoreConnection) throws -> T) async throws -> T {
        try await withUnsafeThrowingContinuation { continuation in
            write(body) { continuation.resume(with: $0) }
        }
    }

    /// Group commits so far: transactions committed and the writes they carried (their ratio is
    /// the mean group size, the figure that shows whether writers share fsyncs).
    public var commitStatistics: (transactions: Int, writes: Int) {
        (writer.transactions.load(ordering: .relaxed), writer.jobs.load(ordering: .relaxed))
    }

    /// Runs `body` on a read-only connection.
    public func read<T: Sendable>(_ body: @escaping @Sendable (StoreConnection) throws -> T) async throws -> T {
        do {
            return try await pool.read { db in try body(StoreConnection(db: db, auditKey: nil)) }
        } catch let error as DatabaseError {
            throw StoreError.database(error.message ?? "\(error.resultCode)")
        }
    }

    /// Runs `body` on a read-only connection on the calling thread. For point lookups on hot
    /// paths (a token by hash, a secret by name: tens of microseconds in WAL mode, which never
    /// waits for the writer): an async read costs two thread hand-offs, more than the lookup.
    /// Not for scans: it holds the calling thread, a thread of the cooperative pool, and callers
    /// take turns on its one connection.
    public func readNow<T>(_ body: (StoreConnection) throws -> T) throws -> T {
        do {
            return try pointReader.read { db in try body(StoreConnection(db: db, auditKey: nil)) }
        } catch let error as DatabaseError {
            throw StoreError.database(error.message ?? "\(error.resultCode)")
        }
    }

    /// Installs or removes the audit-chain key. Runs as a writer job so every write queued before
    /// this call uses the old state and every write after it the new one.
    public func setAuditKey(_ key: SecureBytes?) async throws {
        let holder = auditKeyHolder
        _ = try await write { _ in holder.key = key }
    }
}

/// Holds the audit key. Accessed only from writer jobs, which run one at a time.
final class AuditKeyHolder: @unchecked Sendable {
    var key: SecureBytes?
}
