import GRDB
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

    static func mac(of row: Row, prev: String, key: SecureBytes) throws -> String {
        let bytes = message(
            seq: row["seq"], time: row["time"], principalJSON: row["principal"], action: row["action"],
            role: row["role"], grant: row["grant_name"], result: row["result"], reason: row["reason"],
            accessor: row["accessor"], prev: prev)
        return Hex.encode(try MAC.blake2b(bytes, key: key))
    }
}

extension StoreConnection {
    /// Appends one audit record in the current transaction, MAC'd when the vault is unsealed.
    /// Throws if it cannot be written; callers let that fail their whole request (fail closed).
    @discardableResult
    public func appendAudit(_ event: AuditEvent, time: Double) throws -> Int64 {
        let head = try Row.fetchOne(try db.cachedStatement(sql: "SELECT seq, mac FROM audit ORDER BY seq DESC LIMIT 1"))
        let seq: Int64 = (head?["seq"] as Int64? ?? 0) + 1
        let principalJSON = event.principalJSON
        let timeText = Timestamp.format(epochSeconds: time)
        var prev: String?
        var mac: String?
        if let key = auditKey?.key {
            // A MAC'd record may only follow a MAC'd one; unseal chains pending records first.
            let previous: String? = head == nil ? AuditChain.genesis : head?["mac"]
            if let previous {
                prev = previous
                mac = Hex.encode(try MAC.blake2b(AuditChain.message(
                    seq: seq, time: timeText, principalJSON: principalJSON, action: event.action.rawValue, role: event.role,
                    grant: event.grant, result: event.result.rawValue, reason: event.reason, accessor: event.accessor,
                    prev: previous), key: key))
            }
        }
        try db.cachedStatement(sql: """
            INSERT INTO audit(seq, time, principal, action, role, grant_name, result, reason, accessor, prev, mac)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """).execute(arguments: [seq, timeText, principalJSON, event.action.rawValue, event.role, event.grant, event.result.rawValue,
                                     event.reason, event.accessor, prev, mac])
        return seq
    }

    /// Chains up to `limit` of the records still waiting for a MAC (written while sealed), in
    /// order, with `key` (not necessarily installed yet). Returns how many were chained: fewer than
    /// `limit` means none is left. Unseal calls it in batches, one transaction each, through a
    /// cursor: a flood of refusals while sealed costs neither one huge transaction nor memory.
    @discardableResult
    public func chainPendingAudit(key explicitKey: SecureBytes? = nil, limit: Int = .max) throws -> Int {
        guard let key = explicitKey ?? auditKey?.key else { return 0 }
        guard let firstPending = try Int64.fetchOne(db.cachedStatement(sql: "SELECT MIN(seq) FROM audit WHERE mac IS NULL")) else { return 0 }
        var prev = try String.fetchOne(db.cachedStatement(sql: "SELECT mac FROM audit WHERE seq = ?"), arguments: [firstPending - 1])
            ?? AuditChain.genesis
        let update = try db.cachedStatement(sql: "UPDATE audit SET prev = ?, mac = ? WHERE seq = ?")
        let rows = try Row.fetchCursor(db.cachedStatement(sql: "SELECT * FROM audit WHERE seq >= ? ORDER BY seq LIMIT ?"),
                                       arguments: [firstPending, Int64(min(limit, Int(Int64.max)))])
        var chained = 0
        var updates: [(String, String, Int64)] = []
        while let row = try rows.next() {
            let mac = try AuditChain.mac(of: row, prev: prev, key: key)
            updates.append((prev, mac, row["seq"]))
            prev = mac
            chained += 1
        }
        for (previous, mac, seq) in updates { try update.execute(arguments: [previous, mac, seq]) }
        return chained
    }

    /// Audit records in `seq` order: after `afterSeq`, at or after `since` (epoch seconds), at most
    /// `limit`; with neither bound, the last `limit` records.
    public func auditRecords(afterSeq: Int64?, since: Double?, limit: Int) throws -> [AuditRecord] {
        let rows: [Row]
        if let afterSeq {
            rows = try Row.fetchAll(db, sql: "SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", arguments: [afterSeq, limit])
        } else if let since {
            rows = try Row.fetchAll(db, sql: "SELECT * FROM audit WHERE time >= ? ORDER BY seq LIMIT ?",
                                    arguments: [Timestamp.format(epochSeconds: since), limit])
        } else {
            rows = try Row.fetchAll(db, sql: "SELECT * FROM (SELECT * FROM audit ORDER BY seq DESC LIMIT ?) ORDER BY seq", arguments: [limit])
        }
        return rows.map(Self.auditRecord)
    }

    static func auditRecord(_ row: Row) -> AuditRecord {
        let principalText: String = row["principal"]
        let principal = (try? APIJSON.decode(Principal.self, from: Array(principalText.utf8)))
            ?? Principal(uid: UInt32.max, gid: UInt32.max, user: "<unreadable>", pid: 0, groups: [], unit: nil)
        return AuditRecord(
            seq: row["seq"], time: row["time"], principal: principal, action: row["action"], role: row["role"],
            grant: row["grant_name"], result: AuditResult(rawValue: row["result"]) ?? .error, reason: row["reason"],
            accessor: row["accessor"], prev: row["prev"], mac: row["mac"])
    }

    /// Recomputes the whole chain with `key`: sequence without gaps from 1, each `prev` equal to
    /// the previous MAC, each MAC matching its content. Names the first broken record.
    public func verifyAudit(key: SecureBytes) throws -> AuditVerifyResponse {
        var expectedSeq: Int64 = 1
        var prev = AuditChain.genesis
        var broken: AuditVerifyResponse.Broken?
        var head: AuditVerifyResponse.Head?
        let cursor = try Row.fetchCursor(db, sql: "SELECT * FROM audit ORDER BY seq")
        while let row = try cursor.next() {
            let seq: Int64 = row["seq"]
            if seq != expectedSeq {
                broken = .init(seq: expectedSeq, reason: "record \(expectedSeq) is missing (next record is \(seq)): records were deleted")
                break
            }
            guard let storedMac: String = row["mac"] else {
                broken = .init(seq: seq, reason: "record \(seq) has no MAC: it was written while sealed and never chained")
                break
            }
            let storedPrev: String? = row["prev"]
            if storedPrev != prev {
                broken = .init(seq: seq, reason: "record \(seq) does not follow record \(seq - 1): the chain was cut or reordered")
                break
            }
            let mac = try AuditChain.mac(of: row, prev: prev, key: key)
            if !Sodium.constantTimeEqual(Array(mac.utf8), Array(storedMac.utf8)) {
                broken = .init(seq: seq, reason: "record \(seq) does not match its MAC: it was edited")
                break
            }
            head = .init(seq: seq, mac: storedMac)
            prev = storedMac
            expectedSeq += 1
        }
        return AuditVerifyResponse(ok: broken == nil, checked: expectedSeq - 1, head: head, firstBroken: broken)
    }
}
