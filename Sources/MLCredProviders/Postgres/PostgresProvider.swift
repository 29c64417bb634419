import Logging
import MLCredAPI
import MLCredCrypto
import MLCredPolicy
import NIOCore
import NIOSSL
import PostgresNIO

/// `postgres-role` grants: a PostgreSQL role made for one lease by the grant's `create`
/// statements (run in one transaction by the broker login stored in the secret), renewed by
/// moving `VALID UNTIL`, revoked by the grant's `revoke` statements or the default (see
/// `PostgresTemplate.defaultRevokeStatements`). One short connection per operation.
public struct PostgresProvider: CredentialProvider {
    public let grantTypes: [GrantType] = [.postgresRole]
    public var revocable: Bool { true }
    public var renewable: Bool { true }
    /// A database that does not answer must not hold a job or the sweeper.
    static let connectTimeoutSeconds: Int64 = 5
    /// Bounds every statement and lock wait of the broker's session (a DROP ROLE blocked by a lock).
    static let statementTimeout = "10s"
    /// Bounds one whole operation once connected (all its statements), enforced here.
    static let operationSeconds = 20.0
    /// Broker connections open at once per server and login; more operations wait their turn.
    static let connectionsPerServer = 8
    /// How long an operation waits for a turn before it fails.
    static let turnWaitSeconds = 30.0
    static let gate = ConnectionGate(limit: connectionsPerServer, waitSeconds: turnWaitSeconds)
    /// libpq's default `sslmode`.
    static let defaultSSLMode = "prefer"
    /// Secret field → default variable.
    static let variables = GrantVariables.postgresDefaults

    private let logger = Logger(label: "mlcred.postgres", factory: { _ in SwiftLogNoOpLogHandler() })

    public init() {}

    public func issue(secret: OpenedSecret, context: IssuanceContext) async throws -> IssuedCredential {
        let target = try Target(secret: secret)
        // Policies are checked at load; this holds for any grant that reaches a provider.
        for (index, statement) in context.grant.create.enumerated() {
            if let problem = PostgresStatementRules.problem(in: statement, placeholders: PostgresStatementRules.createPlaceholders) {
                throw APIError(.grantInvalid, "grant '\(context.grant.name)', create statement \(index + 1): \(problem)")
            }
        }
        let password = PostgresTemplate.password()
        // The server gets the password's SCRAM verifier, never the password (statement logs).
        let values = PostgresTemplate.Values(name: PostgresTemplate.roleName(role: context.role.name),
                                             password: PostgresTemplate.scramVerifier(password: password),
                                             expiration: PostgresTemplate.expiration(epochSeconds: context.expiresAt))
        let statements = context.grant.create.map { PostgresTemplate.render($0, values: values) }
            + [PostgresTemplate.render(PostgresTemplate.membershipStatement, values: values)]
        let redactions = [password, values.password, target.password]
        try await withConnection(target, redactions: redactions) { connection in
            // One transaction: a statement that fails leaves no half-made role behind.
            try await run("BEGIN", on: connection, target: target, redactions: redactions)
            do {
                // Concurrent GRANTs on one object's ACL fail with "tuple concurrently updated":
                // the broker's changes to roles are taken one at a time per cluster.
                try await run(Self.serializeStatement, on: connection, target: target, redactions: redactions)
                for (index, statement) in statements.enumerated() {
                    try await run(statement, on: connection, target: target, redactions: redactions,
                                  what: index < context.grant.create.count
                                      ? "create statement \(index + 1) of grant '\(context.grant.name)'"
                                      : "granting the broker membership in the new role")
                }
                guard try await roleExists(values.name, on: connection, target: target) else {
                    throw APIError(.grantInvalid, "grant '\(context.grant.name)': its create statements did not create role {{name}}")
                }
                try await run("COMMIT", on: connection, target: target, redactions: redactions)
            } catch {
                _ = try? await connection.query(PostgresQuery(unsafeSQL: "ROLLBACK"), logger: logger)
                throw error
            }
        }
        var fields = target.fields
        fields["user"] = values.name
        fields["password"] = password
        fields["sslmode"] = fields["sslmode"] ?? Self.defaultSSLMode
        var env: [String: String] = [:]
        var plain: Set<String> = []
        if context.grant.env.isEmpty {
            for (field, variable) in Self.variables {
                env[variable] = fields[field]
                if field != "password" { plain.insert(variable) }
            }
        } else {
            for (variable, field) in context.grant.env {
                guard let value = fields[field] else {
                    throw APIError(.grantEnvInvalid, "grant '\(context.grant.name)' maps \(variable) to '\(field)'; a postgres-role credential has host, port, dbname, user, password and sslmode")
                }
                env[variable] = value
                if field != "password" { plain.insert(variable) }
            }
        }
        // Kept with the lease: where the role lives (a later secret pointing elsewhere must not
        // "revoke" it by not finding it there) and the grant's own revoke statements (the role
        // is ended the way it was made to be, even if the policy changes meanwhile).
        let state = LeaseState(target: target.address, revoke: context.grant.revoke)
        return IssuedCredential(env: env, plain: plain, providerID: values.name, expiresAt: context.expiresAt,
                                providerState: String(decoding: try APIJSON.encode(state), as: UTF8.self))
    }

