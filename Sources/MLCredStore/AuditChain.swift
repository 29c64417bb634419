import MLCredAPI
import MLCredCrypto

/// What a caller supplies for a new audit record; the chain adds `seq`, `prev` and `mac`.
public struct AuditEvent: Sendable {
    public var principal: Principal
    public var action: AuditAction
    public var role: String?
    public var grant: String?
    public var result: AuditResult
    public var reason: String?
    public var accessor: String?
    /// The principal as stored, encoded once when the event is made (off the writer thread).
    public let principalJSON: String

    public init(principal: Principal, action: AuditAction, role: String? = nil, grant: String? = nil,
                result: AuditResult, reason: String? = nil, accessor: String? = nil) {
        self.principal = principal
        principalJSON = principal.json
        self.action = action
        self.role = role.map { Self.bounded($0, to: Self.maximumNameBytes) }
        self.grant = grant.map { Self.bounded($0, to: Self.maximumNameBytes) }
        self.result = result
        self.reason = reason.map { Self.bounded($0, to: Self.maximumReasonBytes) }
        self.accessor = accessor.map { Self.bounded($0, to: Self.maximumNameBytes) }
    }

    /// The longest `reason` kept, in UTF-8 bytes. Threat: free text that carries a caller's
    /// input (a provider's error about it, a name) makes every record of a flood large.
    public static let maximumReasonBytes = 1024
    /// The longest role, grant or accessor kept (names are checked at 128 before they get here).
    public static let maximumNameBytes = 256

    /// `text` cut at a character boundary to at most `limit` UTF-8 bytes, marked with `…` when cut.
    static func bounded(_ text: String, to limit: Int) -> String {
        guard text.utf8.count > limit else { return text }
        var kept = ""
        var used = 0
        let marker = "…"
        for character in text {
            let size = character.utf8.count
            if used + size > limit - marker.utf8.count { break }
            kept.append(character)
            used += size
        }
        return kept + marker
    }
}

/// The audit table as a MAC chain: record n's MAC covers its content and record n-1's MAC.
/// Records written while the vault is sealed carry no MAC yet; the next unseal chains them in
/// order, before anything else is written.
enum AuditChain {
    /// The `prev` of record 1.
    static let genesis = String(repeating: "0", count: 64)

    static func message(seq: Int64, time: String, principalJSON: String, action: String, role: String?, grant: String?,
                        result: String, reason: String?, accessor: String?, prev: String) -> [UInt8] {
        // Length-prefixed fields: no value can be shifted into its neighbour.
        var out: [UInt8] = []
        func field(_ text: String?) {
            guard let text else {
                out.append(contentsOf: [0xFF, 0xFF, 0xFF, 0xFF])
                return
            }
            let bytes = Array(text.utf8)
            let n = UInt32(bytes.count)
            out.append(contentsOf: [UInt8(n >> 24), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)])
            out.append(contentsOf: bytes)
        }
        field("mlcred-audit-v1")
        field(String(seq))
        field(time)
        field(principalJSON)
        field(action)
        field(role)
        field(grant)
        field(result)
        field(reason)
        field(accessor)
        field(prev)
        return out
    }

    static func mac(of row: SQLRow, prev: String, key: SecureBytes) throws -> String {
        let bytes = message(
            seq: try row.get("seq"), time: try row.get("time"), principalJSON: try row.get("principal"), action: try row.get("action"),
            role: try row.get("role"), grant: try row.get("grant_name"), result: try row.get("result"), reason: try row.get("reason"),
            accessor: try row.get("accessor"), prev: prev)
        return Hex.encode(try MAC.blake2b(bytes, key: key))
    }
}

extension StoreConnection {
    static let auditInsert = SQLInsert("audit", ["seq", "time", "principal", "action", "role", "grant_name", "result", "reason", "accessor",
                                                 "prev", "mac", "node"])

