/// The hot routes' bodies, read and written without Foundation's JSON coders. Keys are written
/// in sorted order, so the text is the same `APIJSON.encode` writes (a unit test holds both to it).

extension TokenRequest: JSONBodyDecodable {
    public init(json: JSONObjectReader) throws(JSONBodyError) {
        self.init(role: try json.string("role"), ttl: try json.optionalString("ttl"), bind: try json.optionalString("bind"),
                  credentials: try json.optionalBool("credentials"), aws: try json.optionalString("aws"))
    }
}

extension RenewRequest: JSONBodyDecodable {
    public init(json: JSONObjectReader) throws(JSONBodyError) {
        self.init(ttl: try json.optionalString("ttl"))
    }
}

extension CredentialsRequest: JSONBodyDecodable {
    public init(json: JSONObjectReader) throws(JSONBodyError) {
        self.init(grants: try json.optionalStrings("grants"))
        aws = try json.optionalString("aws")
    }
}

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

extension DeferredAWSGrant: JSONBodyEncodable {
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("endpoint_url", endpointURL)
        writer.field("grant", grant)
        writer.field("region", region)
        writer.endObject()
    }
}

extension LeaseInfo: JSONBodyEncodable {
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("accessor", accessor)
        writer.field("expires_at", expiresAt)
        writer.field("grant", grant)
        writer.field("id", id)
        writer.fieldOrNull("last_error", lastError)
        writer.field("provider_id", providerID)
        writer.field("role", role)
        writer.field("state", state.rawValue)
        writer.field("type", type)
        writer.endObject()
    }
}

extension TokenInfo: JSONBodyEncodable {
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("accessor", accessor)
        writer.field("bound", bound)
        writer.field("expires_at", expiresAt)
        writer.field("issued_at", issuedAt)
        writer.field("max_expires_at", maxExpiresAt)
        writer.field("phi", phi)
        writer.field("pid", pid)
        writer.field("revoke_reason", revokeReason)
        writer.field("role", role)
        writer.field("state", state.rawValue)
        writer.field("uid", uid)
        writer.field("user", user)
        writer.endObject()
    }
}

extension RevocationResponse: JSONBodyEncodable where Revoked == Bool {
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("revoked", revoked)
        writer.beginArray("still_valid")
        for lease in stillValid { lease.write(to: &writer) }
        writer.endArray()
        writer.beginArray("unconfirmed")
        for lease in unconfirmed { lease.write(to: &writer) }
        writer.endArray()
        writer.endObject()
    }
}

// MARK: the client's side: requests written, answers read (mlcred run's own CPU)

extension TokenRequest: JSONBodyEncodable {
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("aws", aws)
        writer.field("bind", bind)
        if let credentials { writer.field("credentials", credentials) }
        writer.field("role", role)
        writer.field("ttl", ttl)
        writer.endObject()
    }
}

extension RenewRequest: JSONBodyEncodable {
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("ttl", ttl)
        writer.endObject()
    }
}

extension CredentialsRequest: JSONBodyEncodable {
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("aws", aws)
        if let grants {
            writer.beginArray("grants")
            for grant in grants { writer.element(grant) }
            writer.endArray()
        }
        writer.endObject()
    }
}

extension TokenResponse: JSONBodyDecodable {
    public init(json: JSONObjectReader) throws(JSONBodyError) {
        self.init(token: try json.string("token"), accessor: try json.string("accessor"), role: try json.string("role"),
                  phi: try json.bool("phi"), expiresAt: try json.string("expires_at"), maxExpiresAt: try json.string("max_expires_at"),
                  credentials: try json.optionalObject("credentials").map { (reader) throws(JSONBodyError) in try CredentialsResponse(json: reader) })
    }
}

extension CredentialsResponse: JSONBodyDecodable {
    public init(json: JSONObjectReader) throws(JSONBodyError) {
        self.init(env: try json.stringMap("env"), files: try json.stringMap("files"),
                  leases: try json.optionalObjects("leases") { (reader) throws(JSONBodyError) in try LeaseInfo(json: reader) } ?? [],
                  expiresAt: try json.string("expires_at"), plain: try json.optionalStrings("plain"),
                  aws: try json.optionalObjects("aws") { (reader) throws(JSONBodyError) in try DeferredAWSGrant(json: reader) })
    }
}

extension LeaseInfo: JSONBodyDecodable {
    public init(json: JSONObjectReader) throws(JSONBodyError) {
        self.init(id: try json.string("id"), accessor: try json.string("accessor"), role: try json.string("role"),
                  grant: try json.string("grant"), type: try json.string("type"), providerID: try json.string("provider_id"),
                  expiresAt: try json.string("expires_at"), state: try json.enumeration("state"), lastError: try json.optionalString("last_error"))
    }
}

extension DeferredAWSGrant: JSONBodyDecodable {
    public init(json: JSONObjectReader) throws(JSONBodyError) {
        self.init(grant: try json.string("grant"), region: try json.optionalString("region"),
                  endpointURL: try json.optionalString("endpoint_url"))
    }
}

extension TokenInfo: JSONBodyDecodable {
    public init(json: JSONObjectReader) throws(JSONBodyError) {
        self.init(accessor: try json.string("accessor"), role: try json.string("role"), phi: try json.bool("phi"),
                  uid: try json.integer("uid"), user: try json.optionalString("user"), pid: try json.integer("pid"),
                  bound: try json.bool("bound"), issuedAt: try json.string("issued_at"), expiresAt: try json.string("expires_at"),
                  maxExpiresAt: try json.string("max_expires_at"), state: try json.enumeration("state"),
                  revokeReason: try json.optionalString("revoke_reason"))
    }
}
