import Foundation
import GRDB

/// A GRDB connection as an `SQLSession`. Every statement is prepared once per connection and
/// cached (GRDB's statement cache): the hot paths parse nothing per request.
struct SQLiteSession: SQLSession {
    let db: Database
    var dialect: SQLDialect { .sqlite }
    /// SQLite runs every statement at once: a job reads what it needs, never asserts it.
    var optimistic: Bool { false }

    @discardableResult
    func execute(_ sql: String, _ arguments: [SQLValue]) throws -> Int {
        try db.cachedStatement(sql: sql).execute(arguments: Self.arguments(arguments))
        return db.changesCount
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
        let statement = try db.cachedStatement(sql: sql)
        let columns = SQLColumns(statement.columnNames)
        let cursor = try Row.fetchCursor(statement, arguments: Self.arguments(arguments))
        var rows: [SQLRow] = []
        while let row = try cursor.next() {
            rows.append(SQLRow(columns: columns, values: row.databaseValues.map(Self.value)))
        }
        return rows
    }

    static func arguments(_ values: [SQLValue]) -> StatementArguments {
        StatementArguments(values.map { value -> DatabaseValue in
            switch value {
            case .null: .null
            case .int(let v): v.databaseValue
            case .double(let v): v.databaseValue
            case .text(let v): v.databaseValue
            case .blob(let v): Data(v).databaseValue
            }
        })
    }

    static func value(_ value: DatabaseValue) -> SQLValue {
        switch value.storage {
        case .null: .null
        case .int64(let v): .int(v)
        case .double(let v): .double(v)
        case .string(let v): .text(v)
        case .blob(let v): .blob(Array(v))
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
