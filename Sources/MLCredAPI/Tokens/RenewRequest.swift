/// `POST /v1/tokens/renew`.
public struct RenewRequest: Codable, Sendable {
    public var ttl: String?

    public init(ttl: String?) { self.ttl = ttl }
}

// MARK: - Without Foundation's JSON coders (hot path; keys in sorted order, as `APIJSON.encode` writes them)

// The daemon reads it.
extension RenewRequest: JSONBodyDecodable {
    public init(json: JSONObjectReader) throws(JSONBodyError) {
        self.init(ttl: try json.optionalString("ttl"))
    }
}

// The client writes it (`mlcred run`'s own CPU).
extension RenewRequest: JSONBodyEncodable {
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("ttl", ttl)
        writer.endObject()
    }
}
