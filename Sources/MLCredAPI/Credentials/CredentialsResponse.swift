/// The answer to `POST /v1/credentials`.
public struct CredentialsResponse: Codable, Sendable {
    /// Environment variables for the job.
    public var env: [String: String]
    /// Files for the job: relative name → content (none yet: `mlcred run` writes the AWS config itself).
    public var files: [String: String]
    public var leases: [LeaseInfo]
    public var expiresAt: String
    /// Variables of `env` whose values are not secret (a region, a host, a port): not masked.
    public var plain: [String]?
    /// AWS grants left for `credential_process` (requests with `aws: defer`).
    public var aws: [DeferredAWSGrant]?

    enum CodingKeys: String, CodingKey {
        case env, files, leases, plain, aws
        case expiresAt = "expires_at"
    }

    public init(env: [String: String], files: [String: String], leases: [LeaseInfo], expiresAt: String,
                plain: [String]? = nil, aws: [DeferredAWSGrant]? = nil) {
        self.env = env
        self.files = files
        self.leases = leases
        self.expiresAt = expiresAt
        self.plain = plain
        self.aws = aws
    }
}

// MARK: - Without Foundation's JSON coders (hot path; keys in sorted order, as `APIJSON.encode` writes them)

// The daemon writes it.
extension CredentialsResponse: JSONBodyEncodable {
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        if let aws {
            writer.beginArray("aws")
            for grant in aws { grant.write(to: &writer) }
            writer.endArray()
        }
        writer.field("env", env)
        writer.field("expires_at", expiresAt)
        writer.field("files", files)
        writer.beginArray("leases")
        for lease in leases { lease.write(to: &writer) }
        writer.endArray()
        if let plain {
            writer.beginArray("plain")
            for name in plain { writer.element(name) }
            writer.endArray()
        }
        writer.endObject()
    }
}

// The client reads it (`mlcred run`'s own CPU).
extension CredentialsResponse: JSONBodyDecodable {
    public init(json: JSONObjectReader) throws(JSONBodyError) {
        self.init(env: try json.stringMap("env"), files: try json.stringMap("files"),
                  leases: try json.optionalObjects("leases") { (reader) throws(JSONBodyError) in try LeaseInfo(json: reader) } ?? [],
                  expiresAt: try json.string("expires_at"), plain: try json.optionalStrings("plain"),
                  aws: try json.optionalObjects("aws") { (reader) throws(JSONBodyError) in try DeferredAWSGrant(json: reader) })
    }
}
