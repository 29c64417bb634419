/// One value bound to or read from a statement, in the few types both stores share: how the
/// store's code speaks to SQLite and PostgreSQL alike (BLOB/BYTEA, REAL/DOUBLE PRECISION,
/// INTEGER/BIGINT, TEXT).
public enum SQLValue: Sendable, Equatable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case blob([UInt8])
}

/// Something that can be bound as an `SQLValue` (the argument lists of the store's statements).
public protocol SQLBindable {
    var sqlValue: SQLValue { get }
}

extension Int64: SQLBindable { public var sqlValue: SQLValue { .int(self) } }
extension Int: SQLBindable { public var sqlValue: SQLValue { .int(Int64(self)) } }
extension Double: SQLBindable { public var sqlValue: SQLValue { .double(self) } }
extension String: SQLBindable { public var sqlValue: SQLValue { .text(self) } }
extension Bool: SQLBindable { public var sqlValue: SQLValue { .int(self ? 1 : 0) } }
extension SQLValue: SQLBindable { public var sqlValue: SQLValue { self } }
extension Optional: SQLBindable where Wrapped: SQLBindable {
    public var sqlValue: SQLValue { self?.sqlValue ?? .null }
}

/// A type a column can be read as. Reading tolerates the engines' differences (an integer
/// column read as Double, a boolean as 0/1) and fails loudly on anything else: a value of
/// the wrong type means an edited or foreign database, never a default.
public protocol SQLDecodable {
    static func decode(_ value: SQLValue) throws -> Self
}

/// A column that is absent, NULL where it may not be, or of the wrong type.
public struct SQLDecodingError: Error, CustomStringConvertible {
    public let column: String
    public let expected: String
    public var description: String { "column \(column): expected \(expected)" }
}

extension Int64: SQLDecodable {
    public static func decode(_ value: SQLValue) throws -> Int64 {
        switch value {
        case .int(let v): return v
        case .double(let v) where v.rounded() == v && abs(v) < 9.0e18: return Int64(v)
        default: throw SQLDecodingError(column: "", expected: "an integer")
        }
    }
}

extension Int: SQLDecodable {
    public static func decode(_ value: SQLValue) throws -> Int { Int(try Int64.decode(value)) }
}

extension Double: SQLDecodable {
    public static func decode(_ value: SQLValue) throws -> Double {
        switch value {
        case .double(let v): return v
        case .int(let v): return Double(v)
        default: throw SQLDecodingError(column: "", expected: "a number")
        }
    }
}

extension String: SQLDecodable {
    public static func decode(_ value: SQLValue) throws -> String {
        guard case .text(let v) = value else { throw SQLDecodingError(column: "", expected: "text") }
        return v
    }
}

extension Bool: SQLDecodable {
    public static func decode(_ value: SQLValue) throws -> Bool { try Int64.decode(value) != 0 }
}

extension Array: SQLDecodable where Element == UInt8 {
    public static func decode(_ value: SQLValue) throws -> [UInt8] {
        guard case .blob(let v) = value else { throw SQLDecodingError(column: "", expected: "bytes") }
        return v
    }
}

extension Optional: SQLDecodable where Wrapped: SQLDecodable {
    public static func decode(_ value: SQLValue) throws -> Wrapped? {
        if case .null = value { return nil }
        return try Wrapped.decode(value)
    }
}

/// One result row: its column names (shared by the rows of one result) and values.
public struct SQLRow: Sendable {
    let columns: SQLColumns
    let values: [SQLValue]

    init(columns: SQLColumns, values: [SQLValue]) {
        self.columns = columns
        self.values = values
    }

    /// The value of column `name`, read as `T`. Throws for a missing column or a wrong type.
    public func get<T: SQLDecodable>(_ name: String) throws -> T {
        guard let index = columns.index(of: name) else {
            // A column added by a later migration reads as NULL in a row of an older query.
            if let absent = try? T.decode(.null) { return absent }
            throw SQLDecodingError(column: name, expected: "a column of that name")
        }
        do {
            return try T.decode(values[index])
        } catch let error as SQLDecodingError {
            throw SQLDecodingError(column: name, expected: error.expected)
        }
    }

    /// The raw value of column `name` (`.null` when absent).
    public func value(_ name: String) -> SQLValue {
        columns.index(of: name).map { values[$0] } ?? .null
    }
}

/// The column names of one result, looked up by name (a short linear scan: rows have ~15 columns).
final class SQLColumns: Sendable {
    let names: [String]
    init(_ names: [String]) { self.names = names }
    func index(of name: String) -> Int? { names.firstIndex(of: name) }
}
