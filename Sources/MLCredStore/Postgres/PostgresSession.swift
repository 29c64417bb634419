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
    var dialect: SQLDialect { .postgres }

    @discardableResult
    func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int {
        try run(sql, arguments).metadata.rows ?? 0
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
        lost.pending.append(connection.query(Self.query(sql, arguments), logger: link.logger))
    }

    func flush() throws {
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
        for argument in arguments {
            switch argument {
            case .null: binds.appendNull()
            case .int(let v): binds.append(v)
            case .double(let v): binds.append(v)
            case .text(let v): binds.append(v)
            case .blob(let v): binds.append(ByteBuffer(bytes: v))
            }
        }
        return PostgresQuery(unsafeSQL: PostgresPlaceholders.numbered(sql), binds: binds)
    }

    private func run(_ sql: String, _ arguments: [SQLValue]) throws -> PostgresQueryResult {
        if let error = lost.error { throw error }
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

/// Written once by the completing future before its semaphore is signalled, read after the wait.
final class UnsafeResultBox<T>: @unchecked Sendable {
    var result: Result<T, Error>?
}
