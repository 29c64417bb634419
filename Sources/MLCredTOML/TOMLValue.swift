/// One TOML value (TOML 1.0.0). Tables and arrays of tables come out as `.table` and `.array`
/// of `.table`, as the document wrote them.
public indirect enum TOMLValue: Sendable, Equatable {
    case string(String)
    /// A 64-bit signed integer (TOML's range).
    case integer(Int64)
    /// An IEEE 754 binary64 float; `inf` and `nan` included, as TOML allows them.
    case float(Double)
    case boolean(Bool)
    /// A date, time or date-time, kept as written (validated, not converted).
    case dateTime(TOMLDateTime)
    case array([TOMLValue])
    case table(TOMLTable)

    /// The text of a string, else nil.
    public var string: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// An integer's value, else nil (a float is not an integer).
    public var int: Int? {
        if case .integer(let value) = self { return Int(exactly: value) }
        return nil
    }

    /// A float's value, else nil (an integer is not a float).
    public var double: Double? {
        if case .float(let value) = self { return value }
        return nil
    }

    /// A boolean's value, else nil.
    public var bool: Bool? {
        if case .boolean(let value) = self { return value }
        return nil
    }

    /// An array's elements (an array of tables included), else nil.
    public var array: [TOMLValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// A table (a `[header]` table, a dotted-key table or an inline table), else nil.
    public var table: TOMLTable? {
        if case .table(let value) = self { return value }
        return nil
    }

    /// The type's name as TOML calls it, for messages ("expected a string, found an integer").
    public var typeName: String {
        switch self {
        case .string: "string"
        case .integer: "integer"
        case .float: "float"
        case .boolean: "boolean"
        case .dateTime(let value): value.kind.rawValue
        case .array: "array"
        case .table: "table"
        }
    }

    /// `typeName` after "a" or "an" ("an integer", "a string").
    public var typeNameWithArticle: String {
        let name = typeName
        return ("aeiou".contains(name.first ?? "x") ? "an " : "a ") + name
    }
}

/// A TOML date, time or date-time, exactly as written (after its syntax and ranges were checked).
public struct TOMLDateTime: Sendable, Equatable {
    /// Which of TOML's four shapes it is.
    public enum Kind: String, Sendable {
        case offsetDateTime = "offset date-time"
        case localDateTime = "local date-time"
        case localDate = "local date"
        case localTime = "local time"
    }

    public let kind: Kind
    /// The value's text as it stood in the document.
    public let text: String
}
