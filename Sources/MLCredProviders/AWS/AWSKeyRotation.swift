import Glibc
import MLCredAPI
import MLCredPolicy

/// `mlcred secret rotate` for `aws` secrets (SPEC §13): the broker's long-lived access key is
/// replaced by one no person has seen. The caller's IAM user is found with STS
/// GetCallerIdentity (which also proves the current key works), a new key is made with IAM
/// CreateAccessKey, and, once the caller has stored it, the old one is deleted with IAM
/// DeleteAccessKey signed by the new key. All calls go to the secret's `endpoint_url` when it
/// has one (SPEC §6), else to the global IAM and regional STS endpoints.
public struct AWSKeyRotation: Sendable {
    static let iamVersion = "2010-05-08"
    /// IAM is global; its requests are signed for us-east-1.
    static let iamRegion = "us-east-1"

    let provider = AWSProvider()

    public init() {}

    /// A new access key for the user owning `fields`' key: the new fields (same region and
    /// endpoint) and the old key's id. Throws `upstream` errors quoting AWS.
    public func createKey(fields: [String: String], secretName: String) async throws -> (fields: [String: String], oldKeyID: String, user: String) {
        guard let keyID = fields["access_key_id"], let secret = fields["secret_access_key"] else {
            throw APIError(.secretIncomplete, "aws secret '\(secretName)' has no access key")
        }
        let region = fields["region"] ?? AWSProvider.defaultRegion
        let identity = try await call(service: "sts", region: region, parameters: [("Action", "GetCallerIdentity"), ("Version", "2011-06-15")],
                                      keyID: keyID, secret: secret, fields: fields, what: "STS")
        guard let arn = STSProtocol.element("Arn", in: identity), let slash = arn.lastIndex(of: "/"), arn.contains(":user/") else {
            throw APIError(.upstreamRefused, "the key of '\(secretName)' does not belong to an IAM user (rotation makes a new key for the same user)")
        }
        let user = String(arn[arn.index(after: slash)...])
        let created = try await call(service: "iam", region: Self.iamRegion,
                                     parameters: [("Action", "CreateAccessKey"), ("UserName", user), ("Version", Self.iamVersion)],
                                     keyID: keyID, secret: secret, fields: fields, what: "IAM")
        guard let newID = STSProtocol.element("AccessKeyId", in: created), let newSecret = STSProtocol.element("SecretAccessKey", in: created),
              STSProtocol.isToken(newID, maxBytes: 128), STSProtocol.isToken(newSecret, maxBytes: 1024) else {
            throw APIError(.upstreamAnswerInvalid, "IAM answered CreateAccessKey without a key")
        }
        var updated = fields
        updated["access_key_id"] = newID
        updated["secret_access_key"] = newSecret
        return (updated, keyID, user)
    }

    /// Deletes `keyID` of `user`, signed with `fields`' (new) key. New IAM keys take a few
    /// seconds to be accepted everywhere: refusals of the signature are retried for up to ~20 s.
    public func deleteKey(_ keyID: String, user: String, signingWith fields: [String: String]) async throws {
        guard let newID = fields["access_key_id"], let newSecret = fields["secret_access_key"] else { return }
        var wait: UInt64 = 500_000_000
        for attempt in 0..<6 {
            do {
                _ = try await call(service: "iam", region: Self.iamRegion,
                                   parameters: [("Action", "DeleteAccessKey"), ("AccessKeyId", keyID), ("UserName", user), ("Version", Self.iamVersion)],
                                   keyID: newID, secret: newSecret, fields: fields, what: "IAM")
                return
            } catch let error as APIError where error.reason == .upstreamSignature && attempt < 5 {
                try? await Task.sleep(nanoseconds: wait)
                wait *= 2
            }
        }
    }

    static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    private func call(service: String, region: String, parameters: [(String, String)], keyID: String, secret: String,
                      fields: [String: String], what: String) async throws -> String {
        let endpoint: (url: String, host: String)
        if let url = fields["endpoint_url"] {
            guard let parsed = EndpointURL.parse(url) else {
                throw APIError(.invalidSecretFields, "the secret's endpoint_url is unusable: put it again as http(s)://HOST[:PORT]")
            }
            endpoint = (parsed.url, parsed.authority)
        } else if service == "iam" {
            endpoint = ("https://iam.amazonaws.com/", "iam.amazonaws.com")
        } else {
            endpoint = ("https://sts.\(region).amazonaws.com/", "sts.\(region).amazonaws.com")
        }
        let signer = SigV4Signer(credentials: .init(accessKeyID: keyID, secretAccessKey: secret), region: region, service: service)
        let signed = STSProtocol.request(parameters: parameters, signer: signer, endpoint: endpoint,
                                         amzDate: AWSProvider.amzDate(epochSeconds: Self.now()))
        let (status, body) = try await provider.send(signed)
        let text = String(decoding: body, as: UTF8.self)
        guard (200..<300).contains(status) else {
            let code = STSProtocol.element("Code", in: text)
            let message = STSProtocol.element("Message", in: text).map(STSProtocol.quotable) ?? "no message"
            throw APIError(STSProtocol.reason(errorCode: code, status: status),
                           "\(what) refused \(parameters.first?.1 ?? "the request"): \(code.map(STSProtocol.quotable) ?? "HTTP \(status)"): \(message)")
        }
        return text
    }
}
