import ArgumentParser
import MLCredAPI
import MLCredClient

struct FleetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet", abstract: "The nodes sharing this daemon's store (admin; SPEC §12).",
        subcommands: [FleetStatus.self, FleetForget.self])
}

struct FleetStatus: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Every node's row: last seen, sealed, environment, version, policy digest; policy drift flagged.",
        discussion: """
            A node silent for longer than its --node-timeout is marked SILENT: the live, unsealed nodes
            revoke its leases. A node retired for good stays listed until 'mlcred fleet forget'. Nodes of one environment that run different policy sets are marked DRIFT.
            Exits 0 whatever the fleet's state (use --json to act on it in scripts).
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let status: FleetStatusResponse = try connection.client().call("GET", "/v1/fleet")
        if output.json { return try Terminal.printJSON(status) }
        let rows = status.nodes.map { node -> [String] in
            var flags: [String] = []
            if node.answering { flags.append("this node") }
            if node.silent { flags.append("SILENT") }
            if node.drift { flags.append("DRIFT") }
            return [node.name, node.lastSeen, String(format1(node.silentFor)) + "s", node.sealed ? "sealed" : "unsealed",
                    node.environment + (node.phi ? " (phi)" : ""), node.version, node.policyDigest, String(node.tokens), String(node.leases),
                    flags.joined(separator: ", ")]
        }
        Terminal.out(Table.render(header: ["NODE", "LAST_SEEN", "SILENT_FOR", "VAULT", "ENVIRONMENT", "VERSION", "POLICY_DIGEST", "TOKENS", "LEASES", ""],
                                  rows: rows.map { $0.map(VisibleText.escaped) }))
        for line in status.drift { Terminal.out("drift: \(VisibleText.escaped(line))\n") }
        if status.store == .sqlite {
            Terminal.out("(a single node: this daemon's store is SQLite; see docs/fleet.md to share a PostgreSQL store)\n")
        }
    }

    private func format1(_ value: Double) -> String {
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(abs(tenths % 10))"
    }
}

struct FleetForget: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forget",
        abstract: "Remove a node retired for good from the fleet's list (admin).",
        discussion: """
            The node must be silent for longer than its --node-timeout, and a live, unsealed node
            must have taken over its leases (fleet status shows LEASES 0 for it). Its tokens still
            live are revoked: they worked only on that node. Its audit chain stays: audit verify
            checks it and audit show --node shows it. A daemon started again under that name
            writes its row again. Refused for the node that answers (ask another node) and
            for a live node. Audited as fleet.forget.
            --json prints the daemon's answer: {node, revoked_tokens}.
            """)

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The node's name, as fleet status lists it.")
    var node: String
    @OptionGroup var output: OutputOptions

    func run() throws {
        let answer: FleetForgetResponse = try connection.client().call(
            "DELETE", "/v1/fleet/nodes/\(try PathName.check(node, what: "node name"))", body: Optional<String>.none)
        if output.json { return try Terminal.printJSON(answer) }
        Terminal.out("forgot node \(VisibleText.escaped(answer.node)); revoked \(answer.revokedTokens) live token\(answer.revokedTokens == 1 ? "" : "s") of it; its audit chain stays\n")
    }
}
