/// A TOML table: its keys in the order the document defined them, each with the line that
/// defined it, so a caller can point at a line for a problem it finds in a value.
public struct TOMLTable: Sendable, Equatable {
    /// The keys, in the order the document defined them.
    public let keys: [String]
    /// The line that defined the table: its `[header]` or `[[header]]`, the line of its first
    /// dotted key or inline table, 1 for the document itself.
    public let line: Int
    private let values: [TOMLKey: TOMLValue]
    private let lines: [TOMLKey: Int]

    init(keys: [String], values: [TOMLKey: TOMLValue], lines: [TOMLKey: Int], line: Int) {
        self.keys = keys
        self.values = values
        self.lines = lines
        self.line = line
    }

    /// The value of `key`, or nil when the table has no such key. Keys compare by code point:
    /// `"\u{212A}"` (the Kelvin sign) is not `K`.
    public subscript(key: String) -> TOMLValue? { values[TOMLKey(key)] }

    /// The line that defined `key` (its `key = value` line, or the first header or dotted key
    /// that made it a table), or nil when the table has no such key.
    public func line(of key: String) -> Int? { lines[TOMLKey(key)] }

    /// Whether the table has no keys.
    public var isEmpty: Bool { keys.isEmpty }
}
