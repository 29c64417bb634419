import ArgumentParser
import MLCredAPI
import MLCredClient

struct EmergencyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emergency",
        abstract: "Break-glass access to roles marked emergency = true (admin; two admins to open).",
        discussion: """
            A role with emergency = true issues nothing until two different admins run
            'mlcred emergency open' for it within 10 minutes of each other. It then stays open
            for --for (default and at most 1h); every token and credential issued under it is
            audited with the reasons, and no token outlives its end. 'close' ends it early and
            revokes its live tokens. 'mlcred status' shows an open emergency.
            """,
        subcommands: [EmergencyOpen.self, EmergencyClose.self, EmergencyList.self])
}

struct EmergencyOpen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "open",
        abstract: "Ask for an emergency role, or open it as the second admin.",
        discussion: "Example: mlcred emergency open --role phi-breakglass --reason 'INC-4711: restore the patient index' --for 30m")

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "The emergency role.")
    var role: String
    @Option(help: "Why access is needed (one line, recorded in every audit record under it).")
    var reason: String
    @Option(name: .customLong("for"), help: "How long it stays open once confirmed (default and at most 1h).")
    var duration: String?
    @OptionGroup var output: OutputOptions

    func validate() throws {
        try TTLOption.check(duration)
    }

    func run() throws {
        let info: EmergencyInfo = try connection.client().call(
            "POST", "/v1/emergency/open", body: EmergencyOpenRequest(role: role, reason: reason, duration: duration))
        if output.json { return try Terminal.printJSON(info) }
        switch info.state {
        case .pending:
            Terminal.out("asked for emergency role '\(info.role)': a second, different admin must run the same command before \(info.until)\n")
        case .open:
            Terminal.out("emergency role '\(info.role)' is OPEN until \(info.until) (opened by uids \(info.openedBy.map(String.init).joined(separator: " and ")))\n")
        }
    }
}

struct EmergencyClose: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "close", abstract: "Close an emergency role (asked for or open) and revoke its live tokens.")

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "The emergency role.")
    var role: String
    @OptionGroup var output: OutputOptions

    func run() throws {
        let answer: EmergencyCloseResponse = try connection.client().call("POST", "/v1/emergency/close", body: EmergencyCloseRequest(role: role))
        if output.json { return try Terminal.printJSON(answer) }
        Terminal.out("closed emergency role '\(role)'; \(Plural.count(answer.revokedTokens, "live token")) revoked\n")
    }
}

struct EmergencyList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Emergency roles asked for or open now.")

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let list: EmergencyListResponse = try connection.client().call("GET", "/v1/emergency")
        if output.json { return try Terminal.printJSON(list) }
        if list.emergencies.isEmpty { return Terminal.out("no emergency role is asked for or open\n") }
        for item in list.emergencies {
            Terminal.out("\(VisibleText.escaped(item.role))  \(item.state.rawValue)  until \(item.until)  by uids \(item.openedBy.map(String.init).joined(separator: ","))  \(VisibleText.escaped(item.reason))\n")
        }
    }
}