    public func renew(lease: LeaseHandle, secret: OpenedSecret, expiresAt: Double) async throws {
        let target = try Target(secret: secret)
        let values = PostgresTemplate.Values(name: lease.providerID, password: "",
                                             expiration: PostgresTemplate.expiration(epochSeconds: expiresAt))
        try await withConnection(target, redactions: [target.password]) { connection in
            try await run(PostgresTemplate.render(PostgresTemplate.renewStatement, values: values), on: connection, target: target,
                          redactions: [target.password], what: "renewing role \(lease.providerID)")
        }
    }

    public func revoke(lease: LeaseHandle, secret: OpenedSecret) async throws {
        let target = try Target(secret: secret)
        let state = LeaseState.decode(lease.providerState)
        if let madeOn = state.target, madeOn != target.address {
            throw APIError(.secretMoved, "secret '\(secret.name)' now points to \(target.address), but role \(lease.providerID) was made on \(madeOn): put back a secret for \(madeOn) to let the revocation finish")
        }
        let statements = (state.revoke?.isEmpty == false ? state.revoke : nil) ?? PostgresTemplate.defaultRevokeStatements
        let values = PostgresTemplate.Values(name: lease.providerID, password: "", expiration: "")
        let redactions = [target.password]
        try await withConnection(target, redactions: redactions) { connection in
            // Already gone (revoked before a crash, or by hand): nothing left to do.
            guard try await roleExists(lease.providerID, on: connection, target: target) else { return }
            // The lockout commits on its own, first: if a later step fails (an object the role
            // owns elsewhere, a lock), the login is dead already while the revocation is retried.
            for (index, statement) in PostgresTemplate.lockoutStatements.enumerated() {
                try await run(PostgresTemplate.render(statement, values: values), on: connection, target: target,
                              redactions: redactions, what: "locking out role \(lease.providerID) (step \(index + 1))")
            }
            try await run("BEGIN", on: connection, target: target, redactions: redactions)
            do {
                try await run(Self.serializeStatement, on: connection, target: target, redactions: redactions)
                for (index, statement) in statements.enumerated() {
                    try await run(PostgresTemplate.render(statement, values: values), on: connection, target: target,
                                  redactions: redactions, what: "revoke statement \(index + 1) for role \(lease.providerID)")
                }
                try await run("COMMIT", on: connection, target: target, redactions: redactions)
            } catch {
                _ = try? await connection.query(PostgresQuery(unsafeSQL: "ROLLBACK"), logger: logger)
                throw error
            }
        }
    }

    /// Serializes the broker's role changes in one cluster (a transaction-scoped advisory lock;
    /// the key is "mlcred" in ASCII).
    static let serializeStatement = "SELECT pg_advisory_xact_lock(120139214792036)"

    /// What a lease records about its role.
    struct LeaseState: Codable {
        /// `host:port/dbname` the role was made on.
        var target: String?
        /// The grant's own revoke statements, if it has any.
        var revoke: [String]?

        static func decode(_ text: String?) -> LeaseState {
            guard let text else { return LeaseState() }
            return (try? APIJSON.decode(LeaseState.self, from: Array(text.utf8))) ?? LeaseState()
        }
    }

    /// `secret rotate` (SPEC §13): sets the broker login's password to `newPassword`, connected
    /// with the current one. What the server receives is the SCRAM-SHA-256 verifier computed
    /// here (RFC 7677), never the password: it cannot reach the server's statement log.
    public func changePassword(secret: OpenedSecret, to newPassword: String) async throws {
        guard !newPassword.isEmpty else { throw APIError(.internal, "an empty password") }
        let target = try Target(secret: secret)
        let role = "\"" + target.user.replacing("\"", with: "\"\"") + "\""
        let verifier = Self.scramVerifier(password: newPassword, salt: Sodium.randomBytes(16))
        try await withConnection(target, redactions: [target.password, newPassword]) { connection in
            try await self.run("ALTER ROLE \(role) WITH PASSWORD '\(verifier)'", on: connection, target: target,
                               redactions: [target.password, newPassword, verifier], what: "changing the broker login's password")
        }
    }

