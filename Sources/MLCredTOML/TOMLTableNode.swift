/// A table while the document is being read: mutable, shared by the headers and dotted keys
/// that reach it, frozen into a `TOMLTable` at the end.
final class TOMLTableNode {
    enum Entry {
        /// A value written with `=`: a scalar, an array or an inline table, closed to any later
        /// header or dotted key.
        case value(TOMLValue)
        case table(TOMLTableNode)
        /// An array of tables (`[[header]]`): later headers and keys reach its last element.
        case tables([TOMLTableNode])
    }

    /// How the table came to be, which decides what may still add to it (TOML 1.0, "Table").
    enum Origin {
        /// Named on the way to a deeper header (`a` in `[a.b]`): may still get its own header once.
        case implicit
        /// Made by dotted keys (`a.b = 1` makes `a`) in the section being read: more dotted keys
        /// of the same section may add to it.
        case dottedPending
        /// Defined: by its own header, or by dotted keys of a section that has ended. Neither a
        /// header nor a dotted key may define it again; deeper headers may add sub-tables.
        case defined
    }

    private(set) var order: [String] = []
    private(set) var entries: [TOMLKey: Entry] = [:]
    private(set) var lines: [TOMLKey: Int] = [:]
    var line: Int
    var origin: Origin

    init(line: Int, origin: Origin) {
        self.line = line
        self.origin = origin
    }

    subscript(key: String) -> Entry? { entries[TOMLKey(key)] }

    func line(of key: String) -> Int? { lines[TOMLKey(key)] }

    func set(_ key: String, _ entry: Entry, line: Int) {
        let byBytes = TOMLKey(key)
        if entries.updateValue(entry, forKey: byBytes) == nil {
            order.append(key)
            lines[byBytes] = line
        }
    }

    /// Takes the entry of `key` out (its place in the order and its line stay), so the caller
    /// holds the only reference to an array it then grows.
    func take(_ key: String) -> Entry? { entries.removeValue(forKey: TOMLKey(key)) }

    /// Puts back an entry taken with `take`.
    func put(_ key: String, _ entry: Entry) { entries[TOMLKey(key)] = entry }

    /// The value of this table; depth is bounded by the parser's nesting limit.
    func freeze() -> TOMLTable {
        var values: [TOMLKey: TOMLValue] = [:]
        values.reserveCapacity(entries.count)
        for (key, entry) in entries {
            switch entry {
            case .value(let value): values[key] = value
            case .table(let node): values[key] = .table(node.freeze())
            case .tables(let nodes): values[key] = .array(nodes.map { .table($0.freeze()) })
            }
        }
        return TOMLTable(keys: order, values: values, lines: lines, line: line)
    }
}
