/// The parser behind `TOML.parse`: one pass over the UTF-8 bytes, tables built as
/// `TOMLTableNode`s and frozen at the end. Values are in `TOMLParser+Values.swift`.
struct TOMLParser {
    let bytes: [UInt8]
    var position = 0
    var line = 1
    var lineStart = 0
    private let root = TOMLTableNode(line: 1, origin: .defined)
    /// The table the current section's `key = value` lines go to.
    private var section: TOMLTableNode
    /// How many key parts deep `section` is.
    private var sectionDepth = 0
    /// Tables made by dotted keys since the last header: defined once the section ends.
    private var pending: [TOMLTableNode] = []

    init(_ text: String) {
        let utf8 = Array(text.utf8)
        // A byte order mark is no part of the document.
        bytes = utf8.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(utf8.dropFirst(3)) : utf8
        section = root
    }

    mutating func parseDocument() throws(TOMLSyntaxError) -> TOMLTable {
        while true {
            skipWhitespace()
            guard let byte = peek() else { break }
            switch byte {
            case UInt8(ascii: "#"):
                try skipComment()
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                try newline()
            case UInt8(ascii: "["):
                try header()
                try endOfLine(after: "the table header")
            default:
                try keyValue(into: section, depth: sectionDepth)
                try endOfLine(after: "the value")
            }
        }
        return root.freeze()
    }

    // MARK: Tables

    /// `[a.b]` or `[[a.b]]`: finds or makes the table, checking it was not defined before.
    private mutating func header() throws(TOMLSyntaxError) {
        let headerLine = line
        let start = mark
        advance()
        let isArray = peek() == UInt8(ascii: "[")
        if isArray { advance() }
        skipWhitespace()
        let keys = try key()
        if peek() != UInt8(ascii: "]") {
            throw error("expected ']' to close the table header [\(dotted(keys))], found \(found())")
        }
        advance()
        if isArray {
            guard peek() == UInt8(ascii: "]") else {
                throw error("expected ']]' to close the array of tables header [[\(dotted(keys))]], found \(found())")
            }
            advance()
        }
        for node in pending where node.origin == .dottedPending { node.origin = .defined }
        pending.removeAll()

        var parent = root
        for (index, part) in keys.dropLast().enumerated() {
            switch parent[part] {
            case nil:
                let child = TOMLTableNode(line: headerLine, origin: .implicit)
                parent.set(part, .table(child), line: headerLine)
                parent = child
            case .table(let child):
                parent = child
            case .tables(let elements):
                parent = elements[elements.count - 1]
            case .value(let value):
                throw error(Self.closed(dotted(keys.prefix(index + 1)), value, line: parent.line(of: part)), at: start)
            }
        }
        let last = keys[keys.count - 1]
        let name = dotted(keys)
        if isArray {
            let element = TOMLTableNode(line: headerLine, origin: .defined)
            switch parent[last] {
            case nil:
                parent.set(last, .tables([element]), line: headerLine)
            case .tables:
                parent.appendTable(element, to: last)
            case .table(let existing):
                throw error("'\(name)' is a table (line \(existing.line)): [[\(name)]] cannot make it an array of tables", at: start)
            case .value(let value):
                throw error(Self.closed(name, value, line: parent.line(of: last)) + ": [[\(name)]] cannot add to it", at: start)
            }
            section = element
        } else {
            switch parent[last] {
            case nil:
                let table = TOMLTableNode(line: headerLine, origin: .defined)
                parent.set(last, .table(table), line: headerLine)
                section = table
            case .table(let existing):
                guard existing.origin == .implicit else {
                    throw error("table [\(name)] is defined twice (first at line \(existing.line))", at: start)
                }
                existing.origin = .defined
                existing.line = headerLine
                section = existing
            case .tables:
                throw error("'\(name)' is an array of tables (line \(parent.line(of: last) ?? 1)): write [[\(name)]] to add an element", at: start)
            case .value(let value):
                throw error(Self.closed(name, value, line: parent.line(of: last)), at: start)
            }
        }
        sectionDepth = keys.count
    }

