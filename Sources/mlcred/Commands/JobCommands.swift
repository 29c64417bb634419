import CLinux
import ArgumentParser
import MLCredAPI
import MLCredClient
import MLCredPolicy

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a command with short-lived credentials for a role; revoke them when it ends.",
        discussion: """
            Obtains a token bound to this process, fetches the role's credentials, starts
            CMD with them in its environment (plus MLCRED_TOKEN, MLCRED_SOCKET,
            MLCRED_ROLE, MLCRED_EXPIRES_AT), forwards SIGINT, SIGTERM, SIGHUP and SIGQUIT,
            renews the token while CMD runs, and when CMD exits revokes the token and
            every lease, then exits with CMD's code (128+N for signal N). If mlcred itself
            is killed, the daemon revokes the token and the job is killed with it.
            Credential values in CMD's output become <mlcred:masked> (always for phi
            roles).

            AWS grants arrive as an AWS config file (AWS_CONFIG_FILE, in a private
            directory removed at the end) whose credential_process runs this binary, so
            SDKs fetch and refresh STS sessions on their own. PostgreSQL grants arrive as
            PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD and PGSSLMODE for a role made
            for this job alone and dropped when it ends.

            Examples:
              mlcred run --role train -- python train.py --epochs 3
              mlcred run --role notebook --ttl 30m -- jupyter lab
            """)

    @OptionGroup var connection: ConnectionOptions
    /// Required (checked in `validate`), but without a parser default it would be reported
    /// missing when an unknown option before it (`run --json --role r -- cmd`) starts the
    /// passthrough and takes `--role` along: the unknown option is the error to name.
    @Option(help: "The role to assume (required); repeat for several (one token each, all revoked at the end).")
    var role: [String] = []
    @Option(help: "Token lifetime, e.g. 30m (capped at the role's ttl; renewed up to its max_ttl).")
    var ttl: String?
    @Flag(help: "Do not mask credential values in the job's output (refused for phi roles).")
    var noMask = false
    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments.")
    var command: [String] = []

    func validate() throws {
        // ArgumentParser's passthrough starts the command at an unknown option; no program is
        // named "-...", so that is a mistyped option.
        if let first = command.first, first != "--", first.hasPrefix("-") {
            // `run --help`, `run --role r --help`: the passthrough took the help flag too.
            if first == "--help" || first == "-h" { throw CleanExit.helpRequest(self) }
            throw ValidationError("unknown option '\(first)' (the command to run goes after --)")
        }
        try RoleOption.check(role)
        guard !(command.first == "--" ? Array(command.dropFirst()) : command).isEmpty else {
            throw ValidationError("give the command to run after --")
        }
        try TTLOption.check(ttl)
    }

    func run() throws {
        try RunJob(socket: connection.socket, roles: role, ttl: ttl, noMask: noMask,
                   command: command.first == "--" ? Array(command.dropFirst()) : command).run()
    }
}

/// What `mlcred run` does once its arguments are parsed (by ArgumentParser, or by `FastPath`).
struct RunJob {
    var socket: String?
    var roles: [String]
    var ttl: String?
    var noMask: Bool
    var command: [String]

    func run() throws {
        let client = try MLCredClient(socketPath: socket)
        let issued = try RoleSet.obtain(roles: roles, client: client, ttl: ttl, bind: true, fetchCredentials: !noMask, aws: .defer)
        do {
            if noMask, let phi = issued.members.first(where: { $0.token.phi }) {
                throw CLIError("--no-mask is refused for phi role '\(phi.token.role)': its output is always masked",
                               hint: "run without --no-mask", status: .denied)
            }
            var members = issued.members
            for index in members.indices where members[index].credentials == nil {
                members[index].credentials = try client.call("POST", "/v1/credentials", body: CredentialsRequest(grants: nil, aws: .defer),
                                                             bearer: members[index].token.token)
            }
            let set = RoleSet(members: members)
            let merged = try set.mergedCredentials()
            // Fail fast (SPEC §8): every AWS grant's first STS session is minted before the job
            // starts; a wrong key or an STS refusal ends the run here, with STS's message.
            var held: [String: [UInt8]] = [:]
            for (grant, token) in set.awsGrants {
                held[grant.grant] = try client.callRaw("POST", "/v1/credentials", body: CredentialsRequest(grants: [grant.grant], aws: .only),
                                                       bearer: token)
            }
            let code = try JobRunner(client: client, roles: set, credentials: merged, heldAWSAnswers: held,
                                     mask: set.phi || !noMask, command: command, ttl: ttl).run()
            throw ExitCode(code)
        } catch let exit as ExitCode {
            throw exit
        } catch {
            issued.revokeAll(client: client)
            throw error
        }
    }
}

