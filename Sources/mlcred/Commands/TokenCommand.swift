import ArgumentParser
import MLCredAPI
import MLCredClient

struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Obtain a token for a role (prints the token only), or list and revoke tokens (admin).",
        subcommands: [TokenIssue.self, TokenList.self, TokenRevoke.self],
        defaultSubcommand: TokenIssue.self)
}

struct TokenIssue: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "issue",
        abstract: "Print a new token for a role (refused for phi roles). Same as 'mlcred token --role R'.",
        discussion: "The token is bound to your uid and lives until its ttl or until revoked. Example: mlcred token --role train --ttl 30m")

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "The role to assume.")
    var role: String
    @Option(help: "Token lifetime, e.g. 30m (capped at the role's ttl).")
    var ttl: String?

    func validate() throws {
        try TTLOption.check(ttl)
    }

    func run() throws {
        let token: TokenResponse = try connection.client().call("POST", "/v1/tokens", body: TokenRequest(role: role, ttl: ttl, bind: nil))
        Terminal.out(token.token + "\n")
    }
}

struct TokenList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List live tokens by accessor (admin). Never the tokens.")

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let list: TokenListResponse = try connection.client().call("GET", "/v1/tokens")
        if output.json { return try Terminal.printJSON(list.tokens) }
        let rows = list.tokens.map {
            [$0.accessor, $0.role, "\($0.user ?? "?")(\($0.uid))", String($0.pid), $0.bound ? "process" : "-", $0.expiresAt, $0.state.rawValue]
        }
        Terminal.out(Table.render(header: ["ACCESSOR", "ROLE", "USER", "PID", "BOUND", "EXPIRES", "STATE"], rows: rows))
    }
}

struct TokenRevoke: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke a token and its leases: by accessor (admin), or your own $MLCRED_TOKEN with --current.",
        discussion: "Example, after 'eval \"$(mlcred env --role notebook)\"': mlcred token revoke --current")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The token's accessor (from 'mlcred token list').")
    var accessor: String?
    @Flag(help: "Revoke the token in $MLCRED_TOKEN (any user, for their own token).")
    var current = false

    func validate() throws {
        guard (accessor == nil) == current else { throw ValidationError("give an accessor or --current") }
    }

    func run() throws {
        if current {
            guard let token = Environment.value("MLCRED_TOKEN") else {
                throw CLIError("MLCRED_TOKEN is not set", hint: "run it where 'mlcred env' was evaluated", status: .usage)
            }
            let answer: RevocationResponse<Bool> = try connection.client().call("POST", "/v1/tokens/revoke", body: Optional<String>.none, bearer: token)
            Terminal.out("revoked the current token and its leases\n")
            RevocationWarnings.print(unconfirmed: answer.unconfirmed)
            return
        }
        guard let accessor else { return }
        let answer: RevocationResponse<String> = try connection.client().call(
            "POST", "/v1/tokens/\(try PathName.check(accessor, what: "accessor"))/revoke", body: Optional<String>.none)
        Terminal.out("revoked token \(accessor)\n")
        RevocationWarnings.print(unconfirmed: answer.unconfirmed)
    }
}

struct LeaseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lease", abstract: "List and revoke leases (admin).", subcommands: [LeaseList.self, LeaseRevoke.self])
}

struct LeaseList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List live leases, failed revocations, and ended credentials still valid at their provider.")

    @OptionGroup var connection: ConnectionOptions
    @Flag(help: "Include ended leases.")
    var all = false
    @OptionGroup var output: OutputOptions

    func run() throws {
        let list: LeaseListResponse = try connection.client().call("GET", "/v1/leases" + (all ? "?all=true" : ""))
        if output.json { return try Terminal.printJSON(list.leases) }
        let rows = list.leases.map { [$0.id, $0.accessor, $0.role, $0.grant, $0.type, $0.providerID, $0.expiresAt, $0.state.rawValue, $0.lastError ?? ""] }
        Terminal.out(Table.render(header: ["ID", "ACCESSOR", "ROLE", "GRANT", "TYPE", "PROVIDER_ID", "EXPIRES", "STATE", "LAST_ERROR"], rows: rows))
    }
}

struct LeaseRevoke: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke one lease.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The lease id.")
    var id: String

    func run() throws {
        let answer: RevocationResponse<String> = try connection.client().call(
            "POST", "/v1/leases/\(try PathName.check(id, what: "lease id"))/revoke", body: Optional<String>.none)
        Terminal.out(answer.unconfirmed.isEmpty ? "revoked lease \(id)\n" : "ended lease \(id) here\n")
        RevocationWarnings.print(unconfirmed: answer.unconfirmed, stillValid: answer.stillValid)
    }
}

/// What a revocation could not finish, said on stderr.
enum RevocationWarnings {
    static func print(unconfirmed: [LeaseInfo], stillValid: [LeaseInfo] = []) {
        for lease in unconfirmed {
            Terminal.err("mlcred: warning: lease \(lease.id) (\(lease.type) \(lease.providerID)) is not revoked at its provider yet: \(lease.lastError ?? "no answer"); the daemon retries ('mlcred lease list' shows it)\n")
        }
        for lease in stillValid {
            let what = lease.type.hasPrefix("aws-") ? "STS sessions cannot be ended early: its keys stay valid at AWS"
                : lease.type == "jwt" ? "a JWT cannot be recalled: it stays valid for verifiers"
                : "a static value cannot be revoked at its source: rotate it there"
            Terminal.err("mlcred: warning: lease \(lease.id) (\(lease.type) \(lease.providerID)): \(what) until \(lease.expiresAt)\n")
        }
    }
}

struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy", abstract: "Validate, test, explain and diff policies (offline); list and reload the daemon's (admin).",
        subcommands: [PolicyValidate.self, PolicyTest.self, PolicyExplain.self, PolicyDiffCommand.self, PolicyList.self, PolicyReload.self])
}

struct PolicyList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Show the roles the daemon has loaded.")

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let list: PolicyListResponse = try connection.client().call("GET", "/v1/policies")
        if output.json { return try Terminal.printJSON(list) }
        Terminal.out("policies from \(list.directory), digest \(list.digest), loaded \(list.loadedAt)\n")
        let rows = list.roles.map { role in
            [role.name, role.phi ? "yes" : "no", role.environments?.joined(separator: ",") ?? "*", role.ttl + "/" + role.maxTTL,
             role.principals.joined(separator: " "), role.grants.map { "\($0.name):\($0.type)" }.joined(separator: " ")]
        }
        Terminal.out(Table.render(header: ["ROLE", "PHI", "ENVIRONMENTS", "TTL/MAX", "PRINCIPALS", "GRANTS"], rows: rows))
    }
}

struct PolicyReload: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload", abstract: "Reload the policy directory; on any error the last good set stays in force (exit 1).")

    @OptionGroup var connection: ConnectionOptions

    func run() throws {
        do {
            let list: PolicyListResponse = try connection.client().call("POST", "/v1/policies/reload")
            Terminal.out("reloaded \(list.roles.count) roles from \(list.directory) (digest \(list.digest))\n")
        } catch ClientError.apiDetailed(_, _, _, let message, let details) {
            for line in details { Terminal.err(line + "\n") }
            throw CLIError(message, hint: "fix the files above and reload again")
        }
    }
}
