/// An AWS grant left for the job's SDK to fetch through `credential_process`.
public struct DeferredAWSGrant: Codable, Sendable, Equatable {
    public var grant: String
    public var region: String?
    public var endpointURL: String?

    enum CodingKeys: String, CodingKey {
        case grant, region
        case endpointURL = "endpoint_url"
    }

    public init(grant: String, region: String?, endpointURL: String?) {
        self.grant = grant
        self.region = region
        self.endpointURL = endpointURL
    }
}

// MARK: - Without Foundation's JSON coders (hot path; keys in sorted order, as `APIJSON.encode` writes them)

// The daemon writes it.
extension DeferredAWSGrant: JSONBodyEncodable {
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("endpoint_url", endpointURL)
        writer.field("grant", grant)
        writer.field("region", region)
        writer.endObject()
    }
}

// The client reads it (`mlcred run`'s own CPU).
extension DeferredAWSGrant: JSONBodyDecodable {
    public init(json: JSONObjectReader) throws(JSONBodyError) {
        self.init(grant: try json.string("grant"), region: try json.optionalString("region"),
                  endpointURL: try json.optionalString("endpoint_url"))
    }
}