/// The tokens of one `run` or `env`: one per `--role`, in the order given (SPEC §8).
struct RoleSet {
    struct Member {
        var token: TokenResponse
        var credentials: CredentialsResponse?
    }

    var members: [Member]

    /// Obtains a token (and, with `fetchCredentials`, its credentials in the same request) for
    /// each role; on any failure the tokens already obtained are revoked before the error is thrown.
    static func obtain(roles: [String], client: MLCredClient, ttl: String?, bind: Bool, fetchCredentials: Bool,
                       aws: AWSGrantMode) throws -> RoleSet {
        var set = RoleSet(members: [])
        for role in roles {
            do {
                let token: TokenResponse = try client.call(
                    "POST", "/v1/tokens",
                    body: TokenRequest(role: role, ttl: ttl, bind: bind ? .process : nil, credentials: fetchCredentials ? true : nil,
                                       aws: aws))
                set.members.append(Member(token: token, credentials: token.credentials))
            } catch {
                set.revokeAll(client: client)
                throw error
            }
        }
        return set
    }

    var phi: Bool { members.contains { $0.token.phi } }
    var tokens: [String] { members.map(\.token.token) }
    /// `MLCRED_ROLE`: the roles, comma-joined.
    var roleNames: String { members.map(\.token.role).joined(separator: ",") }
    /// `MLCRED_EXPIRES_AT`: the earliest expiry.
    var earliestExpiry: String {
        members.map(\.token.expiresAt).min { (Timestamp.parse($0) ?? 0) < (Timestamp.parse($1) ?? 0) } ?? ""
    }

    /// Every AWS grant left for credential_process, with the token of its role.
    var awsGrants: [(grant: DeferredAWSGrant, token: String)] {
        members.flatMap { member in (member.credentials?.aws ?? []).map { ($0, member.token.token) } }
    }

    /// Grant name → the token of the role that has it (the run socket routes requests by it).
    var grantTokens: [String: String] {
        var out: [String: String] = [:]
        for member in members {
            for lease in member.credentials?.leases ?? [] { out[lease.grant] = out[lease.grant] ?? member.token.token }
            for grant in member.credentials?.aws ?? [] { out[grant.grant] = out[grant.grant] ?? member.token.token }
        }
        return out
    }

    /// The roles' credentials as one: variables set by two roles with different values are
    /// refused naming the variable and both roles, as two grants of one role are.
    func mergedCredentials() throws -> CredentialsResponse {
        guard members.count > 1, let first = members.first?.credentials else {
            return members.first?.credentials ?? CredentialsResponse(env: [:], files: [:], leases: [], expiresAt: "")
        }
        var merged = first
        var setBy = Dictionary(uniqueKeysWithValues: first.env.keys.map { ($0, members[0].token.role) })
        var awsNames = Set((first.aws ?? []).map(\.grant))
        for member in members.dropFirst() {
            guard let credentials = member.credentials else { continue }
            for (key, value) in credentials.env.sorted(by: { $0.key < $1.key }) {
                if let other = setBy[key], merged.env[key] != value {
                    throw CLIError("roles '\(other)' and '\(member.token.role)' both set \(key)",
                                   hint: "give one of their grants an env table naming another variable, or run them separately")
                }
                merged.env[key] = value
                setBy[key] = member.token.role
            }
            for grant in credentials.aws ?? [] {
                guard awsNames.insert(grant.grant).inserted else {
                    throw CLIError("roles '\(setBy.values.first ?? "")' and '\(member.token.role)' both have an AWS grant named '\(grant.grant)'",
                                   hint: "rename one with the grant's 'name'")
                }
                merged.aws = (merged.aws ?? []) + [grant]
            }
            merged.leases += credentials.leases
            merged.plain = (merged.plain ?? []) + (credentials.plain ?? [])
            if (Timestamp.parse(credentials.expiresAt) ?? .infinity) < (Timestamp.parse(merged.expiresAt) ?? .infinity) {
                merged.expiresAt = credentials.expiresAt
            }
        }
        return merged
    }

