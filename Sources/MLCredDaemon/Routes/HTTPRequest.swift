/// One parsed request, independent of NIO.
public struct HTTPRequest: Sendable {
    public var method: String
    /// The path without the query, percent-decoding not applied (names are restricted to safe characters).
    public var path: String
    /// The query's parameters, percent-decoded (RFC 3986: `+` stays a plus). Empty when
    /// `queryProblem` is set.
    public var query: [String: String]
    /// Why the query cannot be read, if it cannot: an invalid %-escape, or a parameter given
    /// twice (which one counts differs between readers, so neither is taken). No value is quoted.
    public var queryProblem: String?
    public var authorization: String?
    public var body: [UInt8]

    public init(method: String, uri: String, authorization: String?, body: [UInt8]) {
        self.method = method
        self.authorization = authorization
        self.body = body
        query = [:]
        guard let mark = uri.firstIndex(of: "?") else {
            path = uri
            return
        }
        path = String(uri[..<mark])
        var query: [String: String] = [:]
        for pair in uri[uri.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let rawKey = parts.first, !rawKey.isEmpty else { continue }  // "?=" and "?&" carry nothing
            guard let key = Self.percentDecoded(rawKey), let value = Self.percentDecoded(parts.count > 1 ? parts[1] : "") else {
                queryProblem = "the query has an invalid %-escape (two hex digits of UTF-8 each)"
                return
            }
            guard query.updateValue(value, forKey: key) == nil else {
                queryProblem = "the query gives a parameter more than once"
                return
            }
        }
        self.query = query
    }

    /// `text` with each `%XX` replaced by its byte, or nil when an escape is not two hex digits
    /// or the bytes are not UTF-8.
    static func percentDecoded(_ text: Substring) -> String? {
        guard text.utf8.contains(UInt8(ascii: "%")) else { return String(text) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
