import MLCredAPI
import MLCredCrypto

/// The text side of `postgres-role` grants: role names, passwords, and the statements of a
/// grant with `{{name}}`, `{{password}}` and `{{expiration}}` filled in, quoted safely.
/// Pure, so it is tested on its own.
public enum PostgresTemplate {
    /// Prefix of every role mlcred makes: finds them in `pg_roles` (and any a crash left behind).
    public static let rolePrefix = "mlc_"
    /// PostgreSQL truncates identifiers at 63 bytes (NAMEDATALEN - 1).
    static let maxIdentifierBytes = 63
    /// Random characters that make a role name unique (36^10 ≈ 3.7e15 names per role).
    static let roleSuffixLength = 10
    /// Password length: 40 characters of 62 ≈ 238 bits.
    static let passwordLength = 40
    static let alphanumeric = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

    /// What the placeholders stand for in one lease.
    public struct Values: Sendable {
        public var name: String
        public var password: String
        public var expiration: String

        public init(name: String, password: String, expiration: String) {
            self.name = name
            self.password = password
            self.expiration = expiration
        }
    }

    /// `mlc_<role>_<random>`: lower-case letters, digits and `_` only, within 63 bytes.
    public static func roleName(role: String) -> String {
        let cleaned = String(role.lowercased().map { ($0.isASCII && ($0.isLetter || $0.isNumber)) ? $0 : "_" }.prefix(32))
        return rolePrefix + cleaned + "_" + Sodium.randomString(length: roleSuffixLength, alphabet: "abcdefghijklmnopqrstuvwxyz0123456789")
    }

    /// A password from the CSPRNG, letters and digits only (nothing to escape anywhere).
    public static func password() -> String {
        Sodium.randomString(length: passwordLength, alphabet: alphanumeric)
    }

    /// SCRAM-SHA-256 iterations, PostgreSQL's default.
    static let scramIterations = 4096

    /// The SCRAM-SHA-256 verifier of `password` (RFC 5802/7677, as PostgreSQL stores it):
    /// `{{password}}` in create statements is filled with this, so the plain password never
    /// reaches the server, its statement logs or `pg_stat_activity`; the job logs in with the
    /// password itself. (`password` is ASCII letters and digits: SASLprep leaves it as it is.)
    public static func scramVerifier(password: String, salt: [UInt8] = Sodium.randomBytes(16)) -> String {
        let salted = SHA256.pbkdf2(password: Array(password.utf8), salt: salt, iterations: scramIterations)
        let clientKey = SHA256.hmac(key: salted, Array("Client Key".utf8))
        let serverKey = SHA256.hmac(key: salted, Array("Server Key".utf8))
        return "SCRAM-SHA-256$\(scramIterations):\(Base64.encode(salt))$\(Base64.encode(SHA256.hash(clientKey))):\(Base64.encode(serverKey))"
    }

    /// `VALID UNTIL` text: ISO 8601 in UTC, which PostgreSQL's timestamptz input reads.
    public static func expiration(epochSeconds: Double) -> String {
        Timestamp.format(epochSeconds: epochSeconds.rounded(.up))
    }

    /// Fills the placeholders of `statement`. Each value is quoted for where it stands: inside
    /// `"..."` as an identifier (`"` doubled), inside `'...'` as a literal (`'` doubled), and
    /// bare as `"name"` for `{{name}}` or `'...'` for the others, so a policy cannot turn a value
    /// into SQL by forgetting its quotes.
    public static func render(_ statement: String, values: Values) -> String {
        let placeholders: [(String, String, Bool)] = [
            ("{{name}}", values.name, true), ("{{password}}", values.password, false), ("{{expiration}}", values.expiration, false),
        ]
        var out = ""
        var rest = Substring(statement)
        while let open = rest.firstRange(of: "{{") {
            let before = rest[..<open.lowerBound]
            out += before
            guard let match = placeholders.first(where: { rest[open.lowerBound...].hasPrefix($0.0) }) else {
                out += "{{"
                rest = rest[open.upperBound...]
                continue
            }
            let after = rest[rest.index(open.lowerBound, offsetBy: match.0.count)...]
            let quoteBefore = out.last
            let quoteAfter = after.first
            if quoteBefore == "\"" && quoteAfter == "\"" {
                out += match.1.replacing("\"", with: "\"\"")
            } else if quoteBefore == "'" && quoteAfter == "'" {
                out += match.1.replacing("'", with: "''")
            } else if match.2 {
                out += "\"" + match.1.replacing("\"", with: "\"\"") + "\""
            } else {
                out += "'" + match.1.replacing("'", with: "''") + "'"
            }
            rest = after
        }
        out += rest
        return out
    }

    /// Run first when a role is revoked, each committed on its own: no new logins, and the
    /// role's sessions ended. The broker can terminate them because it was granted membership
    /// in the role at creation (`membershipStatement`).
    public static let lockoutStatements = [
        "ALTER ROLE \"{{name}}\" NOLOGIN",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{{name}}'",
    ]

    /// The default revocation, after the lockout, in one transaction: drop what the role owns
    /// and every privilege granted to it (DROP OWNED does both, in this database), then the role.
    public static let defaultRevokeStatements = [
        "DROP OWNED BY \"{{name}}\"",
        "DROP ROLE \"{{name}}\"",
    ]

    /// Run after the create statements: the broker joins the role it made. On PostgreSQL 15 a
    /// CREATEROLE role needs that membership to terminate the role's sessions and DROP OWNED BY it.
    public static let membershipStatement = "GRANT \"{{name}}\" TO CURRENT_USER"

    /// Moves the role's expiry (renewal).
    public static let renewStatement = "ALTER ROLE \"{{name}}\" VALID UNTIL '{{expiration}}'"

    /// Replaces each occurrence of `secret` in `text` (server messages may quote statements).
    public static func redact(_ text: String, secrets: [String]) -> String {
        var out = text
        for secret in secrets where secret.count >= 4 { out = out.replacing(secret, with: "<redacted>") }
        return out
    }
}
