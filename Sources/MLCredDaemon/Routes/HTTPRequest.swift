/// One parsed request, independent of NIO.
public struct HTTPRequest: Sendable {
    public var method: String
    /// The path without the query, percent-decoding not applied (names are restricted to safe characters).
    public var path: String
    public var query: [String: String]
    public var authorization: String?
    public var body: [UInt8]

    public init(method: String, uri: String, authorization: String?, body: [UInt8]) {
        self.method = method
        self.authorization = authorization
        self.body = body
        if let mark = uri.firstIndex(of: "?") {
            path = String(uri[..<mark])
            var query: [String: String] = [:]
            for pair in uri[uri.index(after: mark)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard let key = parts.first, !key.isEmpty else { continue }  // "?=" and "?&" carry nothing
                query[String(key)] = parts.count > 1 ? String(parts[1]) : ""
            }
            self.query = query
        } else {
            path = uri
            query = [:]
        }
    }
}