    /// `key = value` (the key may be dotted) into `table`, which is `depth` parts deep.
    mutating func keyValue(into table: TOMLTableNode, depth: Int) throws(TOMLSyntaxError) {
        let keyLine = line
        let start = mark
        let keys = try key()
        guard peek() == UInt8(ascii: "=") else {
            throw error("expected '=' after the key '\(dotted(keys))', found \(found())")
        }
        advance()
        skipWhitespace()
        guard depth + keys.count <= TOML.maximumDepth else {
            throw error("nested deeper than \(TOML.maximumDepth) levels")
        }
        let value = try value(depth: depth + keys.count)
        var target = table
        for (index, part) in keys.dropLast().enumerated() {
            switch target[part] {
            case nil:
                let child = TOMLTableNode(line: keyLine, origin: .dottedPending)
                target.set(part, .table(child), line: keyLine)
                pending.append(child)
                target = child
            case .table(let child):
                switch child.origin {
                case .defined:
                    throw error("'\(dotted(keys))': table '\(dotted(keys.prefix(index + 1)))' was defined at line \(child.line), and dotted keys cannot add to it",
                                at: start)
                case .implicit:
                    // From here on, this key defines it.
                    child.origin = .dottedPending
                    child.line = keyLine
                    pending.append(child)
                case .dottedPending:
                    break
                }
                target = child
            case .tables:
                throw error("'\(dotted(keys.prefix(index + 1)))' is an array of tables (line \(target.line(of: part) ?? 1)): dotted keys cannot add to it",
                            at: start)
            case .value(let existing):
                throw error(Self.closed(dotted(keys.prefix(index + 1)), existing, line: target.line(of: part)), at: start)
            }
        }
        let last = keys[keys.count - 1]
        if target[last] != nil {
            throw error("key '\(dotted(keys))' is defined twice (first at line \(target.line(of: last) ?? 1))", at: start)
        }
        target.set(last, .value(value), line: keyLine)
    }

    /// A key: one or more bare or quoted parts joined by dots; leaves whitespace after it skipped.
    mutating func key() throws(TOMLSyntaxError) -> [String] {
        var parts: [String] = []
        while true {
            skipWhitespace()
            parts.append(try simpleKey())
            guard parts.count <= TOML.maximumDepth else {
                throw error("a key of more than \(TOML.maximumDepth) parts")
            }
            skipWhitespace()
            guard peek() == UInt8(ascii: ".") else { return parts }
            advance()
        }
    }

    private mutating func simpleKey() throws(TOMLSyntaxError) -> String {
        guard let byte = peek() else { throw error("expected a key, found the end of the file") }
        switch byte {
        case UInt8(ascii: "\""):
            if peek(1) == UInt8(ascii: "\""), peek(2) == UInt8(ascii: "\"") {
                throw error("a key cannot be a multi-line string")
            }
            return try basicString()
        case UInt8(ascii: "'"):
            if peek(1) == UInt8(ascii: "'"), peek(2) == UInt8(ascii: "'") {
                throw error("a key cannot be a multi-line string")
            }
            return try literalString()
        default:
            let start = position
            while let next = peek(), Self.isBareKeyByte(next) { advance() }
            guard position > start else {
                throw error("expected a key (letters, digits, '_' and '-', or a quoted string), found \(found())")
            }
            return String(decoding: bytes[start..<position], as: UTF8.self)
        }
    }