    /// Appends one audit record to this node's chain in the current transaction, MAC'd when the
    /// vault is unsealed. Throws if it cannot be written; callers let that fail their whole
    /// request (fail closed). Each node has its own gap-free chain (SPEC §12); only this node's
    /// writer appends to it, one job at a time, so the head read here is the head.
    @discardableResult
    public func appendAudit(_ event: AuditEvent, time: Double) throws -> Int64 {
        var head = auditKey?.head
        if head == nil, let row = try session.fetchOne("SELECT seq, mac FROM audit WHERE node = ? ORDER BY seq DESC LIMIT 1", node) {
            head = AuditKeyHolder.Head(seq: try row.get("seq"), mac: try row.get("mac"))
        }
        let seq: Int64 = (head?.seq ?? 0) + 1
        let principalJSON = event.principalJSON
        let timeText = Timestamp.format(epochSeconds: time)
        var prev: String?
        var mac: String?
        if let key = auditKey?.key {
            // A MAC'd record may only follow a MAC'd one; unseal chains pending records first.
            let previous: String? = head == nil ? AuditChain.genesis : head?.mac
            if let previous {
                prev = previous
                mac = Hex.encode(try MAC.blake2b(AuditChain.message(
                    seq: seq, time: timeText, principalJSON: principalJSON, action: event.action.rawValue, role: event.role,
                    grant: event.grant, result: event.result.rawValue, reason: event.reason, accessor: event.accessor,
                    prev: previous), key: key))
            }
        }
        try session.insert(Self.auditInsert, seq, timeText, principalJSON, event.action.rawValue, event.role, event.grant, event.result.rawValue,
            event.reason, event.accessor, prev, mac, node)
        auditKey?.pendingHead = .init(seq: seq, mac: mac)
        return seq
    }

    /// Chains up to `limit` of this node's records still waiting for a MAC (written while sealed),
    /// in order, with `key` (not necessarily installed yet). Returns how many were chained: fewer
    /// than `limit` means none is left. Unseal calls it in batches, one transaction each: a flood
    /// of refusals while sealed costs neither one huge transaction nor memory.
    @discardableResult
    public func chainPendingAudit(key explicitKey: SecureBytes? = nil, limit: Int = .max) throws -> Int {
        guard let key = explicitKey ?? auditKey?.key else { return 0 }
        // The MACs of the head and records before it change here: read the head again afterwards.
        auditKey?.forgetHead()
        var chained = 0
        // Pages of at most 1,000 rows, so memory stays bounded whatever `limit` is.
        while chained < limit {
            guard let firstPending = try session.fetchScalar(Int64.self, "SELECT MIN(seq) FROM audit WHERE mac IS NULL AND node = ?", node) else {
                return chained
            }
            var prev = try session.fetchScalar(String.self, "SELECT mac FROM audit WHERE seq = ? AND node = ?", firstPending - 1, node)
                ?? AuditChain.genesis
            let rows = try session.fetchAll("SELECT * FROM audit WHERE seq >= ? AND node = ? ORDER BY seq LIMIT ?",
                                            firstPending, node, min(limit - chained, 1000))
            if rows.isEmpty { return chained }
            for row in rows {
                let mac = try AuditChain.mac(of: row, prev: prev, key: key)
                try session.execute("UPDATE audit SET prev = ?, mac = ? WHERE seq = ? AND node = ?", prev, mac, try row.get("seq") as Int64, node)
                prev = mac
                chained += 1
            }
        }
        return chained
    }

    /// Audit records, of one node or of all. With `afterSeq` alone: in `seq` order after it (of
    /// `node`'s chain, or of the one chain of a SQLite store). With `afterNode` too: after that
    /// position in (node, seq) order (export walks every chain of a fleet that way). With `since` (epoch seconds): records at or after it; with neither bound, the last
    /// `limit` records (by time across nodes).
    public func auditRecords(node wanted: String? = nil, afterNode: String? = nil, afterSeq: Int64?, since: Double?,
                             limit: Int) throws -> [AuditRecord] {
        let rows: [SQLRow]
        let nodeFilter = wanted == nil ? "" : " AND node = ?"
        let nodeArgument: [SQLValue] = wanted.map { [.text($0)] } ?? []
        // One chain: its own order. Several: time, then node and seq (stable for equal times).
        let order = wanted != nil || dialect == .sqlite ? "seq" : "time, node, seq"
        let reverse = wanted != nil || dialect == .sqlite ? "seq DESC" : "time DESC, node DESC, seq DESC"
        if let afterSeq, afterNode == nil {
            rows = try session.fetchAll("SELECT * FROM audit WHERE seq > ?\(nodeFilter) ORDER BY seq LIMIT ?",
                                        [.int(afterSeq)] + nodeArgument + [.int(Int64(limit))])
        } else if let afterSeq, let afterNode {
            rows = try session.fetchAll("SELECT * FROM audit WHERE node > ? OR (node = ? AND seq > ?) ORDER BY node, seq LIMIT ?",
                                        afterNode, afterNode, afterSeq, limit)
        } else if let since {
            rows = try session.fetchAll("SELECT * FROM audit WHERE time >= ?\(nodeFilter) ORDER BY \(order) LIMIT ?",
                                        [.text(Timestamp.format(epochSeconds: since))] + nodeArgument + [.int(Int64(limit))])
        } else {
            rows = try session.fetchAll("SELECT * FROM (SELECT * FROM audit WHERE 1 = 1\(nodeFilter) ORDER BY \(reverse) LIMIT ?) t ORDER BY \(order)",
                                        nodeArgument + [.int(Int64(limit))])
        }
        return try rows.map(Self.auditRecord)
    }

