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
        try RoleOption.check([role])
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
        let client = try connection.client()
        // Page by page, so the daemon never holds a million tokens' answer at once.
        let tokens = try ListPage.collect { page in
            let list: TokenListResponse = try client.call("GET", "/v1/tokens" + page.query())
            return (list.tokens, list.next)
        }
        if output.json { return try Terminal.printJSON(tokens) }
        let rows = tokens.map {
            [$0.accessor, $0.role, "\($0.user ?? "?")(\($0.uid))", String($0.pid), $0.bound ? "process" : "-", $0.expiresAt, $0.state.rawValue, $0.node ?? ""]
        }
        Terminal.out(Table.render(header: ["ACCESSOR", "ROLE", "USER", "PID", "BOUND", "EXPIRES", "STATE", "NODE"], rows: rows))
    }
}

struct TokenRevoke: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke a token and its leases: by accessor (admin), or your own $MLCRED_TOKEN with --current.",
        discussion: """
            --current is idempotent: a token that was already revoked, or has expired, is
            reported as such and the command exits 0 (its leases were ended with it, or are
            ended by the daemon at expiry). A token the daemon does not know is an error.

            --json prints the daemon's answer for an accessor ({revoked, unconfirmed,
            still_valid}); for --current, {revoked, already_ended, unconfirmed, still_valid}
            with counts of tokens. Exit codes are the same as without --json.

            Example, after 'eval "$(mlcred env --role notebook)"': mlcred token revoke --current
            """)

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The token's accessor (from 'mlcred token list').")
    var accessor: String?
    /// Every token `mlcred env` printed for several roles, comma-joined.
    static let tokensVariable = "MLCRED_TOKENS"

    @Flag(help: "Revoke the token in $MLCRED_TOKEN, or every one in $MLCRED_TOKENS (any user, for their own tokens).")
    var current = false
    @OptionGroup var output: OutputOptions

    /// `--current --json`: how many of the tokens this call revoked and how many had ended before.
    struct CurrentRevocation: Encodable {
        var revoked = 0
        var alreadyEnded = 0
        var unconfirmed: [LeaseInfo] = []
        var stillValid: [LeaseInfo] = []

        enum CodingKeys: String, CodingKey {
            case revoked, unconfirmed
            case alreadyEnded = "already_ended"
            case stillValid = "still_valid"
        }
    }

    func validate() throws {
        guard (accessor == nil) == current else { throw ValidationError("give an accessor or --current") }
    }

    func run() throws {
        if current { return try revokeCurrent() }
        guard let accessor else { return }
        let answer: RevocationResponse<String> = try connection.client().call(
            "POST", "/v1/tokens/\(try PathName.check(accessor, what: "accessor"))/revoke", body: Optional<String>.none)
        if output.json { return try Terminal.printJSON(answer) }
        Terminal.out("revoked token \(accessor)\n")
        RevocationWarnings.print(unconfirmed: answer.unconfirmed, stillValid: answer.stillValid)
    }

    private func revokeCurrent() throws {
        // `mlcred env` with several roles sets MLCRED_TOKENS: every one of them.
        let tokens = Environment.value(Self.tokensVariable).map { $0.split(separator: ",").map(String.init) }
            ?? Environment.value("MLCRED_TOKEN").map { [$0] } ?? []
        guard !tokens.isEmpty else {
            throw CLIError("MLCRED_TOKEN is not set", hint: "run it where 'mlcred env' was evaluated", status: .usage)
        }
        let client = try connection.client()
        var outcome = CurrentRevocation()
        var endedBefore: [String] = []
        for token in tokens {
            do {
                let answer: RevocationResponse<Bool> = try client.call("POST", "/v1/tokens/revoke", body: Optional<String>.none, bearer: token)
                outcome.revoked += 1
                outcome.unconfirmed += answer.unconfirmed
                outcome.stillValid += answer.stillValid
            } catch let error as ClientError {
                // The goal of --current, a token that no longer works, already holds: say so, exit 0.
                guard let ended = Self.alreadyEnded(error) else { throw error }
                outcome.alreadyEnded += 1
                endedBefore.append(ended)
            }
        }
        if output.json { return try Terminal.printJSON(outcome) }
        RevocationWarnings.print(unconfirmed: outcome.unconfirmed, stillValid: outcome.stillValid)
        let one = tokens.count == 1
        if outcome.revoked > 0 {
            Terminal.out(one ? "revoked the current token and its leases\n"
                : outcome.revoked == tokens.count ? "revoked the \(tokens.count) current tokens and their leases\n"
                : "revoked \(outcome.revoked) of the \(tokens.count) current tokens and their leases\n")
        }
        for ended in Set(endedBefore).sorted() {
            let count = endedBefore.filter { $0 == ended }.count
            Terminal.out(one ? "the current token was already \(ended): nothing to revoke\n"
                : "\(count) of the \(tokens.count) current tokens \(count == 1 ? "was" : "were") already \(ended): nothing to revoke\n")
        }
    }

    /// "revoked" or "expired" when `error` says the token ended before this call, else nil.
    static func alreadyEnded(_ error: ClientError) -> String? {
        let reason: APIErrorReason?
        switch error {
        case .api(_, _, let found, _), .apiDetailed(_, _, let found, _, _): reason = found
        default: return nil
        }
        switch reason {
        case .tokenRevoked: return "revoked"
        case .tokenExpired: return "expired (the daemon ends its leases)"
        default: return nil
        }
    }
}
