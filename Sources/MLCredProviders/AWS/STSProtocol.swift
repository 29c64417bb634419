import MLCredAPI
import MLCredPolicy

/// The STS Query API as mlcred uses it: building signed requests for AssumeRole,
/// GetSessionToken and GetFederationToken, and reading their XML answers. Transport-free,
/// so it is tested on its own; the provider sends what this builds.
public enum STSProtocol {
    /// The API version every STS Query request names.
    static let version = "2011-06-15"
    /// Shortest session handed out: SDKs refresh 15 minutes before expiry (SPEC §6).
    public static let minimumSessionSeconds = 1800
    /// Default session length (SPEC §6).
    public static let defaultSessionSeconds = 3600

    /// A request ready to send.
    public struct Request: Sendable {
        public var url: String
        public var host: String
        public var headers: [(String, String)]
        public var body: [UInt8]
    }

    /// Temporary credentials from STS. Held only for the issuance.
    public struct Credentials: Sendable, Equatable {
        public var accessKeyID: String
        public var secretAccessKey: String
        public var sessionToken: String
        /// RFC 3339, as STS writes it.
        public var expiration: String
    }

    /// The endpoint for `region`, or the secret's `endpoint_url` (a local emulator); nil when
    /// `endpointURL` is not an `http(s)://HOST[:PORT]` endpoint.
    public static func endpoint(region: String, endpointURL: String?) -> (url: String, host: String)? {
        if let endpointURL {
            guard let parsed = EndpointURL.parse(endpointURL) else { return nil }
            return (parsed.url, parsed.authority)
        }
        let host = "sts.\(region).amazonaws.com"
        return ("https://\(host)/", host)
    }

    /// The form parameters of the call a grant makes.
    public static func parameters(grant: Grant, sessionName: String, sourceIdentity: String) -> [(String, String)] {
        let duration = max(minimumSessionSeconds, grant.durationSeconds ?? defaultSessionSeconds)
        var out: [(String, String)] = [("Version", version), ("DurationSeconds", String(duration))]
        switch grant.type {
        case .awsAssumeRole:
            out.append(("Action", "AssumeRole"))
            out.append(("RoleArn", grant.roleARN ?? ""))
            out.append(("RoleSessionName", sessionName))
            out.append(("SourceIdentity", sourceIdentity))
            if let policy = grant.sessionPolicy { out.append(("Policy", policy)) }
            if let externalID = grant.externalID { out.append(("ExternalId", externalID)) }
            for (index, key) in grant.sessionTags.keys.sorted().enumerated() {
                out.append(("Tags.member.\(index + 1).Key", key))
                out.append(("Tags.member.\(index + 1).Value", grant.sessionTags[key] ?? ""))
            }
        case .awsSessionToken:
            out.append(("Action", "GetSessionToken"))
        case .awsFederationToken:
            out.append(("Action", "GetFederationToken"))
            out.append(("Name", String(sessionName.prefix(32))))
            if let policy = grant.sessionPolicy { out.append(("Policy", policy)) }
        default:
            break
        }
        return out
    }

    /// A session name STS accepts (`[\w+=,.@-]`, 2-64 characters) naming the principal and the
    /// token: the whole accessor is kept (its first half is a time, its second half random, so
    /// only the whole tells two sessions apart) and a long principal is cut instead.
    public static func sessionName(subject: String, accessor: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+=,.@-")
        let cleanedAccessor = String(accessor.filter { allowed.contains($0) }.prefix(24))
        let room = 64 - "mlcred-".count - 1 - cleanedAccessor.count
        let cleaned = String(subject.map { allowed.contains($0) ? $0 : "-" }.prefix(room))
        return "mlcred-\(cleaned)-\(cleanedAccessor)"
    }

    /// A signed POST for `parameters`.
    public static func request(parameters: [(String, String)], signer: SigV4Signer, endpoint: (url: String, host: String),
                               amzDate: String) -> Request {
        let body = Array(parameters.map { "\(formEncode($0.0))=\(formEncode($0.1))" }.joined(separator: "&").utf8)
        let headers = [("host", endpoint.host), ("content-type", "application/x-www-form-urlencoded; charset=utf-8")]
        let signed = signer.sign(method: "POST", path: "/", query: "", headers: headers, body: body, amzDate: amzDate)
        return Request(url: endpoint.url, host: endpoint.host, headers: headers + signed, body: body)
    }

