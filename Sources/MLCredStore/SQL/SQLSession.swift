/// The two SQL engines a store can sit on, and what differs between them in the statements
/// the store writes (everything else is written once, with `?` placeholders).
public enum SQLDialect: Sendable {
    case sqlite
    case postgres

    /// The store's clock as epoch seconds (SPEC §12: silence is judged by the store's clock).
    /// PostgreSQL: the server's `now()`; SQLite: the machine's clock, the only one there is.
    var nowEpoch: String {
        switch self {
        case .sqlite: "((julianday('now') - 2440587.5) * 86400.0)"
        case .postgres: "EXTRACT(EPOCH FROM clock_timestamp())::double precision"
        }
    }

    /// Row locks for a claim (`FOR UPDATE SKIP LOCKED`): each row goes to exactly one claimer
    /// among nodes sharing the store. SQLite has one writer, which is its own lock.
    var claimLock: String {
        switch self {
        case .sqlite: ""
        case .postgres: " FOR UPDATE SKIP LOCKED"
        }
    }

    /// Makes SQLite use `index` for a table (` INDEXED BY index`). Its planner has no statistics
    /// and prefers an equality on `node` (one value in a SQLite store: every row) to the partial
    /// index made for the query: the sweeper's queries, every second, then walked every live
    /// token or lease (34 ms each at 300,000) instead of the few that matter (0.01 ms).
    /// PostgreSQL plans from statistics: nothing.
    func indexedBy(_ index: String) -> String {
        switch self {
        case .sqlite: " INDEXED BY \(index)"
        case .postgres: ""
        }
    }
}

/// One connection inside one job (a transaction on the writer, or a read). Statements use `?`
/// placeholders; a session translates them for its engine and keeps them prepared.
public protocol SQLSession {
    var dialect: SQLDialect { get }
    /// Runs a statement that returns no rows; returns how many rows it changed.
    @discardableResult
    func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int
    /// Runs a query and returns all its rows.
    func fetchAll(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow]
    /// Sends a statement whose answer the job does not need now (an INSERT). PostgreSQL
    /// pipelines it behind the others on the connection, saving a round trip; a failure
    /// surfaces at the next `execute`, `fetchAll` or `flush`. SQLite runs it at once.
    func send(_ sql: String, _ arguments: [SQLValue]) throws
    /// Waits for every statement sent; throws the first failure. The writer flushes at the end
    /// of each job, before its savepoint is released (so a failure rolls back only that job),
    /// and before COMMIT.
    func flush() throws
    /// Inserts one row. SQLite runs it at once; PostgreSQL sends it like `send`, and in an
    /// optimistic batch holds it back: each table's rows go as one multi-row INSERT (tables in the
    /// order they first appeared) before the next statement of another kind, at the latest with
    /// COMMIT. A batch then costs a round trip per table, not per row.
    func insert(_ insert: SQLInsert, _ values: [SQLValue]) throws
    /// Asserts `check`: throws `SQLRowCheck.Failed`, or (an optimistic batch on PostgreSQL, where
    /// checks of a kind merge into one statement) fails the transaction at COMMIT.
    func require(_ check: SQLRowCheck) throws
    /// True in a batch's first, optimistic attempt on PostgreSQL (`StoreWriter`): its statements
    /// are checked only at COMMIT, and any failure runs the batch again with a savepoint per job.
    /// A job may then assert in SQL what it would otherwise read and decide on
    /// (`StoreConnection.tokenIsLive`): the assertion costs no round trip, and when it fails the
    /// job runs again, reading.
    var optimistic: Bool { get }
}

/// The values of a variadic argument list. A closure, not `map(\.sqlValue)`: a key path to a
/// protocol requirement is instantiated at run time on every call (a visible share of the
/// writer thread in the profile).
@inline(__always)
func sqlValues(_ arguments: [any SQLBindable]) -> [SQLValue] {
    arguments.map { $0.sqlValue }
}

extension SQLSession {
    @discardableResult
    func execute(_ sql: String, _ arguments: any SQLBindable...) throws -> Int {
        try execute(sql, sqlValues(arguments))
    }

    func send(_ sql: String, _ arguments: any SQLBindable...) throws {
        try send(sql, sqlValues(arguments))
    }

    func insert(_ insert: SQLInsert, _ arguments: any SQLBindable...) throws {
        try self.insert(insert, sqlValues(arguments))
    }

    func fetchAll(_ sql: String, _ arguments: any SQLBindable...) throws -> [SQLRow] {
        try fetchAll(sql, sqlValues(arguments))
    }

    func fetchOne(_ sql: String, _ arguments: any SQLBindable...) throws -> SQLRow? {
        try fetchAll(sql, sqlValues(arguments)).first
    }

    /// The first column of the first row, or nil when there is no row or it is NULL.
    func fetchScalar<T: SQLDecodable>(_ type: T.Type, _ sql: String, _ arguments: any SQLBindable...) throws -> T? {
        guard let row = try fetchAll(sql, sqlValues(arguments)).first, let value = row.values.first else { return nil }
        return try Optional<T>.decode(value)
    }

    /// The first column of every row.
    func fetchColumn<T: SQLDecodable>(_ type: T.Type, _ sql: String, _ arguments: any SQLBindable...) throws -> [T] {
        try fetchAll(sql, sqlValues(arguments)).map { try T.decode($0.values.first ?? .null) }
    }
}
