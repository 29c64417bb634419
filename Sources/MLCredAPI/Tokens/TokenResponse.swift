/// The answer to `POST /v1/tokens`. The only place a token text ever appears.
public struct TokenResponse: Codable, Sendable {
    public var token: String
    public var accessor: String
    public var role: String
    public var phi: Bool
    public var expiresAt: String
    public var maxExpiresAt: String
    /// The role's credentials, when the request asked for them.
    public var credentials: CredentialsResponse?

    enum CodingKeys: String, CodingKey {
        case token, accessor, role, phi, credentials
        case expiresAt = "expires_at"
        case maxExpiresAt = "max_expires_at"
    }

    public init(token: String, accessor: String, role: String, phi: Bool, expiresAt: String, maxExpiresAt: String,
                credentials: CredentialsResponse? = nil) {
        self.token = token
        self.accessor = accessor
        self.role = role
        self.phi = phi
        self.expiresAt = expiresAt
        self.maxExpiresAt = maxExpiresAt
        self.credentials = credentials
    }
}

// MARK: - Without Foundation's JSON coders (hot path; keys in sorted order, as `APIJSON.encode` writes them)

// The daemon writes it.
extension TokenResponse: JSONBodyEncodable {
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("accessor", accessor)
        if let credentials {
            writer.key("credentials")
            credentials.write(to: &writer)
        }
        writer.field("expires_at", expiresAt)
        writer.field("max_expires_at", maxExpiresAt)
        writer.field("phi", phi)
        writer.field("role", role)
        writer.field("token", token)
        writer.endObject()
    }
}

// The client reads it (`mlcred run`'s own CPU).
extension TokenResponse: JSONBodyDecodable {
    public init(json: JSONObjectReader) throws(JSONBodyError) {
        self.init(token: try json.string("token"), accessor: try json.string("accessor"), role: try json.string("role"),
                  phi: try json.bool("phi"), expiresAt: try json.string("expires_at"), maxExpiresAt: try json.string("max_expires_at"),
                  credentials: try json.optionalObject("credentials").map { (reader) throws(JSONBodyError) in try CredentialsResponse(json: reader) })
    }
}