    /// `application/x-www-form-urlencoded` as botocore and Python's `urlencode` write it: space
    /// as `+`, unreserved characters as they are, every other byte `%XX`. STS hashes the bytes
    /// sent, but emulators (moto) re-encode the parsed form this way before checking the
    /// signature, so the body must already be in this form.
    static func formEncode(_ text: String) -> String {
        SigV4Signer.uriEncode(text).replacing("%20", with: "+")
    }

    /// Longest piece of an STS error message quoted to the caller and the audit log.
    static let maxQuotedCharacters = 300

    /// Reads a successful answer, or throws an `upstream` error quoting AWS's code and message
    /// (cut to 300 characters, control characters as spaces: they reach terminals and the audit
    /// log), its reason chosen from AWS's code (`reason(errorCode:status:)`).
    public static func parse(status: Int, body: [UInt8]) throws -> Credentials {
        let text = String(decoding: body, as: UTF8.self)
        guard (200..<300).contains(status) else {
            let awsCode = element("Code", in: text)
            let code = awsCode.map(quotable) ?? "HTTP \(status)"
            let message = element("Message", in: text).map(quotable) ?? "no message"
            throw APIError(reason(errorCode: awsCode, status: status), "STS refused the request: \(code): \(message)")
        }
        guard let credentials = rawElement("Credentials", in: text),
              let keyID = element("AccessKeyId", in: credentials), let secret = element("SecretAccessKey", in: credentials),
              let token = element("SessionToken", in: credentials), let expiration = element("Expiration", in: credentials) else {
            throw APIError(.upstreamAnswerInvalid, "STS answered without credentials")
        }
        // Values that reach environments and config readers: the shapes AWS issues, nothing else.
        guard keyID.utf8.count >= 16, keyID.utf8.count <= 128, keyID.utf8.allSatisfy({ ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) }),
              isToken(secret, maxBytes: 1024), isToken(token, maxBytes: 16384) else {
            throw APIError(.upstreamAnswerInvalid, "STS answered with credentials of an unexpected shape")
        }
        return Credentials(accessKeyID: keyID, secretAccessKey: secret, sessionToken: token, expiration: expiration)
    }

    /// STS error codes that mean the broker's own keys or signature were refused: a key that
    /// does not exist or expired, a secret key that does not match, a clock too far off.
    static let signatureErrorCodes: Set<String> = [
        "InvalidClientTokenId", "SignatureDoesNotMatch", "IncompleteSignature", "MissingAuthenticationToken",
        "InvalidAccessKeyId", "UnrecognizedClientException", "ExpiredToken", "ExpiredTokenException", "RequestExpired",
        "InvalidSignatureException", "AuthFailure",
    ]
    /// STS error codes that mean it is shedding load.
    static let throttlingErrorCodes: Set<String> = ["Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"]

    /// The reason an STS refusal is answered with: the broker's keys refused, the role refused
    /// to the broker, throttling, a failure on AWS's side (5xx), or any other refusal.
    public static func reason(errorCode: String?, status: Int) -> APIErrorReason {
        switch errorCode {
        case let code? where signatureErrorCodes.contains(code): return .upstreamSignature
        case "AccessDenied", "AccessDeniedException": return .upstreamDenied
        case let code? where throttlingErrorCodes.contains(code): return .upstreamBusy
        default: return status >= 500 ? .upstreamFailed : .upstreamRefused
        }
    }

    /// Printable ASCII without spaces, 1...maxBytes long.
    static func isToken(_ text: String, maxBytes: Int) -> Bool {
        !text.isEmpty && text.utf8.count <= maxBytes && text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    static func quotable(_ text: String) -> String {
        let flat = String(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : Character($0) })
        return flat.count > maxQuotedCharacters ? String(flat.prefix(maxQuotedCharacters)) + "..." : flat
    }

    /// The text inside the first `<name>...</name>`, as it stands.
    static func rawElement(_ name: String, in text: String) -> String? {
        guard let open = text.firstRange(of: "<\(name)>"),
              let close = text[open.upperBound...].firstRange(of: "</\(name)>") else { return nil }
        return String(text[open.upperBound..<close.lowerBound])
    }

    /// The text inside the first `<name>...</name>`, XML entities decoded once (`&amp;` last).
    static func element(_ name: String, in text: String) -> String? {
        rawElement(name, in: text).map {
            $0.replacing("&lt;", with: "<").replacing("&gt;", with: ">").replacing("&quot;", with: "\"")
                .replacing("&apos;", with: "'").replacing("&amp;", with: "&")
        }
    }
}
