import ArgumentParser
import MLCredAPI
import MLCredClient

struct LeaseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lease", abstract: "List and revoke leases (admin).", subcommands: [LeaseList.self, LeaseRevoke.self])
}

struct LeaseList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List live leases and failed revocations (admin).",
        discussion: """
            By default: what is live and what could not be revoked yet (state revoke_failed, \
            retried by the daemon). --ended adds ended credentials that stay valid at their \
            provider until they expire (STS sessions and JWTs cannot be recalled); --all lists \
            every lease kept.
            """)

    @OptionGroup var connection: ConnectionOptions
    @Flag(help: "Also list ended credentials still valid at their provider.")
    var ended = false
    @Flag(help: "List every lease kept, ended ones included.")
    var all = false
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if ended && all { throw ValidationError("give --ended or --all, not both (--all includes what --ended adds)") }
    }

    func run() throws {
        let scope = all ? ["all=true"] : ended ? ["ended=true"] : []
        let client = try connection.client()
        // Page by page, so the daemon never holds the whole list's answer at once.
        let leases = try ListPage.collect { page in
            let list: LeaseListResponse = try client.call("GET", "/v1/leases" + page.query(scope))
            return (list.leases, list.next)
        }
        if output.json { return try Terminal.printJSON(leases) }
        let rows = leases.map { [$0.id, $0.accessor, $0.role, $0.grant, $0.type, $0.providerID, $0.expiresAt, $0.state.rawValue, $0.lastError ?? "", $0.node ?? ""] }
        Terminal.out(Table.render(header: ["ID", "ACCESSOR", "ROLE", "GRANT", "TYPE", "PROVIDER_ID", "EXPIRES", "STATE", "LAST_ERROR", "NODE"], rows: rows))
    }
}

struct LeaseRevoke: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke", abstract: "Revoke one lease (admin).",
        discussion: """
            --json prints the daemon's answer: {revoked, unconfirmed, still_valid}; a lease its
            provider has not confirmed yet is in unconfirmed (the daemon retries it). Exit
            codes are the same as without --json.
            """)

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The lease id.")
    var id: String
    @OptionGroup var output: OutputOptions

    func run() throws {
        let answer: RevocationResponse<String> = try connection.client().call(
            "POST", "/v1/leases/\(try PathName.check(id, what: "lease id"))/revoke", body: Optional<String>.none)
        if output.json { return try Terminal.printJSON(answer) }
        Terminal.out(answer.unconfirmed.isEmpty ? "revoked lease \(id)\n" : "ended lease \(id) here\n")
        RevocationWarnings.print(unconfirmed: answer.unconfirmed, stillValid: answer.stillValid)
    }
}