    static func isBareKeyByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default:
            false
        }
    }

    private func dotted<S: Sequence>(_ keys: S) -> String where S.Element == String {
        keys.map { part in
            !part.isEmpty && part.utf8.allSatisfy(Self.isBareKeyByte) ? part : "\"\(Self.printable(part))\""
        }.joined(separator: ".")
    }

    /// A key as a message can show it: control characters escaped, at most 64 characters.
    static func printable(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars.prefix(64) {
            if scalar.value < 0x20 || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value) {
                out += "\\u" + hex(scalar.value, width: 4)
            } else if scalar == "\"" || scalar == "\\" {
                out += "\\" + String(scalar)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return text.unicodeScalars.count > 64 ? out + "…" : out
    }

    static func hex(_ value: UInt32, width: Int) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    // MARK: Lines, whitespace, comments

    func peek(_ offset: Int = 0) -> UInt8? {
        let index = position + offset
        return index < bytes.count ? bytes[index] : nil
    }

    mutating func advance(_ count: Int = 1) {
        position += count
    }

    mutating func skipWhitespace() {
        while let byte = peek(), byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") { advance() }
    }

    /// Whitespace, comments and newlines (inside an array).
    mutating func skipBlank() throws(TOMLSyntaxError) {
        while true {
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: "#"): try skipComment()
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"): try newline()
            default: return
            }
        }
    }

    /// From `#` to the end of the line (the newline itself stays).
    mutating func skipComment() throws(TOMLSyntaxError) {
        advance()
        while let byte = peek(), byte != UInt8(ascii: "\n") {
            if byte == UInt8(ascii: "\r") {
                guard peek(1) == UInt8(ascii: "\n") else { throw error("a carriage return must be followed by a line feed") }
                return
            }
            if Self.isControl(byte) { throw error("control character \(found()) in a comment") }
            advance()
        }
    }

    /// LF or CRLF.
    mutating func newline() throws(TOMLSyntaxError) {
        if peek() == UInt8(ascii: "\r") {
            guard peek(1) == UInt8(ascii: "\n") else { throw error("a carriage return must be followed by a line feed") }
            advance()
        }
        advance()
        line += 1
        lineStart = position
    }

    private mutating func endOfLine(after what: String) throws(TOMLSyntaxError) {
        skipWhitespace()
        if peek() == UInt8(ascii: "#") { try skipComment() }
        switch peek() {
        case nil: return
        case UInt8(ascii: "\n"), UInt8(ascii: "\r"): try newline()
        default: throw error("expected the end of the line after \(what), found \(found())")
        }
    }

    /// Control characters TOML refuses in strings and comments: all but tab.
    static func isControl(_ byte: UInt8) -> Bool {
        (byte < 0x20 && byte != UInt8(ascii: "\t")) || byte == 0x7F
    }

    // MARK: Errors

    /// A place in the document, to report a problem where a construct began.
    struct Mark {
        let position: Int
        let line: Int
        let lineStart: Int
    }

    var mark: Mark { Mark(position: position, line: line, lineStart: lineStart) }

    /// An error at `mark` (an array or string opened there and never closed).
    func error(_ message: String, at mark: Mark) -> TOMLSyntaxError {
        let column = bytes[mark.lineStart..<mark.position].reduce(1) { $1 & 0xC0 == 0x80 ? $0 : $0 + 1 }
        return TOMLSyntaxError(line: mark.line, column: column, message: message)
    }

    /// Why a value written with `=` cannot become or hold a table.
    static func closed(_ name: String, _ value: TOMLValue, line: Int?) -> String {
        let at = "line \(line ?? 1)"
        return switch value {
        case .table: "'\(name)' is an inline table (\(at)), complete as written: nothing can be added to it"
        case .array: "'\(name)' is an array written with '=' (\(at)), complete as written: nothing can be added to it"
        default: "'\(name)' is already \(value.typeNameWithArticle) (\(at)), not a table"
        }
    }

    /// An error at the current position.
    func error(_ message: String) -> TOMLSyntaxError {
        let end = min(position, bytes.count)
        let column = bytes[min(lineStart, end)..<end].reduce(1) { $1 & 0xC0 == 0x80 ? $0 : $0 + 1 }
        return TOMLSyntaxError(line: line, column: column, message: message)
    }

    /// What stands at the current position, for a message.
    func found() -> String {
        guard let byte = peek() else { return "the end of the file" }
        switch byte {
        case UInt8(ascii: "\n"), UInt8(ascii: "\r"): return "the end of the line"
        case 0x20..<0x7F: return "'\(Character(Unicode.Scalar(byte)))'"
        case ..<0x80: return "U+" + Self.hex(UInt32(byte), width: 4)
        default:
            let length = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : 2
            let text = String(decoding: bytes[position..<min(position + length, bytes.count)], as: UTF8.self)
            guard let scalar = text.unicodeScalars.first else { return "a byte 0x\(Self.hex(UInt32(byte), width: 2))" }
            return "'\(Self.printable(String(scalar)))'"
        }
    }
}

extension TOMLTableNode {
    /// Appends to the array of tables at `key` without copying it (the entry is taken out first).
    func appendTable(_ element: TOMLTableNode, to key: String) {
        guard case .tables(var elements)? = take(key) else { return }
        elements.append(element)
        put(key, .tables(elements))
    }
}