    /// SCRAM-SHA-256 verifier as PostgreSQL stores it: `SCRAM-SHA-256$ITER:SALT$STOREDKEY:SERVERKEY`
    /// (base64), from PBKDF2-HMAC-SHA256 of the password (which SASLprep leaves as it is for
    /// printable ASCII; others are used as their UTF-8 bytes, as libpq does when SASLprep fails).
    static func scramVerifier(password: String, salt: [UInt8], iterations: Int = 4096) -> String {
        let salted = SHA256.pbkdf2(password: Array(password.utf8), salt: salt, iterations: iterations)
        let clientKey = SHA256.hmac(key: salted, Array("Client Key".utf8))
        let storedKey = SHA256.hash(clientKey)
        let serverKey = SHA256.hmac(key: salted, Array("Server Key".utf8))
        return "SCRAM-SHA-256$\(iterations):\(Base64.encode(salt))$\(Base64.encode(storedKey)):\(Base64.encode(serverKey))"
    }

    /// The broker login a secret holds.
    struct Target: Sendable {
        var fields: [String: String]
        var host: String
        var port: Int
        var database: String
        var user: String
        var password: String
        var sslMode: String

        init(secret: OpenedSecret) throws {
            guard let host = secret.fields["host"], let port = secret.fields["port"].flatMap(Int.init),
                  let database = secret.fields["dbname"], let user = secret.fields["user"], let password = secret.fields["password"] else {
                throw APIError(.secretIncomplete, "postgres secret '\(secret.name)' lacks host, port, dbname, user or password")
            }
            fields = secret.fields
            self.host = host
            self.port = port
            self.database = database
            self.user = user
            self.password = password
            sslMode = secret.fields["sslmode"] ?? PostgresProvider.defaultSSLMode
        }

        /// `host:port/dbname` (an IPv6 host in brackets).
        var address: String { (host.contains(":") ? "[\(host)]" : host) + ":\(port)/\(database)" }
    }

    private func withConnection(_ target: Target, redactions: [String],
                                _ body: @escaping @Sendable (PostgresConnection) async throws -> Void) async throws {
        try await Self.gate.withPlace("\(target.user)@\(target.host):\(target.port)", what: "PostgreSQL at \(target.address)") {
            try await connected(target, redactions: redactions, body)
        }
    }

    private func connected(_ target: Target, redactions: [String],
                           _ body: @escaping @Sendable (PostgresConnection) async throws -> Void) async throws {
        var configuration = PostgresConnection.Configuration(host: target.host, port: target.port, username: target.user,
                                                             password: target.password, database: target.database,
                                                             tls: try Self.tls(sslMode: target.sslMode))
        configuration.options.connectTimeout = .seconds(Self.connectTimeoutSeconds)
        let connection = try await connect(configuration, target: target, redactions: redactions)
        do {
            // The server enforces its timeouts only while it answers; this deadline holds when it
            // stops answering mid-session. Closing the connection then fails the stuck query.
            try await Deadline.run(seconds: Self.operationSeconds, what: "PostgreSQL at \(target.address)") {
                try await run("SET statement_timeout = '\(Self.statementTimeout)'", on: connection, target: target, redactions: redactions)
                try await run("SET lock_timeout = '\(Self.statementTimeout)'", on: connection, target: target, redactions: redactions)
                // If the link goes quiet mid-transaction, the server ends the session itself and
                // frees its locks (the advisory lock every role change takes) for other jobs.
                try await run("SET idle_in_transaction_session_timeout = '\(Self.statementTimeout)'", on: connection, target: target,
                              redactions: redactions)
                try await body(connection)
            }
        } catch {
            try? await connection.close()
            throw error
        }
        try? await connection.close()
    }

    /// A broker connection. 53300 (too many connections: the server's or the login's limit is
    /// taken, perhaps by sessions still ending) is retried a few times before the job fails.
    private func connect(_ configuration: PostgresConnection.Configuration, target: Target,
                         redactions: [String]) async throws -> PostgresConnection {
        var attempt = 0
        while true {
            do {
                return try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
            } catch where Self.isTooManyConnections(error) && attempt < Self.tooManyConnectionsRetries {
                try await Task.sleep(nanoseconds: UInt64(100_000_000) << attempt)
                attempt += 1
            } catch {
                throw APIError(Self.connectReason(error), "cannot connect to PostgreSQL at \(target.address) as \(target.user): "
                                    + PostgresTemplate.redact(Self.describe(error), secrets: redactions))
            }
        }
    }

