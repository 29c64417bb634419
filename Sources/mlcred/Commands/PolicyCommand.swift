import ArgumentParser
import MLCredAPI
import MLCredClient

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
        commandName: "reload", abstract: "Reload the policy directory; on any error the last good set stays in force (exit 1).",
        discussion: """
            --json prints {ok, roles, directory, digest, errors}: on success the number of roles
            loaded and the new digest; on failure ok is false, digest and roles are null,
            errors holds every FILE:LINE diagnostic and the command exits 1, as the text form
            does.
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    /// `--json`: the outcome, in the shape of `policy validate --json` plus where the set came from.
    struct Report: Encodable {
        var ok: Bool
        var roles: Int?
        var directory: String?
        var digest: String?
        var message: String?
        var errors: [String]

        enum CodingKeys: String, CodingKey { case ok, roles, directory, digest, message, errors }

        /// Every key is always present (null when unknown), so tools can rely on them.
        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(ok, forKey: .ok)
            try container.encode(roles, forKey: .roles)
            try container.encode(directory, forKey: .directory)
            try container.encode(digest, forKey: .digest)
            try container.encode(message, forKey: .message)
            try container.encode(errors, forKey: .errors)
        }
    }

    func run() throws {
        let client = try connection.client()
        let list: PolicyListResponse
        do {
            list = try client.call("POST", "/v1/policies/reload")
        } catch ClientError.apiDetailed(_, _, _, let message, let details) {
            if output.json {
                // The directory the refused set was read from: the one the set in force came from.
                let directory = (try? client.call("GET", "/v1/policies") as PolicyListResponse)?.directory
                try Terminal.printJSON(Report(ok: false, directory: directory, message: message, errors: details))
                throw ExitCode(ExitStatus.error.rawValue)
            }
            for line in details { Terminal.err(line + "\n") }
            throw CLIError(message, hint: "fix the files above and reload again")
        }
        if output.json {
            return try Terminal.printJSON(Report(ok: true, roles: list.roles.count, directory: list.directory, digest: list.digest, errors: []))
        }
        let count = list.roles.count
        Terminal.out("reloaded \(count) role\(count == 1 ? "" : "s") from \(list.directory) (digest \(list.digest))\n")
    }
}
