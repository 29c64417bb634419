import MLCredCrypto

/// AWS Signature Version 4 (the `Authorization: AWS4-HMAC-SHA256 ...` header), written from the
/// published algorithm: canonical request, string to sign, derived signing key, signature.
public struct SigV4Signer: Sendable {
    /// Long-lived or session credentials to sign with. Never logged.
    public struct Credentials: Sendable {
        public var accessKeyID: String
        public var secretAccessKey: String
        public var sessionToken: String?

        public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
            self.accessKeyID = accessKeyID
            self.secretAccessKey = secretAccessKey
            self.sessionToken = sessionToken
        }
    }

    public var credentials: Credentials
    public var region: String
    public var service: String

    public init(credentials: Credentials, region: String, service: String) {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// The headers to add to a request: `x-amz-date`, `authorization` and, with session
    /// credentials, `x-amz-security-token`. `amzDate` is `YYYYMMDD'T'HHMMSS'Z'` (UTC).
    /// `headers` must include `host`; `query` is the raw query string (may be empty).
    public func sign(method: String, path: String, query: String, headers: [(String, String)], body: [UInt8],
                     amzDate: String) -> [(String, String)] {
        var all = headers.map { ($0.0.lowercased(), Self.trim($0.1)) }
        all.append(("x-amz-date", amzDate))
        if let token = credentials.sessionToken { all.append(("x-amz-security-token", token)) }
        let authorization = authorizationHeader(method: method, path: path, query: query, headers: all, body: body, amzDate: amzDate)
        var added = [("x-amz-date", amzDate)]
        if let token = credentials.sessionToken { added.append(("x-amz-security-token", token)) }
        added.append(("authorization", authorization))
        return added
    }

    func authorizationHeader(method: String, path: String, query: String, headers: [(String, String)], body: [UInt8],
                             amzDate: String) -> String {
        let date = String(amzDate.prefix(8))
        let scope = "\(date)/\(region)/\(service)/aws4_request"
        let (canonical, signedHeaders) = canonicalRequest(method: method, path: path, query: query, headers: headers, body: body)
        let stringToSign = "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n\(Hex.encode(SHA256.hash(Array(canonical.utf8))))"
        var key = Array("AWS4\(credentials.secretAccessKey)".utf8)
        for part in [date, region, service, "aws4_request"] {
            key = SHA256.hmac(key: key, Array(part.utf8))
        }
        let signature = Hex.encode(SHA256.hmac(key: key, Array(stringToSign.utf8)))
        return "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
    }

    /// The canonical request and the signed-headers list.
    func canonicalRequest(method: String, path: String, query: String, headers: [(String, String)], body: [UInt8]) -> (String, String) {
        var merged: [String: [String]] = [:]
        for (name, value) in headers { merged[name.lowercased(), default: []].append(Self.trim(value)) }
        let names = merged.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\((merged[$0] ?? []).joined(separator: ","))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")
        let canonical = [method, path.isEmpty ? "/" : path, Self.canonicalQuery(query), canonicalHeaders, signedHeaders,
                         Hex.encode(SHA256.hash(body))].joined(separator: "\n")
        return (canonical, signedHeaders)
    }

    /// Query parameters sorted by name then value, each RFC 3986-encoded.
    static func canonicalQuery(_ query: String) -> String {
        guard !query.isEmpty else { return "" }
        let pairs = query.split(separator: "&").map { pair -> (String, String) in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (uriEncode(percentDecode(String(parts[0]))), uriEncode(percentDecode(parts.count > 1 ? String(parts[1]) : "")))
        }
        return pairs.sorted { $0.0 == $1.0 ? $0.1 < $1.1 : $0.0 < $1.0 }.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    /// RFC 3986 percent-encoding of everything but unreserved characters (as SigV4 requires).
    public static func uriEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(Character(Unicode.Scalar(byte)))
            default:
                let digits = Array("0123456789ABCDEF")
                out += "%\(digits[Int(byte >> 4)])\(digits[Int(byte & 15)])"
            }
        }
        return out
    }

    static func percentDecode(_ text: String) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
               let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
                bytes.append(value)
            } else if byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func trim(_ value: String) -> String {
        // Leading/trailing spaces removed, inner runs of spaces collapsed to one.
        value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }
}
