import MLCredAPI

extension Router {
    /// Reads a hot route's body with `JSONParser` (no Foundation decoder); the same messages as
    /// the Codable path: field names, never values.
    func decode<T: Decodable & JSONBodyDecodable>(_ type: T.Type, _ request: HTTPRequest) throws -> T {
        guard !request.body.isEmpty else { throw APIError(.bodyMissing, "this route needs a JSON body") }
        do {
            return try T(json: JSONObjectReader(JSONParser.parse(request.body)))
        } catch {
            throw APIError(.invalidBody, "invalid request body: \(error.description)")
        }
    }
}

extension HTTPResponse {
    /// A 200 (or `status`) answer written with `JSONWriter` (no Foundation encoder).
    public static func json<T: Encodable & JSONBodyEncodable>(_ value: T, status: Int = 200) -> HTTPResponse {
        var writer = JSONWriter()
        value.write(to: &writer)
        return HTTPResponse(status: status, body: writer.bytes + [0x0A])
    }
}
