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
}

extension SQLSession {
    @discardableResult
    func execute(_ sql: String, _ arguments: any SQLBindable...) throws -> Int {
        try execute(sql, arguments.map(\.sqlValue))
    }

    func send(_ sql: String, _ arguments: any SQLBindable...) throws {
        try send(sql, arguments.map(\.sqlValue))
    }

    func fetchAll(_ sql: String, _ arguments: any SQLBindable...) throws -> [SQLRow] {
        try fetchAll(sql, arguments.map(\.sqlValue))
    }

    func fetchOne(_ sql: String, _ arguments: any SQLBindable...) throws -> SQLRow? {
        try fetchAll(sql, arguments.map(\.sqlValue)).first
    }

    /// The first column of the first row, or nil when there is no row or it is NULL.
    func fetchScalar<T: SQLDecodable>(_ type: T.Type, _ sql: String, _ arguments: any SQLBindable...) throws -> T? {
        guard let row = try fetchAll(sql, arguments.map(\.sqlValue)).first, let value = row.values.first else { return nil }
        return try Optional<T>.decode(value)
    }

    /// The first column of every row.
    func fetchColumn<T: SQLDecodable>(_ type: T.Type, _ sql: String, _ arguments: any SQLBindable...) throws -> [T] {
        try fetchAll(sql, arguments.map(\.sqlValue)).map { try T.decode($0.values.first ?? .null) }
    }
}
