/// An `http(s)://host[:port][/]` endpoint, the only shape a secret's `endpoint_url` may take:
/// no user info (it would travel in the Host header and in messages), no path or query (STS
/// requests are signed for `/`), a port in 1-65535.
public struct EndpointURL: Sendable, Equatable {
    public var scheme: String
    /// A name or IPv4 address, or an IPv6 address in brackets.
    public var host: String
    public var port: Int?

    /// `host[:port]`, as the Host header carries it.
    public var authority: String { host + (port.map { ":\($0)" } ?? "") }
    /// The URL with `/` as its path.
    public var url: String { "\(scheme)://\(authority)/" }

    /// Parses `text`; nil when it is not such an endpoint.
    public static func parse(_ text: String) -> EndpointURL? {
        let scheme: String
        if text.hasPrefix("https://") { scheme = "https" } else if text.hasPrefix("http://") { scheme = "http" } else { return nil }
        var rest = Substring(text.dropFirst(scheme.count + 3))
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.isEmpty, rest.utf8.count <= 255 else { return nil }
        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = rest[...close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return nil }
                portText = after.dropFirst()
            }
            let inside = host.dropFirst().dropLast()
            guard !inside.isEmpty, inside.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { return nil }
        } else {
            if let colon = rest.firstIndex(of: ":") {
                host = rest[..<colon]
                portText = rest[rest.index(after: colon)...]
            } else {
                host = rest
            }
            guard !host.isEmpty, host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") }) else { return nil }
        }
        var port: Int?
        if let portText {
            guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let number = Int(portText), (1...65535).contains(number) else { return nil }
            port = number
        }
        return EndpointURL(scheme: scheme, host: String(host), port: port)
    }
}
