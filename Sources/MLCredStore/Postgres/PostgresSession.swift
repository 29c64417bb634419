import Dispatch
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// A PostgreSQL connection as an `SQLSession`, for threads that may block (the writer thread, a
/// reader): each statement is sent and its answer awaited, at most `timeout` seconds. A statement
/// that does not answer in time closes the connection (failing it) and counts as the store being
/// unavailable: a request never hangs on a stuck server.
struct PostgresSession: SQLSession {
    let connection: PostgresConnection
    let link: PostgresLink
    let timeout: Double
    /// The batch's answer is due then: no statement waits past it.
    var deadline: DispatchTime? = nil
    /// Set once the connection failed: every later statement of the session fails at once with
    /// the same error (a lost connection is not retried statement by statement, each waiting out
    /// its timeout: a batch's remaining jobs, their savepoint rollbacks). Also the statements
    /// sent and not yet checked.
    let lost = LostConnection()
    var optimistic = false
    /// Rows and checks an optimistic batch holds back, to send merged (`insert`, `require`).
    let held = HeldStatements()
    var dialect: SQLDialect { .postgres }

    @discardableResult
    func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int {
        try run(sql, arguments).metadata.rows ?? 0
    }

    func insert(_ insert: SQLInsert, _ values: [SQLValue]) throws {
        guard optimistic else { return try send(insert.sql, values) }
        if let error = lost.error { throw error }
        held.add(insert, values)
    }

    func require(_ check: SQLRowCheck) throws {
        guard optimistic else {
            let rows = try fetchAll(check.query(for: .postgres), [.text(check.key)])
            if rows.isEmpty { throw SQLRowCheck.Failed(check: check.kind) }
            return
        }
        if let error = lost.error { throw error }
        held.add(check)
    }

    /// Sends what is held, merged, in the order each kind first appeared: before any other
    /// statement, so nothing is reordered across a statement that could see it.
    private func release() {
        guard !held.isEmpty else { return }
        for statement in held.take() {
            lost.pending.append(connection.query(statement, logger: link.logger))
        }
    }

    func fetchAll(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
        let result = try run(sql, arguments)
        var columns: SQLColumns?
        return try result.rows.map { row in
            let names = columns ?? SQLColumns(row.map(\.columnName))
            columns = names
            return SQLRow(columns: names, values: try row.map(Self.value))
        }
    }

    func send(_ sql: String, _ arguments: [SQLValue]) throws {
        if let error = lost.error { throw error }
        release()
        lost.pending.append(connection.query(Self.query(sql, arguments), logger: link.logger))
    }

    func flush() throws {
        if lost.error == nil { release() }
        guard let last = lost.pending.last else { return }
        // Answers come in order: once the last is in, all are.
        do {
            _ = try BlockingWait.result(of: last, within: wait)
        } catch {
            let own = judge(error)
            if lost.error == nil { try checkSent() }
            lost.pending = []
            throw own
        }
        try checkSent()
    }

    /// Sends COMMIT behind the transaction's statements and waits for all of them: one round trip
    /// for the batch's check and its commit. When a statement failed, the server aborted the
    /// transaction and answers COMMIT with ROLLBACK (no error): that statement's failure is thrown
    /// and nothing was committed. Throws unless the answer is COMMIT.
    func commit() throws {
        try send("COMMIT", [])
        guard let commit = lost.pending.last else { return }
        try flush()
        let answer = try BlockingWait.result(of: commit, within: wait).metadata.command
        guard answer == "COMMIT" else { throw StoreError.unavailable("the store answered COMMIT with \(answer)") }
    }

    /// Throws the first failure among the statements sent (all answered by now), and forgets them.
    private func checkSent() throws {
        let sent = lost.pending
        lost.pending = []
        if let error = lost.error, !sent.isEmpty { throw error }
        for future in sent {
            do {
                _ = try BlockingWait.result(of: future, within: wait)
            } catch {
                throw judge(error)
            }
        }
    }

    private var wait: Double {
        var wait = timeout
        if let deadline {
            let left = Double(Int64(deadline.uptimeNanoseconds) - Int64(DispatchTime.now().uptimeNanoseconds)) / 1e9
            wait = min(wait, max(left, 0.05))
        }
        return wait
    }

    private func judge(_ error: Error) -> Error {
        if let known = lost.error { return known }
        let judged = link.failed(connection, error)
        if judged.dropped { lost.error = judged.error }
        return judged.error
    }

    static func query(_ sql: String, _ arguments: [SQLValue]) -> PostgresQuery {
        var binds = PostgresBindings(capacity: arguments.count)
        for argument in arguments { bind(argument, into: &binds) }
        return PostgresQuery(unsafeSQL: PostgresPlaceholders.numbered(sql), binds: binds)
    }

    static func bind(_ value: SQLValue, into binds: inout PostgresBindings) {
        switch value {
        case .null: binds.appendNull()
        case .int(let v): binds.append(v)
        case .double(let v): binds.append(v)
        case .text(let v): binds.append(v)
        case .blob(let v): binds.append(ByteBuffer(bytes: v))
        }
    }

    private func run(_ sql: String, _ arguments: [SQLValue]) throws -> PostgresQueryResult {
        if let error = lost.error { throw error }
        release()
        let future = connection.query(Self.query(sql, arguments), logger: link.logger)
        do {
            let result = try BlockingWait.result(of: future, within: wait)
            // A statement sent before this one failed: that failure is the one to report.
            try checkSent()
            return result
        } catch {
            let own = judge(error)
            // An earlier statement's failure explains this one's (an aborted transaction).
            if lost.error == nil { try checkSent() }
            lost.pending = []
            throw own
        }
    }

