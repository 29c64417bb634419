import MLCredAPI

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

/// One answer: a status and a JSON body.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var body: [UInt8]
    public var contentType: String

    public init(status: Int, body: [UInt8], contentType: String = "application/json") {
        self.status = status
        self.body = body
        self.contentType = contentType
    }

    /// A 200 (or `status`) answer with `value` as JSON.
    public static func json<T: Encodable>(_ value: T, status: Int = 200) -> HTTPResponse {
        do {
            return HTTPResponse(status: status, body: try APIJSON.encode(value) + [0x0A])
        } catch {
            return .error(.internal, "could not encode the answer")
        }
    }

    /// An error answer in the SPEC §9 shape, with the status of the reason's code.
    public static func error(_ reason: APIErrorReason, _ message: String, details: [String]? = nil) -> HTTPResponse {
        error(APIError(reason, message, details: details))
    }

    /// The answer to `error` in the SPEC §9 shape, with the status of its code.
    public static func error(_ error: APIError) -> HTTPResponse {
        let body = (try? APIJSON.encode(error.body))
            ?? Array(#"{"error":{"code":"internal","message":"internal","reason":"internal"}}"#.utf8)
        return HTTPResponse(status: error.code.httpStatus, body: body + [0x0A])
    }
}
