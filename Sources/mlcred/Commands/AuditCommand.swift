import ArgumentParser
import MLCredAPI
import MLCredClient

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Read, verify and export the tamper-evident audit log (admin).",
        subcommands: [AuditShow.self, AuditVerify.self, AuditExport.self])
}

struct AuditShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Show audit records (the last 50 by default). Works sealed too.",
        discussion: """
            --since takes \(RelativeTime.accepted). With --since, every record of that
            window is shown, oldest first; when it holds more than --limit, its newest --limit
            records are, and a note on standard error says so.

            Examples:
              mlcred audit show --since 1h
              mlcred audit show --since yesterday --limit 200
              mlcred audit show --since 2026-11-26T00:00:00Z --json
            """)

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Only records at or after this time: 1h, 30m, 2d, today, yesterday, or RFC 3339 UTC (2026-11-26T17:00:00Z).")
    var since: String?
    @Option(help: "At most this many records (1-1000).")
    var limit: Int = 50
    @Option(help: "Only this node's records (a fleet, SPEC §12); all nodes by default.")
    var node: String?
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard (1...1000).contains(limit) else { throw ValidationError("--limit must be from 1 to 1000") }
        if let node, !NodeName.isValid(node) { throw ValidationError("--node: \(NodeName.requirement)") }
        if let since, RelativeTime.resolve(since, now: 0, localMidnight: { $0 }) == nil {
            throw ValidationError("--since takes \(RelativeTime.accepted); '\(since)' is none of them")
        }
    }

    func run() throws {
        let client = try connection.client()
        let nodeQuery = node.map { "&node=\($0)" } ?? ""
        var records: [AuditRecord]
        if let since {
            // An absolute time goes as typed (all its precision); a relative one as resolved here.
            let absolute = Timestamp.parse(since)
            let instant = absolute ?? RelativeTime.resolve(since, now: RelativeTime.now()) ?? 0
            let sinceText = absolute == nil ? Timestamp.format(epochSeconds: instant) : since
            let window: AuditPage = try client.call("GET", "/v1/audit?limit=\(limit)&since=\(sinceText)\(nodeQuery)")
            records = window.records
            if records.count == limit {
                // The window holds more than --limit: show its newest records, as `journalctl
                // --since` and `git log --since -n` do. The last `limit` records overall are those,
                // since more than `limit` records are at or after `since`.
                let newest: AuditPage = try client.call("GET", "/v1/audit?limit=\(limit)\(nodeQuery)")
                records = newest.records.filter { Timestamp.parse($0.time).map { $0 >= instant } ?? true }
                Terminal.err("mlcred: more than \(limit) records since \(sinceText): showing the newest \(records.count)"
                             + " (--limit up to 1000, or 'mlcred audit export' for every record)\n")
            }
        } else {
            let page: AuditPage = try client.call("GET", "/v1/audit?limit=\(limit)\(nodeQuery)")
            records = page.records
        }
        if records.isEmpty, let node, since == nil {
            // An empty answer for a node name reads as "nothing happened": say the likelier cause.
            Terminal.err("mlcred: no audit records of node '\(node)' ('mlcred fleet status' lists the nodes; a single node is named by its --node, by default its host name)\n")
        }
        if output.json { return try Terminal.printJSON(records) }
        for record in records { Terminal.out(AuditFormat.line(record) + "\n") }
    }
}

struct AuditVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Recompute the MAC chain; exit 1 and name the first broken record on any edit, deletion or gap.",
        discussion: "Prints the head (seq, mac): compare it with a copy kept elsewhere to detect a cut-off tail. Needs the vault unsealed.")

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let result: AuditVerifyResponse = try connection.client().call("POST", "/v1/audit/verify")
        if output.json {
            try Terminal.printJSON(result)
        } else if result.chains.count > 1 {
            // A fleet: one chain per node, each with its head (SPEC §12).
            for chain in result.chains {
                let head = chain.head.map { "head seq \($0.seq) mac \($0.mac)" } ?? "empty"
                let verdict = chain.firstBroken.map { "BROKEN at record \($0.seq)" } ?? "OK"
                let pending = chain.pending > 0 ? "; \(Plural.count(Int(chain.pending), "record")) written while that node was sealed, chained at its unseal" : ""
                Terminal.out("node \(VisibleText.escaped(chain.node)): \(verdict): \(Plural.count(Int(chain.checked), "record")) verified; \(head)\(pending)\n")
            }
        } else if result.ok {
            let head = result.head.map { "head seq \($0.seq) mac \($0.mac)" } ?? "empty log"
            Terminal.out("audit chain OK: \(result.checked) record\(result.checked == 1 ? "" : "s"); \(head)\n")
        }
        if let broken = result.firstBroken {
            let chain = result.chains.count > 1 ? broken.node.map { " of node \(VisibleText.escaped($0))" } ?? "" : ""
            throw CLIError("audit chain\(chain) BROKEN at record \(broken.seq): \(broken.reason)",
                           hint: "the records before it verified; keep the database for investigation")
        }
    }
}

struct AuditExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Write every audit record as JSON lines to standard output.")

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Only this node's chain (a fleet, SPEC §12); every node's by default, chain after chain.")
    var node: String?

    func validate() throws {
        if let node, !NodeName.isValid(node) { throw ValidationError("--node: \(NodeName.requirement)") }
    }

    func run() throws {
        let client = try connection.client()
        var after: Int64 = 0
        // Across nodes, the position is (node, seq): each chain whole, in order, one after the other.
        var afterNode: String? = node == nil ? "" : nil
        while true {
            var path = "/v1/audit?after=\(after)&limit=1000"
            if let node { path += "&node=\(node)" }
            if let afterNode { path += "&after_node=\(afterNode)" }
            let page: AuditPage = try client.call("GET", path)
            for record in page.records {
                Terminal.out(String(decoding: try APIJSON.encode(record), as: UTF8.self) + "\n")
                after = record.seq
                // An older daemon's records name no node: it has one chain, paged by seq alone.
                if node == nil { afterNode = record.node }
            }
            if page.records.count < 1000 { break }
        }
    }
}

enum AuditFormat {
    static func line(_ record: AuditRecord) -> String {
        var parts = [String(record.seq), record.time, record.result.rawValue, record.action,
                     "\(record.principal.user ?? "?")(\(record.principal.uid))", "pid=\(record.principal.pid)"]
        if let role = record.role { parts.append("role=\(role)") }
        if let grant = record.grant { parts.append("grant=\(grant)") }
        if let accessor = record.accessor { parts.append("accessor=\(accessor)") }
        if let node = record.node { parts.append("node=\(node)") }
        if let reason = record.reason { parts.append("- \(reason)") }
        // Every field may hold what a caller sent: printed, never obeyed by the terminal.
        return parts.map(VisibleText.escaped).joined(separator: " ")
    }
}
