/// The answer to a revocation (`POST /v1/tokens/revoke`, `/v1/tokens/{accessor}/revoke`,
/// `/v1/leases/{id}/revoke`): what was revoked (`true`, or the accessor or lease id), leases
/// whose provider has not confirmed yet (retried by the daemon), and credentials that stay
/// valid at their provider until they expire (STS sessions, JWTs, static values).
public struct RevocationResponse<Revoked: Codable & Sendable>: Codable, Sendable {
    public var revoked: Revoked
    public var unconfirmed: [LeaseInfo]
    public var stillValid: [LeaseInfo]

    enum CodingKeys: String, CodingKey {
        case revoked, unconfirmed
        case stillValid = "still_valid"
    }

    public init(revoked: Revoked, unconfirmed: [LeaseInfo], stillValid: [LeaseInfo]) {
        self.revoked = revoked
        self.unconfirmed = unconfirmed
        self.stillValid = stillValid
    }
}

// MARK: - Without Foundation's JSON coders (hot path; keys in sorted order, as `APIJSON.encode` writes them)

// The daemon writes it.
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