    static func value(_ cell: PostgresCell) throws -> SQLValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int2, .int4, .int8, .oid: return .int(try cell.decode(Int64.self))
        case .float4, .float8: return .double(try cell.decode(Double.self))
        case .bool: return .int(try cell.decode(Bool.self) ? 1 : 0)
        case .bytea:
            var buffer = try cell.decode(ByteBuffer.self)
            return .blob(buffer.readBytes(length: buffer.readableBytes) ?? [])
        case .numeric:
            let text = try cell.decode(String.self)
            guard let value = Double(text) else { throw SQLDecodingError(column: cell.columnName, expected: "a number") }
            return .double(value)
        default: return .text(try cell.decode(String.self))
        }
    }
}

/// `?` placeholders as PostgreSQL's `$1, $2, ...`, translated once per statement text.
enum PostgresPlaceholders {
    private static let cache = Mutex<[String: String]>([:])

    static func numbered(_ sql: String) -> String {
        if let hit = cache.withLock({ $0[sql] }) { return hit }
        var out = ""
        out.reserveCapacity(sql.utf8.count + 16)
        var index = 0
        var inQuote = false
        for character in sql {
            if character == "'" { inQuote.toggle() }
            if character == "?" && !inQuote {
                index += 1
                out += "$\(index)"
            } else {
                out.append(character)
            }
        }
        // Statement texts are the program's own, a bounded set (IN lists vary by length only).
        cache.withLock { if $0.count < 4096 { $0[sql] = out } }
        return out
    }
}

/// Waits for a future on a thread that may block (never an event loop's: the futures here run
/// on the store's own event loop, so a server thread waiting on one cannot deadlock it).
enum BlockingWait {
    struct TimedOut: Error {}

    static func result<T>(of future: EventLoopFuture<T>, within seconds: Double) throws -> T {
        let semaphore = DispatchSemaphore(value: 0)
        let box = UnsafeResultBox<T>()
        future.whenComplete { result in
            box.result = result
            semaphore.signal()
        }
        guard semaphore.wait(timeout: .now() + seconds) == .success else { throw TimedOut() }
        return try box.result!.get()
    }
}

/// A session's lost connection, once it is lost, and its statements sent but not yet checked.
/// Used by the one thread that runs the session.
final class LostConnection: @unchecked Sendable {
    var error: Error?
    var pending: [EventLoopFuture<PostgresQueryResult>] = []
}

/// What an optimistic batch holds back: rows per insert kind and keys per check kind, in the
/// order each kind first appeared. Used by the one thread that runs the session.
final class HeldStatements: @unchecked Sendable {
    private enum Held {
        case insert(SQLInsert, rows: [[SQLValue]])
        case check(SQLRowCheck, keys: [String])
    }
    private var held: [Held] = []
    private var index: [String: Int] = [:]
    /// PostgreSQL's limit on a statement's parameters.
    static let maximumParameters = 65_535

    var isEmpty: Bool { held.isEmpty }

    private static func level(_ entry: Held) -> Int {
        switch entry {
        case .insert(let insert, _): insert.level
        case .check: 0
        }
    }

    /// Forgets what is held (its transaction is rolled back).
    func discard() {
        held = []
        index = [:]
    }

    func add(_ insert: SQLInsert, _ values: [SQLValue]) {
        let key = "I " + insert.key
        if let at = index[key], case .insert(let kind, var rows) = held[at] {
            held[at] = .insert(kind, rows: [])  // keeps `rows` uniquely referenced
            rows.append(values)
            held[at] = .insert(kind, rows: rows)
        } else {
            index[key] = held.count
            held.append(.insert(insert, rows: [values]))
        }
    }

    func add(_ check: SQLRowCheck) {
        let key = "C " + check.kind
        if let at = index[key], case .check(let kind, var keys) = held[at] {
            held[at] = .check(kind, keys: [])
            keys.append(check.key)
            held[at] = .check(kind, keys: keys)
        } else {
            index[key] = held.count
            held.append(.check(check, keys: [check.key]))
        }
    }

    /// The held statements, merged (an insert of many rows in chunks under the parameter limit),
    /// by foreign-key level and then in the order each kind first appeared, and forgets them.
    func take() -> [PostgresQuery] {
        defer { discard() }
        var queries: [PostgresQuery] = []
        let ordered = held.enumerated().sorted { first, second in
            let levels = (Self.level(first.element), Self.level(second.element))
            return levels.0 != levels.1 ? levels.0 < levels.1 : first.offset < second.offset
        }.map(\.element)
        for entry in ordered {
            switch entry {
            case .insert(let insert, let rows):
                let perStatement = max(1, Self.maximumParameters / max(insert.columns.count, 1))
                var start = 0
                while start < rows.count {
                    let chunk = rows[start..<min(start + perStatement, rows.count)]
                    var binds = PostgresBindings(capacity: chunk.count * insert.columns.count)
                    for row in chunk { for value in row { PostgresSession.bind(value, into: &binds) } }
                    queries.append(PostgresQuery(unsafeSQL: insert.postgres(rows: chunk.count), binds: binds))
                    start += chunk.count
                }
            case .check(let check, let keys):
                let distinct = Array(Set(keys))
                var binds = PostgresBindings(capacity: 2)
                binds.append(Int64(distinct.count))
                binds.append(distinct)
                queries.append(PostgresQuery(unsafeSQL: check.postgresQuery, binds: binds))
            }
        }
        return queries
    }
}

/// Written once by the completing future before its semaphore is signalled, read after the wait.
final class UnsafeResultBox<T>: @unchecked Sendable {
    var result: Result<T, Error>?
}