    private func run(_ sql: String, on connection: PostgresConnection, target: Target, redactions: [String],
                     what: String? = nil) async throws {
        do {
            let rows = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
            for try await _ in rows {}
        } catch {
            let context = what.map { " (\($0))" } ?? ""
            throw APIError(Self.statementReason(sqlState: Self.sqlState(error)), "PostgreSQL at \(target.address) refused a statement\(context): "
                                + PostgresTemplate.redact(Self.describe(error), secrets: redactions))
        }
    }

    private func roleExists(_ name: String, on connection: PostgresConnection, target: Target) async throws -> Bool {
        do {
            let rows = try await connection.query("SELECT 1 FROM pg_roles WHERE rolname = \(name)", logger: logger)
            var found = false
            for try await _ in rows { found = true }
            return found
        } catch {
            throw APIError(Self.statementReason(sqlState: Self.sqlState(error)), "PostgreSQL at \(target.address) could not list roles: \(Self.describe(error))")
        }
    }

    /// TLS as libpq's `sslmode` means it.
    static func tls(sslMode: String) throws -> PostgresConnection.Configuration.TLS {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch sslMode {
        case "disable":
            return .disable
        case "allow", "prefer", "require":
            configuration.certificateVerification = .none
        case "verify-ca":
            configuration.certificateVerification = .noHostnameVerification
        default:
            configuration.certificateVerification = .fullVerification
        }
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw APIError(.internal, "cannot set up TLS for PostgreSQL: \(error)")
        }
        return sslMode == "require" || sslMode.hasPrefix("verify") ? .require(context) : .prefer(context)
    }

    /// Retries of a connection refused with 53300, after 0.1, 0.2, 0.4 and 0.8 s.
    static let tooManyConnectionsRetries = 4

    static func isTooManyConnections(_ error: any Error) -> Bool {
        (error as? PSQLError)?.serverInfo?[.sqlState] == "53300"
    }

    /// The SQLSTATE the server answered `error` with, if it answered.
    static func sqlState(_ error: any Error) -> String? {
        (error as? PSQLError)?.serverInfo?[.sqlState]
    }

    /// The reason a failed connection is answered with.
    static func connectReason(_ error: any Error) -> APIErrorReason {
        if (error as? PSQLError)?.code == .sslUnsupported { return .upstreamRefused }
        return connectReason(sqlState: sqlState(error))
    }

    /// The reason a failed connection is answered with, from the server's SQLSTATE: none means
    /// the server was not reached; class 28 is a refused login; 53300 too many connections.
    static func connectReason(sqlState: String?) -> APIErrorReason {
        guard let sqlState else { return .upstreamUnreachable }
        if sqlState.hasPrefix("28") { return .upstreamLogin }
        if sqlState == "53300" { return .upstreamBusy }
        return .upstreamRefused
    }

    /// The reason a failed statement is answered with, from the server's SQLSTATE: none means
    /// the connection failed under it; 42501 is a privilege the broker lacks; 57014 and 55P03
    /// are the statement and lock timeouts the broker sets.
    static func statementReason(sqlState: String?) -> APIErrorReason {
        switch sqlState {
        case nil: .upstreamUnreachable
        case "42501": .upstreamDenied
        case "57014", "55P03": .upstreamTimeout
        default: .upstreamRefused
        }
    }

    /// The server's message and SQLSTATE, or what went wrong on the way. PSQLError's own
    /// description hides both on purpose; the server's message names objects, not values we redact.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        if let info = error.serverInfo, let message = info[.message] {
            return message + (info[.sqlState].map { " (SQLSTATE \($0))" } ?? "")
        }
        if let underlying = error.underlying {
            let text = "\(underlying)"
            if text.contains("connectionRefused") || text.contains("Connection refused") { return "connection refused" }
            if text.contains("connectTimeout") { return "could not connect within \(connectTimeoutSeconds) s" }
            return text
        }
        switch error.code {
        case .sslUnsupported: return "the server does not offer TLS (the secret's sslmode requires it)"
        case .serverClosedConnection, .uncleanShutdown: return "the server closed the connection"
        default: return "\(error.code)"
        }
    }
}