    /// Revokes every token (best effort: the daemon revokes bound ones when `run` is gone anyway).
    func revokeAll(client: MLCredClient) {
        for member in members {
            _ = try? client.callRaw("POST", "/v1/tokens/revoke", body: Optional<String>.none, bearer: member.token.token)
        }
    }
}

struct Env: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "env",
        abstract: "Print a role's credentials as shell exports, a dotenv file or JSON (refused for phi roles).",
        discussion: """
            The token behind them is not bound to a process: it lives until its ttl.
            Revoke it (and its leases) when done with 'mlcred token revoke --current' in
            the same shell. Prefer 'mlcred run'. AWS grants print AWS_ACCESS_KEY_ID,
            AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and AWS_CREDENTIAL_EXPIRATION for the
            role's first AWS grant: an STS session of at least 30 minutes, which revoking
            cannot end early.

            Example: eval "$(mlcred env --role notebook)"
            """)

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "The role to assume; repeat for several (one token each).")
    var role: [String]
    @Option(help: "Token lifetime, e.g. 30m.")
    var ttl: String?
    @Option(help: "sh, dotenv or json.")
    var format: String = "sh"

    func validate() throws {
        guard ["sh", "dotenv", "json"].contains(format) else { throw ValidationError("--format must be sh, dotenv or json") }
        try RoleOption.check(role)
        try TTLOption.check(ttl)
    }

    func run() throws {
        let client = try connection.client()
        let issued = try RoleSet.obtain(roles: role, client: client, ttl: ttl, bind: false, fetchCredentials: false, aws: .mint)
        var env: [String: String]
        do {
            var members = issued.members
            for index in members.indices {
                members[index].credentials = try client.call("POST", "/v1/credentials", body: CredentialsRequest(grants: nil),
                                                             bearer: members[index].token.token)
            }
            env = try RoleSet(members: members).mergedCredentials().env
        } catch {
            // Nothing was handed out: leave no live token behind.
            issued.revokeAll(client: client)
            throw error
        }
        env["MLCRED_TOKEN"] = issued.tokens[0]
        if issued.tokens.count > 1 {
            // `mlcred token revoke --current` revokes every one of them.
            env[TokenRevoke.tokensVariable] = issued.tokens.joined(separator: ",")
        }
        env["MLCRED_SOCKET"] = absolutePath(client.socketPath)
        env["MLCRED_ROLE"] = issued.roleNames
        env["MLCRED_EXPIRES_AT"] = issued.earliestExpiry
        switch format {
        case "json":
            try Terminal.printJSON(env)
        case "dotenv":
            for key in env.keys.sorted() { Terminal.out("\(key)=\"\(Quoting.doubleQuoted(env[key] ?? ""))\"\n") }
        default:
            for key in env.keys.sorted() { Terminal.out("export \(key)=\(Quoting.singleQuoted(env[key] ?? ""))\n") }
        }
    }
}

enum Quoting {
    static func singleQuoted(_ text: String) -> String {
        "'" + text.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }

    static func doubleQuoted(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "$": out += "\\$"
            case "`": out += "\\`"
            default: out.append(character)
            }
        }
        return out
    }
}

