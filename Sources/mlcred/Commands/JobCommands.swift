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
    @Option(help: "The role to assume.")
    var role: String
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
            throw ValidationError("unknown option '\(first)' (the command to run goes after --)")
        }
        guard !(command.first == "--" ? Array(command.dropFirst()) : command).isEmpty else {
            throw ValidationError("give the command to run after --")
        }
        try TTLOption.check(ttl)
    }

    func run() throws {
        try RunJob(socket: connection.socket, role: role, ttl: ttl, noMask: noMask,
                   command: command.first == "--" ? Array(command.dropFirst()) : command).run()
    }
}

/// What `mlcred run` does once its arguments are parsed (by ArgumentParser, or by `FastPath`).
struct RunJob {
    var socket: String?
    var role: String
    var ttl: String?
    var noMask: Bool
    var command: [String]

    func run() throws {
        let client = try MLCredClient(socketPath: socket)
        // One request gets the token and the credentials, stored together. With --no-mask they are
        // fetched only once the role is known not to be phi (phi roles always mask).
        let token: TokenResponse = try client.call("POST", "/v1/tokens",
                                                   body: TokenRequest(role: role, ttl: ttl, bind: "process", credentials: noMask ? nil : true,
                                                                                      aws: AWSGrantMode.defer.rawValue))
        if token.phi && noMask {
            _ = try? client.callRaw("POST", "/v1/tokens/revoke", body: Optional<String>.none, bearer: token.token)
            throw CLIError("--no-mask is refused for phi role '\(role)': its output is always masked",
                           hint: "run without --no-mask", status: .denied)
        }
        let credentials: CredentialsResponse
        if let included = token.credentials {
            credentials = included
        } else {
            do {
                credentials = try client.call("POST", "/v1/credentials", body: CredentialsRequest(grants: nil, aws: .defer), bearer: token.token)
            } catch {
                _ = try? client.callRaw("POST", "/v1/tokens/revoke", body: Optional<String>.none, bearer: token.token)
                throw error
            }
        }
        let code = try JobRunner(client: client, token: token, credentials: credentials, mask: token.phi || !noMask, command: command, ttl: ttl).run()
        throw ExitCode(code)
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
    @Option(help: "The role to assume.")
    var role: String
    @Option(help: "Token lifetime, e.g. 30m.")
    var ttl: String?
    @Option(help: "sh, dotenv or json.")
    var format: String = "sh"

    func validate() throws {
        guard ["sh", "dotenv", "json"].contains(format) else { throw ValidationError("--format must be sh, dotenv or json") }
        try TTLOption.check(ttl)
    }

    func run() throws {
        let client = try connection.client()
        let token: TokenResponse = try client.call("POST", "/v1/tokens", body: TokenRequest(role: role, ttl: ttl, bind: nil))
        let credentials: CredentialsResponse
        do {
            credentials = try client.call("POST", "/v1/credentials", body: CredentialsRequest(grants: nil), bearer: token.token)
        } catch {
            // Nothing was handed out: leave no live token behind.
            _ = try? client.callRaw("POST", "/v1/tokens/revoke", body: Optional<String>.none, bearer: token.token)
            throw error
        }
        var env = credentials.env
        env["MLCRED_TOKEN"] = token.token
        env["MLCRED_SOCKET"] = absolutePath(client.socketPath)
        env["MLCRED_ROLE"] = token.role
        env["MLCRED_EXPIRES_AT"] = token.expiresAt
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
            through it on their own. Each call mints a fresh STS session (at least 30
            minutes), recorded as a lease. Without --grant: the role's first AWS grant.
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
        let credentials: CredentialsResponse = try MLCredClient(socketPath: socket).call(
            "POST", "/v1/credentials", body: CredentialsRequest(grants: grant.map { [$0] }, aws: .only), bearer: token)
        guard let keyID = credentials.env["AWS_ACCESS_KEY_ID"], let secret = credentials.env["AWS_SECRET_ACCESS_KEY"] else {
            throw CLIError("the role has no AWS grant\(grant.map { " named '\($0)'" } ?? "")", hint: "check the role's grants with 'mlcred policy list'")
        }
        if let socket = Environment.value(JobRunner.maskSocketVariable) {
            // Under `mlcred run`: these values are masked in the job's output from now on.
            for value in [secret, credentials.env["AWS_SESSION_TOKEN"], keyID].compactMap({ $0 }) {
                _ = value.utf8CString.withUnsafeBufferPointer { mlc_dgram_send(socket, $0.baseAddress, $0.count - 1) }
            }
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

/// `--ttl` values, checked before anything is asked of the daemon (a bad value is a usage error).
enum TTLOption {
    static func check(_ ttl: String?) throws {
        if let ttl, PolicyDuration.parse(ttl) == nil {
            throw ValidationError("--ttl must be a duration such as 30m, 1h or 1h30m")
        }
    }
}
