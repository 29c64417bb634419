import GRDB
import Synchronization

/// The single-node store (SPEC §3): one SQLite database, WAL, `synchronous=FULL` on the
/// writing connection, a pool of two readers, and a point reader for hot lookups.
final class SQLiteBackend: StoreBackend {
    let pool: DatabasePool
    /// A read-only connection of its own for `readNow`, outside the pool: a thread blocked on
    /// the pool's readers could wait on an async read whose release needs that very thread.
    let pointReader: DatabaseQueue
    /// Read-only connections for the requests' point reads (`pointRead`), taken in turn: one per
    /// event loop thread in the common case, so two loops rarely wait on each other's lookup.
    let requestReaders: [DatabaseQueue]
    private let nextRequestReader = Atomic<Int>(0)
    let writer: StoreWriter
    /// The writing connection's page cache, in KiB (see `init`).
    static let writerCacheKiB = 8192
    var dialect: SQLDialect { .sqlite }

    /// `batchMode`: optimistic by default, as on PostgreSQL (see `BatchMode`).
    init(path: String, batchMode: BatchMode = .optimistic) throws {
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
                // The writer's page cache: 8 MiB instead of SQLite's 2 MiB. Each token's hash lands
                // on a random page of its index; with the small cache most inserts read that page
                // back from the kernel first (pread was a tenth of the writer thread). It fills
                // only as the database is used, so an idle daemon's memory is unchanged.
                try db.execute(sql: "PRAGMA cache_size = -\(Self.writerCacheKiB)")
            }
            try StoreSchema.sqliteMigrator.migrate(pool)
            var readOnly = Configuration()
            readOnly.readonly = true
            readOnly.busyMode = .timeout(5)
            pointReader = try DatabaseQueue(path: path, configuration: readOnly)
            requestReaders = try (0..<2).map { _ in try DatabaseQueue(path: path, configuration: readOnly) }
        } catch {
            throw StoreError.openFailed(String(describing: error))
        }
        let pool = self.pool
        // SQLite answers from the local disk: no deadline (a full fsync is the promise).
        writer = StoreWriter(mode: batchMode, transact: { _, _, body in
            try pool.writeWithoutTransaction { db in
                try db.inTransaction(.immediate) {
                    try body(SQLiteSession(db: db))
                    return .commit
                }
            }
        })
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        do {
            return try await pool.read { db in try body(SQLiteSession(db: db)) }
        } catch {
            throw SQLiteSession.wrap(error)
        }
    }

    func readNow<T>(_ body: (any SQLSession) throws -> T) throws -> T {
        do {
            return try pointReader.read { db in try body(SQLiteSession(db: db)) }
        } catch {
            throw SQLiteSession.wrap(error)
        }
    }

    func readNowBlocking<T>(_ body: (any SQLSession) throws -> T) throws -> T {
        try readNow(body)
    }

    /// On the calling thread: tens of microseconds in WAL mode, which never waits for the
    /// writer; a hop to a reader thread would cost more than the lookup.
    /// Without GRDB's transaction around it (`unsafeRead`): a point read is one statement, which
    /// SQLite runs in a read transaction of its own; the savepoint and `query_only` toggles GRDB
    /// wraps a read in were four more statements per lookup.
    func pointRead<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try lookUp(body)
    }

    /// `pointRead`'s work, synchronous (GRDB's async `unsafeRead` would hop to its queue).
    private func lookUp<T>(_ body: (any SQLSession) throws -> T) throws -> T {
        let reader = requestReaders[nextRequestReader.wrappingAdd(1, ordering: .relaxed).oldValue & 1]
        do {
            return try reader.unsafeRead { db in try body(SQLiteSession(db: db)) }
        } catch {
            throw SQLiteSession.wrap(error)
        }
    }

    /// Runs `body` on the writing connection outside the writer thread, before it serves: the
    /// store's own set-up at open (adopting rows for this node).
    func setUp(_ body: (any SQLSession) throws -> Void) throws {
        do {
            try pool.write { db in try body(SQLiteSession(db: db)) }
        } catch {
            throw SQLiteSession.wrap(error)
        }
    }
}
