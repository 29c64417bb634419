/// One engine under the store: SQLite for a single node, PostgreSQL for a fleet (SPEC §12).
/// Both hand out `SQLSession`s; everything above speaks `StoreConnection`, never an engine.
protocol StoreBackend: Sendable {
    var dialect: SQLDialect { get }
    /// The group-commit writer: one thread, one transaction per batch, nothing answered before commit.
    var writer: StoreWriter { get }
    /// Runs `body` on a reading connection, off the caller's thread.
    func read<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T
    /// Runs `body` on a reading connection on the calling thread (point lookups of hot paths).
    func readNow<T>(_ body: (any SQLSession) throws -> T) throws -> T
    /// A point lookup for a request: on the calling thread where it costs microseconds
    /// (SQLite), off it where it waits on the network (PostgreSQL), so an event loop never waits.
    func pointRead<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T
    /// Runs `body` on a reading connection on this thread, connecting if needed (offline commands).
    func readNowBlocking<T>(_ body: (any SQLSession) throws -> T) throws -> T
    /// Runs `body` once at open, on a writing connection, in a transaction, before anything is served.
    func setUp(_ body: (any SQLSession) throws -> Void) throws
}
