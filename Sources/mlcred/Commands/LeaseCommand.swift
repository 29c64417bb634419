import ArgumentParser
import MLCredAPI
import MLCredClient

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
