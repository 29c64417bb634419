/// Values: strings (four forms), numbers, booleans, dates and times, arrays, inline tables.
extension TOMLParser {
    /// A value starting at the current position; `depth` is how deep it sits (arrays and inline
    /// tables inside it go one deeper each).
    mutating func value(depth: Int) throws(TOMLSyntaxError) -> TOMLValue {
        guard let byte = peek() else { throw error("expected a value, found the end of the file") }
        switch byte {
        case UInt8(ascii: "\""):
            if peek(1) == UInt8(ascii: "\""), peek(2) == UInt8(ascii: "\"") { return .string(try multilineString()) }
            return .string(try basicString())
        case UInt8(ascii: "'"):
            if peek(1) == UInt8(ascii: "'"), peek(2) == UInt8(ascii: "'") { return .string(try multilineString()) }
            return .string(try literalString())
        case UInt8(ascii: "t") where matches("true"):
            advance(4)
            return .boolean(true)
        case UInt8(ascii: "f") where matches("false"):
            advance(5)
            return .boolean(false)
        case UInt8(ascii: "["):
            return try array(depth: depth + 1)
        case UInt8(ascii: "{"):
            return try inlineTable(depth: depth + 1)
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "i"), UInt8(ascii: "n"):
            return try numberOrDate()
        default:
            if let word = bareWord() { throw error(Self.notAValue(word)) }
            throw error("expected a value (a string, number, true, false, date, array or inline table), found \(found())")
        }
    }

    /// The letters, digits, `_` and `-` at the current position when they start with a letter.
    private func bareWord() -> String? {
        guard let first = peek(), (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first | 0x20) else { return nil }
        var end = position
        while end < bytes.count, end - position < 64, Self.isBareKeyByte(bytes[end]) { end += 1 }
        return String(decoding: bytes[position..<end], as: UTF8.self)
    }

    static func notAValue(_ word: String) -> String {
        switch word {
        case "null", "nil", "none", "None", "NULL": "'\(word)' is not a value: TOML has no null (leave the key out)"
        default: "'\(word)' is not a value: a string needs quotes (\"\(word)\")"
        }
    }

    private func matches(_ word: StaticString) -> Bool {
        let expected = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        return position + expected.count <= bytes.count && bytes[position..<(position + expected.count)].elementsEqual(expected)
    }

    // MARK: Arrays and inline tables

    private mutating func array(depth: Int) throws(TOMLSyntaxError) -> TOMLValue {
        guard depth <= TOML.maximumDepth else { throw error("nested deeper than \(TOML.maximumDepth) levels") }
        let opening = mark
        advance()
        var elements: [TOMLValue] = []
        while true {
            try skipBlank()
            if peek() == nil { throw error("unclosed array: add the ']' that closes this '['", at: opening) }
            if peek() == UInt8(ascii: "]") {
                advance()
                return .array(elements)
            }
            elements.append(try value(depth: depth))
            try skipBlank()
            switch peek() {
            case nil:
                throw error("unclosed array: add the ']' that closes this '['", at: opening)
            case UInt8(ascii: ","):
                advance()
            case UInt8(ascii: "]"):
                advance()
                return .array(elements)
            default:
                throw error("expected ',' or ']' in the array, found \(found())")
            }
        }
    }

    /// `{ key = value, ... }` on one line (a value inside may span lines), no trailing comma.
    private mutating func inlineTable(depth: Int) throws(TOMLSyntaxError) -> TOMLValue {
        guard depth <= TOML.maximumDepth else { throw error("nested deeper than \(TOML.maximumDepth) levels") }
        let table = TOMLTableNode(line: line, origin: .defined)
        advance()
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            advance()
            return .table(table.freeze())
        }
        while true {
            skipWhitespace()
            if peek() == UInt8(ascii: "}") { throw error("an inline table takes no comma after its last entry") }
            if peek() == UInt8(ascii: "\n") || peek() == UInt8(ascii: "\r") { throw unclosedInlineTable() }
            try keyValue(into: table, depth: depth)
            skipWhitespace()
            switch peek() {
            case UInt8(ascii: ","):
                advance()
            case UInt8(ascii: "}"):
                advance()
                return .table(table.freeze())
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                throw unclosedInlineTable()
            default:
                throw error("expected ',' or '}' in the inline table, found \(found())")
            }
        }
    }

    private func unclosedInlineTable() -> TOMLSyntaxError {
        error("an inline table must close on the line it opens ('}'); use a [table] for more")
    }

    // MARK: Strings

    /// `"..."`: escapes, one line.
    mutating func basicString() throws(TOMLSyntaxError) -> String {
        advance()
        var out: [UInt8] = []
        while true {
            guard let byte = peek() else { throw error("unterminated string: add the closing '\"'") }
            switch byte {
            case UInt8(ascii: "\""):
                advance()
                return try text(out)
            case UInt8(ascii: "\\"):
                try escape(into: &out)
            case UInt8(ascii: "\r") where peek(1) != UInt8(ascii: "\n"):
                throw error("a carriage return alone (U+000D) in a string: write it as \\r")
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                throw error("a string must end on its line: add the closing '\"' (or use \"\"\" for several lines)")
            default:
                if Self.isControl(byte) { throw error("control character \(found()) in a string: write it as an escape (\\uXXXX)") }
                out.append(byte)
                advance()
            }
        }
    }

    /// `'...'`: no escapes, one line.
    mutating func literalString() throws(TOMLSyntaxError) -> String {
        advance()
        let start = position
        while true {
            guard let byte = peek() else { throw error("unterminated string: add the closing \"'\"") }
            switch byte {
            case UInt8(ascii: "'"):
                let value = try text(bytes[start..<position])
                advance()
                return value
            case UInt8(ascii: "\r") where peek(1) != UInt8(ascii: "\n"):
                throw error("a carriage return alone (U+000D) in a string")
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                throw error("a string must end on its line: add the closing \"'\" (or use ''' for several lines)")
            default:
                if Self.isControl(byte) { throw error("control character \(found()) in a string") }
                advance()
            }
        }
    }

    /// `"""..."""` (escapes; a backslash at a line's end joins lines) or `'''...'''` (no
    /// escapes), at the first of the three quotes: a first newline dropped, CRLF read as LF.
    private mutating func multilineString() throws(TOMLSyntaxError) -> String {
        let opening = mark
        let quote = bytes[position]
        let escapes = quote == UInt8(ascii: "\"")
        let closing = escapes ? "'\"\"\"'" : "\"'''\""
        advance(3)
        try dropFirstNewline()
        var out: [UInt8] = []
        while true {
            guard let byte = peek() else { throw error("unterminated string: add the \(closing) that closes this one", at: opening) }
            switch byte {
            case quote:
                if try closesMultiline(quote: byte, into: &out) { return try text(out) }
            case UInt8(ascii: "\\") where escapes:
                var next = position + 1
                while next < bytes.count, bytes[next] == UInt8(ascii: " ") || bytes[next] == UInt8(ascii: "\t") { next += 1 }
                if next < bytes.count, bytes[next] == UInt8(ascii: "\n") || bytes[next] == UInt8(ascii: "\r") {
                    // A line-ending backslash: drop it and every blank up to the next other character.
                    position = next
                    while true {
                        skipWhitespace()
                        guard let blank = peek(), blank == UInt8(ascii: "\n") || blank == UInt8(ascii: "\r") else { break }
                        try newline()
                    }
                } else {
                    try escape(into: &out)
                }
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                try newline()
                out.append(UInt8(ascii: "\n"))
            default:
                if Self.isControl(byte) {
                    throw error("control character \(found()) in a string" + (escapes ? ": write it as an escape (\\uXXXX)" : ""))
                }
                out.append(byte)
                advance()
            }
        }
    }

    /// The text of a string's bytes, refused when it has more than
    /// `maximumCombiningMarks` combining marks in a row.
    ///
    /// Threat: Swift compares and hashes a `String` after normalizing it, and putting a long run
    /// of combining marks of mixed classes in canonical order takes time quadratic in its
    /// length: one 1 MiB key or role name would hold the loader for minutes, wherever the string
    /// is compared later. Unicode's stream-safe format (UAX #15) bounds such a run at 30; no
    /// real text has more.
    private func text<C: Collection>(_ utf8: C) throws(TOMLSyntaxError) -> String where C.Element == UInt8 {
        let value = String(decoding: utf8, as: UTF8.self)
        guard utf8.contains(where: { $0 >= 0x80 }) else { return value }
        var run = 0
        for scalar in value.unicodeScalars {
            run = scalar.properties.canonicalCombiningClass == .notReordered ? 0 : run + 1
            if run > Self.maximumCombiningMarks {
                throw error("more than \(Self.maximumCombiningMarks) combining marks in a row in a string (Unicode's stream-safe limit)")
            }
        }
        return value
    }

    /// Unicode's stream-safe limit on combining marks in a row (UAX #15).
    static let maximumCombiningMarks = 30

    private mutating func dropFirstNewline() throws(TOMLSyntaxError) {
        if let byte = peek(), byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") { try newline() }
    }

    /// At a run of quotes in a multi-line string: three close it, and up to two more before them
    /// belong to the text (`""""` is a quote and the end). Fewer than three are text.
    private mutating func closesMultiline(quote: UInt8, into out: inout [UInt8]) throws(TOMLSyntaxError) -> Bool {
        var count = 0
        while peek(count) == quote { count += 1 }
        if count < 3 {
            out.append(contentsOf: repeatElement(quote, count: count))
            advance(count)
            return false
        }
        guard count <= 5 else {
            throw error("too many quotes in a row: a multi-line string holds at most two before its closing three")
        }
        out.append(contentsOf: repeatElement(quote, count: count - 3))
        advance(count)
        return true
    }

    /// `\b \t \n \f \r \" \\ \uXXXX \UXXXXXXXX`, at the backslash.
    private mutating func escape(into out: inout [UInt8]) throws(TOMLSyntaxError) {
        advance()
        guard let letter = peek() else { throw error("unterminated string: an escape at the end of the file") }
        let simple: UInt8? = switch letter {
        case UInt8(ascii: "b"): 0x08
        case UInt8(ascii: "t"): 0x09
        case UInt8(ascii: "n"): 0x0A
        case UInt8(ascii: "f"): 0x0C
        case UInt8(ascii: "r"): 0x0D
        case UInt8(ascii: "\""): UInt8(ascii: "\"")
        case UInt8(ascii: "\\"): UInt8(ascii: "\\")
        default: nil
        }
        if let simple {
            out.append(simple)
            advance()
            return
        }
        let width: Int
        switch letter {
        case UInt8(ascii: "u"): width = 4
        case UInt8(ascii: "U"): width = 8
        case UInt8(ascii: "\n"), UInt8(ascii: "\r"):
            throw error("a backslash at the end of a line joins lines only in a \"\"\" string")
        case 0x21..<0x7F:
            throw error("unknown escape '\\\(found().trimmingQuotes)' (TOML has \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX)")
        default:
            throw error("a backslash before \(found()) is no escape (TOML has \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX; \\\\ for a backslash)")
        }
        advance()
        var value: UInt32 = 0
        for _ in 0..<width {
            guard let digit = peek().flatMap(Self.hexDigit) else {
                throw error("'\\\(Character(Unicode.Scalar(letter)))' takes exactly \(width) hexadecimal digits")
            }
            value = value << 4 | UInt32(digit)
            advance()
        }
        guard let scalar = Unicode.Scalar(value) else {
            throw error("U+\(Self.hex(value, width: 4)) is not a Unicode scalar value (a surrogate, or above U+10FFFF)")
        }
        UTF8.encode(scalar) { out.append($0) }
    }

    static func hexDigit(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    // MARK: Numbers, dates and times

    private func isDigit(at offset: Int) -> Bool {
        guard let byte = peek(offset) else { return false }
        return byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    private mutating func numberOrDate() throws(TOMLSyntaxError) -> TOMLValue {
        if isDigit(at: 0), isDigit(at: 1), isDigit(at: 2), isDigit(at: 3), peek(4) == UInt8(ascii: "-") {
            return try dateTime()
        }
        if isDigit(at: 0), isDigit(at: 1), peek(2) == UInt8(ascii: ":") {
            let start = position
            try time()
            return .dateTime(TOMLDateTime(kind: .localTime, text: String(decoding: bytes[start..<position], as: UTF8.self)))
        }
        let start = position
        while let byte = peek(), Self.isBareKeyByte(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".") { advance() }
        let token = String(decoding: bytes[start..<position], as: UTF8.self)
        switch TOMLNumber.parse(token) {
        case .value(let value):
            return value
        case .outOfRange:
            position = start
            throw error("'\(Self.printable(token))' does not fit in a 64-bit integer")
        case .floatOutOfRange:
            position = start
            throw error("'\(Self.printable(token))' is beyond the largest 64-bit float (about 1.8e308)")
        case .malformed:
            position = start
            if let word = bareWord(), !word.hasPrefix("inf"), !word.hasPrefix("nan") { throw error(Self.notAValue(word)) }
            throw error("'\(Self.printable(token))' is not a TOML number (integers like 42, -7, 1_000, 0x2A; floats like 3.14, 1e6, inf)")
        }
    }

    /// `YYYY-MM-DD`, optionally followed by `T` (or a space) and a time, optionally an offset.
    private mutating func dateTime() throws(TOMLSyntaxError) -> TOMLValue {
        let start = position
        let year = try digits(4)
        try expect(UInt8(ascii: "-"))
        let month = try digits(2)
        try expect(UInt8(ascii: "-"))
        let day = try digits(2)
        guard (1...12).contains(month), (1...Self.days(inMonth: month, year: year)).contains(day) else {
            position = start
            throw error("'\(String(decoding: bytes[start..<min(start + 10, bytes.count)], as: UTF8.self))' is not a date: no such month or day")
        }
        var kind = TOMLDateTime.Kind.localDate
        let separator = peek()
        if separator == UInt8(ascii: "T") || separator == UInt8(ascii: "t")
            || (separator == UInt8(ascii: " ") && isDigit(at: 1) && isDigit(at: 2) && peek(3) == UInt8(ascii: ":")) {
            advance()
            try time()
            kind = .localDateTime
            switch peek() {
            case UInt8(ascii: "Z"), UInt8(ascii: "z"):
                advance()
                kind = .offsetDateTime
            case UInt8(ascii: "+"), UInt8(ascii: "-"):
                advance()
                let hours = try digits(2)
                try expect(UInt8(ascii: ":"))
                let minutes = try digits(2)
                guard hours < 24, minutes < 60 else { throw error("a time offset runs from -23:59 to +23:59") }
                kind = .offsetDateTime
            default:
                break
            }
        }
        return .dateTime(TOMLDateTime(kind: kind, text: String(decoding: bytes[start..<position], as: UTF8.self)))
    }

    /// `HH:MM:SS` with an optional fraction.
    private mutating func time() throws(TOMLSyntaxError) {
        let hours = try digits(2)
        try expect(UInt8(ascii: ":"))
        let minutes = try digits(2)
        guard peek() == UInt8(ascii: ":") else {
            throw error("a time needs seconds in TOML 1.0.0 (07:32:00, not 07:32), found \(found())")
        }
        advance()
        let seconds = try digits(2)
        // 60: a leap second, as RFC 3339 allows.
        guard hours < 24, minutes < 60, seconds <= 60 else { throw error("no such time: hours run to 23, minutes to 59, seconds to 60") }
        if peek() == UInt8(ascii: ".") {
            advance()
            guard isDigit(at: 0) else { throw error("expected digits after the '.' of a time's seconds, found \(found())") }
            while isDigit(at: 0) { advance() }
        }
    }

    private mutating func digits(_ count: Int) throws(TOMLSyntaxError) -> Int {
        var value = 0
        for _ in 0..<count {
            guard let byte = peek(), isDigit(at: 0) else {
                throw error("malformed date or time, found \(found()) (write 1979-05-27, 07:32:00, 1979-05-27T07:32:00Z or 1979-05-27T07:32:00-07:00)")
            }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
            advance()
        }
        return value
    }

    private mutating func expect(_ byte: UInt8) throws(TOMLSyntaxError) {
        guard peek() == byte else {
            throw error("malformed date or time: expected '\(Character(Unicode.Scalar(byte)))', found \(found())")
        }
        advance()
    }

    static func days(inMonth month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}

private extension String {
    var trimmingQuotes: String {
        hasPrefix("'") && hasSuffix("'") && count >= 2 ? String(dropFirst().dropLast()) : self
    }
}