struct CredentialProcess: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "credential-process",
        abstract: "Print AWS credentials in the credential_process format, under $MLCRED_TOKEN.",
        discussion: """
            Called by AWS SDKs through the config file 'mlcred run' writes; they refresh
            through it on their own. Under 'mlcred run' it is answered by run from the STS
            session it holds for the grant, minted again only when that has less than 15
            minutes left: one session per job and grant. Outside run, each call mints a
            fresh STS session (at least 30 minutes), recorded as a lease. Without --grant:
            the role's first AWS grant.
            """)

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "The AWS grant to fetch (default: the role's first AWS grant).")
    var grant: String?

    func run() throws {
        try CredentialProcessJob(socket: connection.socket, grant: grant).run()
    }
}

/// What `mlcred credential-process` does once its arguments are parsed.
struct CredentialProcessJob {
    var socket: String?
    var grant: String?

    func run() throws {
        guard let token = Environment.value("MLCRED_TOKEN") else {
            throw CLIError("MLCRED_TOKEN is not set", hint: "run this under 'mlcred run'", status: .usage)
        }
        // Under `mlcred run` this is run's own socket, which answers from the session it holds.
        // The process listening must be the user's own (run), root or the daemon user: the keys
        // are not handed to a socket someone else put in the way.
        let client = try MLCredClient(socketPath: socket)
        client.trustedDaemon = DaemonTrust.forCaller()
        let credentials: CredentialsResponse = try client.call(
            "POST", "/v1/credentials", body: CredentialsRequest(grants: grant.map { [$0] }, aws: .only), bearer: token)
        guard let keyID = credentials.env["AWS_ACCESS_KEY_ID"], let secret = credentials.env["AWS_SECRET_ACCESS_KEY"] else {
            throw CLIError("the role has no AWS grant\(grant.map { " named '\($0)'" } ?? "")", hint: "check the role's grants with 'mlcred policy list'")
        }
        var document: [String: String] = ["AccessKeyId": keyID, "SecretAccessKey": secret]
        document["SessionToken"] = credentials.env["AWS_SESSION_TOKEN"]
        document["Expiration"] = credentials.env["AWS_CREDENTIAL_EXPIRATION"] ?? credentials.expiresAt
        struct Output: Encodable {
            let version = 1
            let fields: [String: String]
            func encode(to encoder: Encoder) throws {
                var container = encoder.container(keyedBy: Key.self)
                try container.encode(version, forKey: Key("Version"))
                for (key, value) in fields { try container.encode(value, forKey: Key(key)) }
            }
            struct Key: CodingKey {
                var stringValue: String
                var intValue: Int? { nil }
                init(_ text: String) { stringValue = text }
                init?(stringValue: String) { self.stringValue = stringValue }
                init?(intValue: Int) { nil }
            }
        }
        Terminal.out(String(decoding: try APIJSON.encode(Output(fields: document)), as: UTF8.self) + "\n")
    }
}

/// Reading the process environment.
enum Environment {
    /// The value of `name`, nil when unset or empty.
    static func value(_ name: String) -> String? {
        currentEnvironment()[name].flatMap { $0.isEmpty ? nil : $0 }
    }
}

/// `--role` given once or more, each role once.
enum RoleOption {
    static func check(_ roles: [String]) throws {
        guard !roles.isEmpty else { throw ValidationError("missing --role (give it once per role)") }
        guard Set(roles).count == roles.count else { throw ValidationError("a role is given twice with --role") }
        // A name the daemon would refuse is a typing mistake: said here, as usage (exit 2).
        guard roles.allSatisfy(Names.isValidRoleName) else { throw ValidationError("invalid role name: \(Names.roleNameRequirement)") }
    }
}

/// `--ttl` values, checked before anything is asked of the daemon (a bad value is a usage error).
enum TTLOption {
    static func check(_ ttl: String?) throws {
        if let ttl, PolicyDuration.parse(ttl) == nil {
            throw ValidationError("--ttl must be a duration above zero, such as 30s, 30m, 1h or 1h30m")
        }
    }
}
