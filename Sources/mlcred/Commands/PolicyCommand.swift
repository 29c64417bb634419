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
