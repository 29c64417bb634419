/// `POST /v1/tokens`.
public struct TokenRequest: Codable, Sendable {
    public var role: String
    /// A duration such as `30m`; capped at the role's ttl.
    public var ttl: String?
    /// What the token is bound to (`TokenBinding`); nil is `none`.
    public var bind: TokenBinding?
    /// Also mint the role's credentials, stored with the token in one transaction.
    public var credentials: Bool?
    /// With `credentials`: how AWS grants are handled (`AWSGrantMode`); default `mint`.
    public var aws: AWSGrantMode?

    public init(role: String, ttl: String?, bind: TokenBinding?, credentials: Bool? = nil, aws: AWSGrantMode? = nil) {
        self.role = role
        self.ttl = ttl
        self.bind = bind
        self.credentials = credentials
        self.aws = aws
    }
}

// MARK: - Without Foundation's JSON coders (hot path; keys in sorted order, as `APIJSON.encode` writes them)

// The daemon reads it.
extension TokenRequest: JSONBodyDecodable {
    public init(json: JSONObjectReader) throws(JSONBodyError) {
        self.init(role: try json.string("role"), ttl: try json.optionalString("ttl"), bind: try json.optionalEnum("bind", TokenBinding.self),
                  credentials: try json.optionalBool("credentials"), aws: try json.optionalEnum("aws", AWSGrantMode.self))
    }
}

// The client writes it (`mlcred run`'s own CPU).
extension TokenRequest: JSONBodyEncodable {
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("aws", aws?.rawValue)
        writer.field("bind", bind?.rawValue)
        if let credentials { writer.field("credentials", credentials) }
        writer.field("role", role)
        writer.field("ttl", ttl)
        writer.endObject()
    }
}
