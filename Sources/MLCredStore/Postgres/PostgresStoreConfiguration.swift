import MLCredAPI

/// A `--store postgres://...` URL, parsed (SPEC §12): several `host:port` pairs tried in order,
/// the database, the user, `sslmode` and `sslrootcert`. The password never comes from the URL
/// (argv is public): it comes from `--store-password-file` or the service's credentials.
public struct PostgresStoreConfiguration: Sendable, Equatable {
    public enum SSLMode: String, Sendable, Equatable {
        case disable, require
        case verifyFull = "verify-full"
    }

    public struct Host: Sendable, Equatable, CustomStringConvertible {
        public var name: String
        public var port: Int
        public var description: String { name.contains(":") ? "[\(name)]:\(port)" : "\(name):\(port)" }
    }

    public var hosts: [Host]
    public var user: String
    public var database: String
    public var sslMode: SSLMode
    public var sslRootCert: String?
    public var password: String?
    /// Seconds one statement may take before the store counts as unavailable (SPEC §12: a write
    /// answers 503 within 2 s when the store is unreachable).
    public var statementTimeout: Double = 1.5
    /// Seconds one connection attempt to one host may take.
    public var connectTimeout: Double = 1.0

    /// Parses `url`; throws a message naming what is wrong (never echoing a password).
    public init(url: String, password: String?) throws {
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
            throw StoreError.openFailed("--store takes 'sqlite' or a postgres:// URL")
        }
        var rest = Substring(url[url.index(after: url.firstIndex(of: "/")!)...].dropFirst())
        var query = ""
        if let mark = rest.firstIndex(of: "?") {
            query = String(rest[rest.index(after: mark)...])
            rest = rest[..<mark]
        }
        guard let slash = rest.firstIndex(of: "/") else { throw StoreError.openFailed("the store URL names no database (postgres://USER@HOST:PORT/DATABASE)") }
        let database = String(rest[rest.index(after: slash)...])
        var authority = rest[..<slash]
        var user = "mlcred"
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            if userInfo.contains(":") {
                throw StoreError.openFailed("the store URL holds a password: argv is public; put it in --store-password-file or the service's store-password credential")
            }
            user = String(userInfo)
            authority = authority[authority.index(after: at)...]
        }
        var hosts: [Host] = []
        for item in authority.split(separator: ",") {
            var name = Substring(item)
            var port = 5432
            if let colon = name.lastIndex(of: ":"), !name.hasSuffix("]") {
                guard let value = PortNumber.parse(name[name.index(after: colon)...]) else {
                    throw StoreError.openFailed("bad port in the store URL: '\(item)'")
                }
                port = value
                name = name[..<colon]
            }
            if name.hasPrefix("[") && name.hasSuffix("]") { name = name.dropFirst().dropLast() }
            guard !name.isEmpty else { throw StoreError.openFailed("empty host in the store URL") }
            hosts.append(Host(name: String(name), port: port))
        }
        guard !hosts.isEmpty else { throw StoreError.openFailed("the store URL names no host") }
        guard !database.isEmpty, !user.isEmpty else { throw StoreError.openFailed("the store URL needs a user and a database") }
        var sslMode = SSLMode.disable
        var rootCert: String?
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            let key = parts[0]
            let value = parts.count > 1 ? Self.percentDecoded(parts[1]) : ""
            switch key {
            case "sslmode":
                guard let mode = SSLMode(rawValue: value) else {
                    throw StoreError.openFailed("sslmode must be disable, require or verify-full (got '\(value)')")
                }
                sslMode = mode
            case "sslrootcert":
                rootCert = value
            case "target_session_attrs":
                // We always keep the first host that is not in recovery (SPEC §12).
                guard value == "read-write" || value == "any" || value == "primary" else {
                    throw StoreError.openFailed("target_session_attrs must be read-write (got '\(value)')")
                }
            case "password":
                throw StoreError.openFailed("the store URL holds a password: argv is public; put it in --store-password-file")
            case "connect_timeout":
                guard let seconds = Double(value), seconds > 0 else { throw StoreError.openFailed("bad connect_timeout '\(value)'") }
                connectTimeout = seconds
            default:
                throw StoreError.openFailed("unknown store URL parameter '\(key)' (known: sslmode, sslrootcert, target_session_attrs, connect_timeout)")
            }
        }
        if sslMode == .verifyFull, rootCert == nil {
            throw StoreError.openFailed("sslmode=verify-full needs sslrootcert=FILE (the CA that signed the server's certificate)")
        }
        self.hosts = hosts
        self.user = Self.percentDecoded(user)
        self.database = Self.percentDecoded(database)
        self.sslMode = sslMode
        self.sslRootCert = rootCert
        self.password = password
    }

    /// What may be logged or shown: the URL without secrets (there are none in it by construction).
    public var redactedDescription: String {
        "postgres://\(user)@\(hosts.map(\.description).joined(separator: ","))/\(database)?sslmode=\(sslMode.rawValue)"
    }

    static func percentDecoded(_ text: String) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
               let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
