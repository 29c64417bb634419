/// `POST /v1/credentials`.
public struct CredentialsRequest: Codable, Sendable {
    /// Grant names to fetch; nil = every grant of the role in this environment.
    public var grants: [String]?
    /// How AWS grants are handled (`AWSGrantMode`); default `mint`.
    public var aws: AWSGrantMode?

    public init(grants: [String]?, aws: AWSGrantMode? = nil) {
        self.grants = grants
        self.aws = aws
    }
}

// MARK: - Without Foundation's JSON coders (hot path; keys in sorted order, as `APIJSON.encode` writes them)

// The daemon reads it.
extension CredentialsRequest: JSONBodyDecodable {
    public init(json: JSONObjectReader) throws(JSONBodyError) {
        self.init(grants: try json.optionalStrings("grants"), aws: try json.optionalEnum("aws", AWSGrantMode.self))
    }
}

// The client writes it (`mlcred run`'s own CPU).
extension CredentialsRequest: JSONBodyEncodable {
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("aws", aws?.rawValue)
        if let grants {
            writer.beginArray("grants")
            for grant in grants { writer.element(grant) }
            writer.endArray()
        }
        writer.endObject()
    }
}
