import MLCredAPI

/// Who a role admits: an entry of `principals`.
public enum PrincipalPattern: Sendable, Equatable, Hashable, CustomStringConvertible {
    case user(String)
    case uid(UInt32)
    case group(String)
    case gid(UInt32)
    /// A systemd system unit (matched only for callers under `system.slice`).
    case unit(String)

    public var description: String {
        switch self {
        case .user(let name): "user:\(name)"
        case .uid(let id): "uid:\(id)"
        case .group(let name): "group:\(name)"
        case .gid(let id): "gid:\(id)"
        case .unit(let name): "unit:\(name)"
        }
    }

    /// Parses `kind:value`; nil if malformed.
    public static func parse(_ text: String) -> PrincipalPattern? {
        guard let colon = text.firstIndex(of: ":") else { return nil }
        let kind = text[..<colon]
        let value = String(text[text.index(after: colon)...])
        guard !value.isEmpty, !value.contains(where: { $0.isWhitespace }) else { return nil }
        switch kind {
        case "user": return .user(value)
        case "group": return .group(value)
        case "unit": return .unit(value)
        case "uid": return UInt32(value).map(PrincipalPattern.uid)
        case "gid": return UInt32(value).map(PrincipalPattern.gid)
        default: return nil
        }
    }
}

/// How a grant turns a secret into a short-lived credential.
public enum GrantType: String, Sendable, Equatable, CaseIterable {
    case awsAssumeRole = "aws-assume-role"
    case awsSessionToken = "aws-session-token"
    case awsFederationToken = "aws-federation-token"
    case postgresRole = "postgres-role"
    case jwt
    case `static`

    /// The secret type this grant needs.
    public var secretType: SecretType {
        switch self {
        case .awsAssumeRole, .awsSessionToken, .awsFederationToken: .aws
        case .postgresRole: .postgres
        case .jwt: .jwtSigner
        case .static: .static
        }
    }
}

/// A JSON-shaped value from a policy (JWT claims).
public enum PolicyValue: Sendable, Equatable, Encodable {
    case string(String)
    case integer(Int)
    case double(Double)
    case bool(Bool)
    case array([PolicyValue])
    case table([String: PolicyValue])

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .table(let value): try container.encode(value)
        }
    }
}

/// One entry of a role: which secret, turned into which kind of credential.
public struct Grant: Sendable, Equatable {
    public var name: String
    public var secret: String
    public var type: GrantType
    /// Narrows the role's environments; nil = the role's.
    public var environments: [String]?
    /// Environment variable name → credential field, overriding the defaults.
    public var env: [String: String]
    public var line: Int

    // jwt
    public var audience: String?
    public var claims: [String: PolicyValue]
    // aws
    public var roleARN: String?
    public var sessionPolicy: String?
    public var sessionPolicyFile: String?
    public var durationSeconds: Int?
    public var externalID: String?
    public var sessionTags: [String: String]
    // postgres
    public var create: [String]
    public var revoke: [String]?

    public init(name: String, secret: String, type: GrantType, line: Int) {
        self.name = name
        self.secret = secret
        self.type = type
        self.line = line
        environments = nil
        env = [:]
        claims = [:]
        sessionTags = [:]
        create = []
    }
}

/// A role: who may obtain which grants, for how long, where.
public struct Role: Sendable, Equatable {
    public var name: String
    public var description: String?
    public var phi: Bool
    /// nil = every environment.
    public var environments: [String]?
    public var principals: [PrincipalPattern]
    public var ttlSeconds: Int
    public var maxTTLSeconds: Int
    public var grants: [Grant]
    /// The file it came from, relative to the policy directory.
    public var file: String
    /// Break-glass (SPEC §13): issues nothing until two different admins open it.
    public var emergency: Bool = false

    /// The grants issued in `environment`.
    public func grants(in environment: String) -> [Grant] {
        grants.filter { $0.environments?.contains(environment) ?? true }
    }
}

/// A problem in a policy file: `FILE:LINE[:COL]: message`.
public struct PolicyDiagnostic: Sendable, Equatable, CustomStringConvertible, Comparable {
    public var file: String
    public var line: Int
    public var column: Int?
    public var message: String

    public init(file: String, line: Int, column: Int? = nil, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String {
        "\(file):\(line)\(column.map { ":\($0)" } ?? ""): \(message)"
    }

    public static func < (a: PolicyDiagnostic, b: PolicyDiagnostic) -> Bool {
        (a.file, a.line, a.column ?? 0, a.message) < (b.file, b.line, b.column ?? 0, b.message)
    }
}

/// A validated set of roles, by name.
public struct PolicySet: Sendable, Equatable {
    public var roles: [String: Role]
    /// A digest of every file's content, to record which set was loaded.
    public var digest: String

    public init(roles: [String: Role], digest: String) {
        self.roles = roles
        self.digest = digest
    }

    /// The empty set (no directory yet): denies everything.
    public static let empty = PolicySet(roles: [:], digest: "empty")
}

/// Errors of a policy load: all diagnostics at once.
public struct PolicyLoadError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [PolicyDiagnostic]

    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

extension PolicyValue: JSONBodyEncodable {
    /// Written directly, without Foundation's encoder (JWT claims, on the request path), keys in
    /// sorted order.
    public func write(to writer: inout JSONWriter) {
        switch self {
        case .string(let value): writer.element(value)
        case .integer(let value): writer.element(value)
        case .double(let value): writer.element(value)
        case .bool(let value): writer.element(value)
        case .array(let values):
            writer.beginArray()
            for value in values { value.write(to: &writer) }
            writer.endArray()
        case .table(let table):
            writer.beginObject()
            for (key, value) in table.sorted(by: { $0.key < $1.key }) {
                writer.key(key)
                value.write(to: &writer)
            }
            writer.endObject()
        }
    }
}
