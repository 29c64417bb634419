/// A parsed JSON document, for the hot routes' bodies: Foundation's JSONDecoder costs tens of
/// microseconds per small body, more than the rest of a token issue's own work.
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])
}

/// Why a body is not the JSON a route expects. The message names fields, never quotes values
/// (a body may hold a secret).
public struct JSONBodyError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }

    static let notJSON = JSONBodyError("not valid JSON")
    static let duplicateKey = JSONBodyError("an object repeats a key")
}

/// A strict RFC 8259 parser over bytes. Nesting deeper than `maxDepth` is refused, so a hostile
/// body of brackets cannot exhaust the stack; so is an object that repeats a key (RFC 8259 leaves
/// its meaning to the parser).
public struct JSONParser {
    /// Deepest nesting accepted; request bodies need three levels.
    public static let maxDepth = 32

    private let bytes: [UInt8]
    private var index = 0

    /// Parses one JSON document filling the whole of `bytes` (whitespace aside).
    public static func parse(_ bytes: [UInt8]) throws(JSONBodyError) -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw .notJSON }
        return value
    }

    private init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    private mutating func skipWhitespace() {
        while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x0A || bytes[index] == 0x0D || bytes[index] == 0x09 {
            index += 1
        }
    }

    private mutating func value(depth: Int) throws(JSONBodyError) -> JSONValue {
        guard depth < Self.maxDepth else { throw JSONBodyError("nested deeper than \(Self.maxDepth) levels") }
        skipWhitespace()
        guard index < bytes.count else { throw .notJSON }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            index += 1
            var object: [String: JSONValue] = [:]
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .object(object)
            }
            while true {
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw .notJSON }
                let key = try string()
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw .notJSON }
                index += 1
                // A repeated key is refused: parsers disagree on which one counts (Foundation's
                // keeps the first, most keep the last), so a body a reviewer or proxy reads one
                // way could act another way here.
                guard object.updateValue(try value(depth: depth + 1), forKey: key) == nil else { throw .duplicateKey }
                skipWhitespace()
                guard index < bytes.count else { throw .notJSON }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                guard bytes[index] == UInt8(ascii: "}") else { throw .notJSON }
                index += 1
                return .object(object)
            }
        case UInt8(ascii: "["):
            index += 1
            var array: [JSONValue] = []
            skipWhitespace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(array)
            }
            while true {
                array.append(try value(depth: depth + 1))
                skipWhitespace()
                guard index < bytes.count else { throw .notJSON }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                guard bytes[index] == UInt8(ascii: "]") else { throw .notJSON }
                index += 1
                return .array(array)
            }
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        default:
            return .number(try number())
        }
    }

    private mutating func literal(_ word: String) throws(JSONBodyError) {
        let expected = Array(word.utf8)
        guard index + expected.count <= bytes.count, bytes[index..<(index + expected.count)].elementsEqual(expected) else { throw .notJSON }
        index += expected.count
    }

    private mutating func number() throws(JSONBodyError) -> Double {
        let start = index
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
        func digits(_ parser: inout JSONParser) -> Int {
            let from = parser.index
            while parser.index < parser.bytes.count, parser.bytes[parser.index] >= 0x30, parser.bytes[parser.index] <= 0x39 { parser.index += 1 }
            return parser.index - from
        }
        let integerStart = index
        guard digits(&self) > 0 else { throw .notJSON }
        // RFC 8259: no leading zeros.
        if bytes[integerStart] == 0x30, index - integerStart > 1 { throw .notJSON }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard digits(&self) > 0 else { throw .notJSON }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits(&self) > 0 else { throw .notJSON }
        }
        guard let value = Double(String(decoding: bytes[start..<index], as: UTF8.self)), value.isFinite else { throw .notJSON }
        return value
    }

    private mutating func hex4() throws(JSONBodyError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw .notJSON }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[index]
            let digit: UInt8
            switch c {
            case 0x30...0x39: digit = c - 0x30
            case 0x41...0x46: digit = c - 0x41 + 10
            case 0x61...0x66: digit = c - 0x61 + 10
            default: throw .notJSON
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    /// A string literal; `index` is at its opening quote.
    private mutating func string() throws(JSONBodyError) -> String {
        index += 1
        let start = index
        // Fast path: no escapes.
        while index < bytes.count, bytes[index] != UInt8(ascii: "\""), bytes[index] != UInt8(ascii: "\\") {
            guard bytes[index] >= 0x20 else { throw .notJSON }
            index += 1
        }
        guard index < bytes.count else { throw .notJSON }
        var scalars = Array(bytes[start..<index])
        while bytes[index] == UInt8(ascii: "\\") {
            index += 1
            guard index < bytes.count else { throw .notJSON }
            let escape = bytes[index]
            index += 1
            switch escape {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scalars.append(escape)
            case UInt8(ascii: "b"): scalars.append(0x08)
            case UInt8(ascii: "f"): scalars.append(0x0C)
            case UInt8(ascii: "n"): scalars.append(0x0A)
            case UInt8(ascii: "r"): scalars.append(0x0D)
            case UInt8(ascii: "t"): scalars.append(0x09)
            case UInt8(ascii: "u"):
                var code = try hex4()
                if (0xD800...0xDBFF).contains(code) {
                    guard index + 6 <= bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else { throw .notJSON }
                    index += 2
                    let low = try hex4()
                    guard (0xDC00...0xDFFF).contains(low) else { throw .notJSON }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let scalar = Unicode.Scalar(code) else { throw .notJSON }
                scalars.append(contentsOf: Array(String(Character(scalar)).utf8))
            default:
                throw .notJSON
            }
            while index < bytes.count, bytes[index] != UInt8(ascii: "\""), bytes[index] != UInt8(ascii: "\\") {
                guard bytes[index] >= 0x20 else { throw .notJSON }
                scalars.append(bytes[index])
                index += 1
            }
            guard index < bytes.count else { throw .notJSON }
        }
        index += 1  // the closing quote
        // Invalid UTF-8 is refused, not repaired: a name must reach the audit log as sent.
        guard let text = String(validating: scalars, as: UTF8.self) else { throw .notJSON }
        // After the escapes: `\u0301` is as much a combining mark as its bytes (StreamSafeText).
        guard StreamSafeText.check(scalars) else {
            throw JSONBodyError("a string has more than \(StreamSafeText.maximumCombiningMarks) combining marks in a row (Unicode's stream-safe limit)")
        }
        return text
    }
}

/// Typed reads of a parsed body's fields, with messages that name the field.
public struct JSONObjectReader {
    let fields: [String: JSONValue]

    /// The body as an object, or an error if it is another kind of value.
    public init(_ value: JSONValue) throws(JSONBodyError) {
        guard case .object(let fields) = value else { throw JSONBodyError("the body has the wrong type") }
        self.fields = fields
    }

    init(fields: [String: JSONValue]) {
        self.fields = fields
    }

    /// Parses `bytes` and reads them as `T`.
    public static func decode<T: JSONBodyDecodable>(_ type: T.Type, from bytes: [UInt8]) throws(JSONBodyError) -> T {
        try T(json: JSONObjectReader(JSONParser.parse(bytes)))
    }

    /// A required string field.
    public func string(_ key: String) throws(JSONBodyError) -> String {
        guard let value = try optionalString(key) else { throw JSONBodyError("missing field '\(key)'") }
        return value
    }

    /// An optional field whose string is one of `Value`'s raw values; any other string is refused,
    /// naming the ones accepted.
    public func optionalEnum<Value: RawRepresentable & CaseIterable>(_ key: String, _ type: Value.Type) throws(JSONBodyError) -> Value?
        where Value.RawValue == String {
        guard let text = try optionalString(key) else { return nil }
        guard let value = Value(rawValue: text) else {
            let accepted = Value.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            throw JSONBodyError("field '\(key)' must be one of \(accepted)")
        }
        return value
    }

    /// An optional string field (absent or null: nil).
    public func optionalString(_ key: String) throws(JSONBodyError) -> String? {
        switch fields[key] {
        case nil, .null?: return nil
        case .string(let value)?: return value
        default: throw JSONBodyError("field '\(key)' has the wrong type")
        }
    }

    /// An optional boolean field.
    public func optionalBool(_ key: String) throws(JSONBodyError) -> Bool? {
        switch fields[key] {
        case nil, .null?: return nil
        case .bool(let value)?: return value
        default: throw JSONBodyError("field '\(key)' has the wrong type")
        }
    }

    /// A required string field holding one of `E`'s raw values.
    public func enumeration<E: RawRepresentable>(_ key: String, as type: E.Type = E.self) throws(JSONBodyError) -> E where E.RawValue == String {
        guard let value = E(rawValue: try string(key)) else { throw JSONBodyError("field '\(key)' has an unknown value") }
        return value
    }

    /// A required boolean field.
    public func bool(_ key: String) throws(JSONBodyError) -> Bool {
        guard let value = try optionalBool(key) else { throw JSONBodyError("missing field '\(key)'") }
        return value
    }

    /// A required integer field (a JSON number with no fraction, in range).
    public func integer<I: FixedWidthInteger>(_ key: String, as type: I.Type = I.self) throws(JSONBodyError) -> I {
        guard case .number(let number)? = fields[key] else {
            throw fields[key] == nil ? JSONBodyError("missing field '\(key)'") : JSONBodyError("field '\(key)' has the wrong type")
        }
        guard let value = I(exactly: number) else { throw JSONBodyError("field '\(key)' has the wrong type") }
        return value
    }

    /// An optional nested object.
    public func optionalObject(_ key: String) throws(JSONBodyError) -> JSONObjectReader? {
        switch fields[key] {
        case nil, .null?: return nil
        case .object(let fields)?: return JSONObjectReader(fields: fields)
        default: throw JSONBodyError("field '\(key)' has the wrong type")
        }
    }

    /// An optional array of objects, each read by `read`.
    public func optionalObjects<T>(_ key: String, _ read: (JSONObjectReader) throws(JSONBodyError) -> T) throws(JSONBodyError) -> [T]? {
        switch fields[key] {
        case nil, .null?: return nil
        case .array(let items)?:
            var values: [T] = []
            values.reserveCapacity(items.count)
            for (position, item) in items.enumerated() {
                guard case .object(let fields) = item else { throw JSONBodyError("field '\(key).\(position)' has the wrong type") }
                values.append(try read(JSONObjectReader(fields: fields)))
            }
            return values
        default: throw JSONBodyError("field '\(key)' has the wrong type")
        }
    }

    /// A required object of string values.
    public func stringMap(_ key: String) throws(JSONBodyError) -> [String: String] {
        guard case .object(let fields)? = fields[key] else {
            throw fields[key] == nil ? JSONBodyError("missing field '\(key)'") : JSONBodyError("field '\(key)' has the wrong type")
        }
        var map: [String: String] = [:]
        map.reserveCapacity(fields.count)
        for (name, value) in fields {
            guard case .string(let text) = value else { throw JSONBodyError("field '\(key).\(name)' has the wrong type") }
            map[name] = text
        }
        return map
    }

    /// An optional array of strings.
    public func optionalStrings(_ key: String) throws(JSONBodyError) -> [String]? {
        switch fields[key] {
        case nil, .null?: return nil
        case .array(let items)?:
            var strings: [String] = []
            strings.reserveCapacity(items.count)
            for (position, item) in items.enumerated() {
                guard case .string(let value) = item else { throw JSONBodyError("field '\(key).\(position)' has the wrong type") }
                strings.append(value)
            }
            return strings
        default: throw JSONBodyError("field '\(key)' has the wrong type")
        }
    }
}

/// A request body read with `JSONParser` instead of Foundation's decoder (the hot routes').
public protocol JSONBodyDecodable {
    init(json: JSONObjectReader) throws(JSONBodyError)
}

/// An answer written with `JSONWriter` instead of Foundation's encoder (the hot routes').
public protocol JSONBodyEncodable {
    func write(to writer: inout JSONWriter)
}

/// Writes compact JSON straight to bytes. Callers write keys in sorted order, as `APIJSON`'s
/// encoder does, so both produce the same text.
public struct JSONWriter {
    public private(set) var bytes: [UInt8] = []
    private var needsComma = false

    public init(capacity: Int = 512) {
        bytes.reserveCapacity(capacity)
    }

    /// The JSON text of `value`.
    public static func encode(_ value: some JSONBodyEncodable) -> [UInt8] {
        var writer = JSONWriter()
        value.write(to: &writer)
        return writer.bytes
    }

    public mutating func beginObject() {
        separate()
        bytes.append(UInt8(ascii: "{"))
        needsComma = false
    }

    public mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        needsComma = true
    }

    public mutating func beginArray(_ key: String) {
        self.key(key)
        bytes.append(UInt8(ascii: "["))
        needsComma = false
    }

    public mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        needsComma = true
    }

    /// `"key":` (a comma first when needed); the value follows.
    public mutating func key(_ key: String) {
        separate()
        appendString(key)
        bytes.append(UInt8(ascii: ":"))
        needsComma = false
    }

    /// Starts an object as the value of `key`.
    public mutating func beginObject(_ key: String) {
        self.key(key)
        beginObject()
    }

    public mutating func field(_ key: String, _ value: String) {
        self.key(key)
        appendString(value)
        needsComma = true
    }

    /// A string field, left out when nil (as the encoder leaves out nil optionals).
    public mutating func field(_ key: String, _ value: String?) {
        guard let value else { return }
        field(key, value)
    }

    /// A string field written as `null` when nil (for fields a contract lists always).
    public mutating func fieldOrNull(_ key: String, _ value: String?) {
        guard let value else {
            self.key(key)
            bytes.append(contentsOf: Array("null".utf8))
            needsComma = true
            return
        }
        field(key, value)
    }

    public mutating func field(_ key: String, _ value: Bool) {
        self.key(key)
        bytes.append(contentsOf: value ? Array("true".utf8) : Array("false".utf8))
        needsComma = true
    }

    public mutating func field<I: BinaryInteger>(_ key: String, _ value: I) {
        self.key(key)
        bytes.append(contentsOf: String(value).utf8)
        needsComma = true
    }

    /// An array as the next value (after `key(_:)`, at the top, or as an element).
    public mutating func beginArray() {
        separate()
        bytes.append(UInt8(ascii: "["))
        needsComma = false
    }

    /// A number as the next value (after `key(_:)`, or as an element of the current array).
    public mutating func element<I: BinaryInteger>(_ value: I) {
        separate()
        bytes.append(contentsOf: String(value).utf8)
        needsComma = true
    }

    /// A number as the next value. JSON has no infinity or NaN: those are written as `null`
    /// (policy validation refuses them before they get here).
    public mutating func element(_ value: Double) {
        separate()
        bytes.append(contentsOf: value.isFinite ? String(value).utf8 : "null".utf8)
        needsComma = true
    }

    /// `true` or `false` as the next value.
    public mutating func element(_ value: Bool) {
        separate()
        bytes.append(contentsOf: value ? "true".utf8 : "false".utf8)
        needsComma = true
    }

    /// A string element of the current array.
    public mutating func element(_ value: String) {
        separate()
        appendString(value)
        needsComma = true
    }

    /// An object of string values, keys sorted.
    public mutating func field(_ key: String, _ value: [String: String]) {
        beginObject(key)
        for name in value.keys.sorted() { field(name, value[name] ?? "") }
        endObject()
    }

    private mutating func separate() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
    }

    private mutating func appendString(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(UInt8(ascii: "\\")); bytes.append(byte)
            case UInt8(ascii: "\\"): bytes.append(UInt8(ascii: "\\")); bytes.append(byte)
            case 0x0A: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "n"))
            case 0x0D: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "r"))
            case 0x09: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "t"))
            case 0x08: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "b"))
            case 0x0C: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "f"))
            case 0..<0x20:
                let digits = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: Array("\\u00".utf8))
                bytes.append(digits[Int(byte >> 4)])
                bytes.append(digits[Int(byte & 15)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
