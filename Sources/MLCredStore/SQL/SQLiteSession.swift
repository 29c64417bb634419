import Foundation
import GRDB
import GRDBSQLite

/// A GRDB connection as an `SQLSession`. Every statement is prepared once per connection and
/// cached (GRDB's statement cache): the hot paths parse nothing per request.
///
/// Statements run through SQLite's C API on the cached statement: values are bound straight
/// from `SQLValue` and columns read straight into it. GRDB's generic `StatementArguments` and
/// `Row` conversions were a tenth of the writer thread's time per job in the profile. GRDB still
/// owns the connection, the transactions and the statements (it finalizes them at close); these
/// statements are never run by GRDB with stored arguments, so its argument bookkeeping does not
/// matter to them.
struct SQLiteSession: SQLSession {
    let db: Database
    var dialect: SQLDialect { .sqlite }
    /// SQLite runs every statement at once: a job reads what it needs, never asserts it.
    var optimistic: Bool { false }

    @discardableResult
    func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int {
        let statement = try prepared(sql, arguments)
        defer { finish(statement) }
        while true {
            let code = sqlite3_step(statement)
            if code == SQLITE_DONE { break }
            if code != SQLITE_ROW { throw failure(code, sql) }
        }
        return Int(sqlite3_changes(db.sqliteConnection))
    }

    func send(_ sql: String, _ arguments: [SQLValue]) throws {
        try execute(sql, arguments)
    }

    func flush() throws {}

    func insert(_ insert: SQLInsert, _ values: [SQLValue]) throws {
        try execute(insert.sql, values)
    }

    func require(_ check: SQLRowCheck) throws {
        if try fetchAll(check.query(for: .sqlite), [.text(check.key)]).isEmpty { throw SQLRowCheck.Failed(check: check.kind) }
    }

    func fetchAll(_ sql: String, _ arguments: [SQLValue]) throws -> [SQLRow] {
        let statement = try prepared(sql, arguments)
        defer { finish(statement) }
        let count = sqlite3_column_count(statement)
        var rows: [SQLRow] = []
        var columns: SQLColumns?
        while true {
            let code = sqlite3_step(statement)
            if code == SQLITE_DONE { break }
            guard code == SQLITE_ROW else { throw failure(code, sql) }
            if columns == nil {
                columns = SQLColumns((0..<count).map { String(cString: sqlite3_column_name(statement, $0)) })
            }
            var values: [SQLValue] = []
            values.reserveCapacity(Int(count))
            for index in 0..<count { values.append(Self.column(statement, index)) }
            rows.append(SQLRow(columns: columns!, values: values))
        }
        return rows
    }

    /// The cached statement for `sql`, reset, with `arguments` bound (copied: SQLITE_TRANSIENT).
    private func prepared(_ sql: String, _ arguments: [SQLValue]) throws -> OpaquePointer {
        let statement = try db.cachedStatement(sql: sql).sqliteStatement
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
        guard Int(sqlite3_bind_parameter_count(statement)) == arguments.count else {
            throw StoreError.database("statement expects \(sqlite3_bind_parameter_count(statement)) values, got \(arguments.count): \(sql)")
        }
        for (offset, value) in arguments.enumerated() {
            let index = Int32(offset + 1)
            let code: Int32
            switch value {
            case .null: code = sqlite3_bind_null(statement, index)
            case .int(let v): code = sqlite3_bind_int64(statement, index, v)
            case .double(let v): code = sqlite3_bind_double(statement, index, v)
            case .text(let v):
                var text = v
                code = text.withUTF8 { bytes in
                    guard !bytes.isEmpty else { return sqlite3_bind_text(statement, index, "", 0, Self.transient) }
                    return bytes.withMemoryRebound(to: CChar.self) { chars in
                        sqlite3_bind_text(statement, index, chars.baseAddress, Int32(chars.count), Self.transient)
                    }
                }
            case .blob(let v):
                code = v.withUnsafeBytes { bytes in
                    sqlite3_bind_blob(statement, index, bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(bytes.count), Self.transient)
                }
            }
            guard code == SQLITE_OK else { throw failure(code, sql) }
        }
        return statement
    }

    /// Leaves the statement reset and unbound: no read transaction stays open behind a cached
    /// SELECT, and no bound text outlives the call.
    private func finish(_ statement: OpaquePointer) {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
    }

    private func failure(_ code: Int32, _ sql: String) -> Error {
        let message = String(cString: sqlite3_errmsg(db.sqliteConnection))
        // The statement's text names tables and columns only; values are bound, never in it.
        return StoreError.database(message.isEmpty ? "SQLite error \(code)" : message)
    }

    /// SQLite copies what is bound with SQLITE_TRANSIENT before the bind call returns.
    private static let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

    private static func column(_ statement: OpaquePointer, _ index: Int32) -> SQLValue {
        switch sqlite3_column_type(statement, index) {
        case SQLITE_NULL: return .null
        case SQLITE_INTEGER: return .int(sqlite3_column_int64(statement, index))
        case SQLITE_FLOAT: return .double(sqlite3_column_double(statement, index))
        case SQLITE_BLOB:
            let count = Int(sqlite3_column_bytes(statement, index))
            guard count > 0, let bytes = sqlite3_column_blob(statement, index) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: bytes, count: count)))
        default:
            guard let text = sqlite3_column_text(statement, index) else { return .text("") }
            let count = Int(sqlite3_column_bytes(statement, index))
            return .text(String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self))
        }
    }
}

extension SQLiteSession {
    /// GRDB's errors as the store's own (message and code, never a bound value).
    static func wrap(_ error: Error) -> Error {
        if let error = error as? DatabaseError { return StoreError.database(error.message ?? "\(error.resultCode)") }
        return error
    }
}
