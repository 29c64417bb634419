import MLCredAPI

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