    static func auditRecord(_ row: SQLRow) throws -> AuditRecord {
        let principalText: String = try row.get("principal")
        let principal = (try? APIJSON.decode(Principal.self, from: Array(principalText.utf8)))
            ?? Principal(uid: UInt32.max, gid: UInt32.max, user: "<unreadable>", pid: 0, groups: [], unit: nil)
        return AuditRecord(
            seq: try row.get("seq"), time: try row.get("time"), principal: principal, action: try row.get("action"), role: try row.get("role"),
            grant: try row.get("grant_name"), result: AuditResult(rawValue: try row.get("result")) ?? .error, reason: try row.get("reason"),
            accessor: try row.get("accessor"), prev: try row.get("prev"), mac: try row.get("mac"),
            node: try row.get("node"))
    }

    /// The nodes that have an audit chain in the store, by name.
    public func auditNodes() throws -> [String] {
        try session.fetchColumn(String.self, "SELECT DISTINCT node FROM audit ORDER BY node")
    }

    /// Recomputes every node's chain with `key` (SPEC §12: one chain per node): sequence without
    /// gaps from 1, each `prev` equal to the previous MAC, each MAC matching its content. Names
    /// the node and the first broken record of each broken chain.
    public func verifyAudit(key: SecureBytes) throws -> AuditVerifyResponse {
        var chains: [AuditVerifyResponse.Chain] = []
        for chainNode in try auditNodes() {
            chains.append(try verifyChain(of: chainNode, key: key))
        }
        return AuditVerifyResponse(chains: chains, localNode: node)
    }

    /// Verifies one node's chain, reading it a page at a time.
    func verifyChain(of chainNode: String, key: SecureBytes) throws -> AuditVerifyResponse.Chain {
        var expectedSeq: Int64 = 1
        var prev = AuditChain.genesis
        var broken: AuditVerifyResponse.Broken?
        var head: AuditVerifyResponse.Head?
        var pending: Int64 = 0
        pages: while broken == nil {
            let rows = try session.fetchAll("SELECT * FROM audit WHERE node = ? AND seq >= ? ORDER BY seq LIMIT 1000", chainNode, expectedSeq)
            for row in rows {
                let seq: Int64 = try row.get("seq")
                if seq != expectedSeq {
                    broken = .init(seq: expectedSeq, reason: "record \(expectedSeq) is missing (next record is \(seq)): records were deleted")
                    break pages
                }
                guard let storedMac: String = try row.get("mac") else {
                    // The tail its node wrote while sealed waits for that node's unseal (another
                    // node of a fleet may verify meanwhile). A MAC'd record after it is a break.
                    let later = try session.fetchScalar(Int64.self, "SELECT COUNT(*) FROM audit WHERE node = ? AND seq > ? AND mac IS NOT NULL",
                                                        chainNode, seq) ?? 0
                    if later == 0 && chainNode != node {
                        pending = (try session.fetchScalar(Int64.self, "SELECT COUNT(*) FROM audit WHERE node = ? AND seq >= ?", chainNode, seq)) ?? 0
                        break pages
                    }
                    broken = .init(seq: seq, reason: "record \(seq) has no MAC: it was written while sealed and never chained")
                    break pages
                }
                let storedPrev: String? = try row.get("prev")
                if storedPrev != prev {
                    broken = .init(seq: seq, reason: "record \(seq) does not follow record \(seq - 1): the chain was cut or reordered")
                    break pages
                }
                let mac = try AuditChain.mac(of: row, prev: prev, key: key)
                if !Sodium.constantTimeEqual(Array(mac.utf8), Array(storedMac.utf8)) {
                    broken = .init(seq: seq, reason: "record \(seq) does not match its MAC: it was edited")
                    break pages
                }
                head = .init(seq: seq, mac: storedMac)
                prev = storedMac
                expectedSeq += 1
            }
            if rows.count < 1000 { break }
        }
        return .init(node: chainNode, checked: expectedSeq - 1, head: head, firstBroken: broken, pending: pending)
    }
}
