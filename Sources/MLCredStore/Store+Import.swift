import GRDB
import MLCredAPI

/// What `mlcredd --import-sqlite` copied, checked on both sides.
public struct ImportSummary: Sendable {
    public var rows: [String: Int]
    public var auditHead: AuditVerifyResponse.Head?
}

extension Store {
    /// Tables copied from a single node's SQLite store into a fleet store, in dependency order.
    static let importedTables = ["meta", "secrets", "emergencies", "tokens", "leases", "audit"]
    /// Tables whose rows name their node.
    static let nodeTables: Set<String> = ["tokens", "leases", "audit"]

    /// Moving up (SPEC §12, issue 12): copies a single node's SQLite state (`path`, opened read
    /// only and never changed) into this shared store as node `self.node`: the vault's metadata
    /// and wrapped keys, secrets (ciphertext), tokens (keyed hashes), leases, emergencies and the
    /// audit chain as this node's chain (same seq, prev and MAC: the MAC does not cover the node).
    /// One transaction: all or nothing. Refused when the store already holds a vault or a chain
    /// for this node. Checked on both sides afterwards: row counts, and the chain's links
    /// (gap-free sequence, each `prev` equal to the previous MAC, same head); the MACs themselves
    /// are checked by `audit verify` once a node unseals.
    public func importSQLite(path: String) throws -> ImportSummary {
        guard isShared else { throw StoreError.openFailed("--import-sqlite copies into a PostgreSQL store: give --store postgres://...") }
        var configuration = Configuration()
        configuration.readonly = true
        let source: DatabaseQueue
        do {
            source = try DatabaseQueue(path: path, configuration: configuration)
        } catch {
            throw StoreError.openFailed("cannot open \(path) read-only: \(error)")
        }
        let node = self.node
        // Read everything first (a single node's state: tokens and leases are purged after their
        // retention, the audit log is the largest part).
        var tables: [String: [SQLRow]] = [:]
        do {
            try source.read { db in
                let session = SQLiteSession(db: db)
                let applied = try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations")
                guard applied.contains("v1-vault-secrets-audit") else {
                    throw StoreError.openFailed("\(path) is not an mlcred database")
                }
                let missing = StoreSchema.migrations.map(\.id).filter { !applied.contains($0) && $0 != "v9-fleet" }
                guard missing.isEmpty else {
                    throw StoreError.openFailed("\(path) was written by an older mlcredd (missing \(missing.joined(separator: ", "))): start that node once with this release, stop it, then import")
                }
                for table in Self.importedTables {
                    tables[table] = try session.fetchAll("SELECT * FROM \(table)", [])
                }
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError.openFailed("cannot read \(path): \(error)")
        }
        let sourceChain = try Self.chainLinks(tables["audit"] ?? [], what: path)
        guard (tables["meta"] ?? []).contains(where: { (try? $0.get("key") as String) == "vault.settings" }) else {
            throw StoreError.openFailed("\(path) holds no initialized vault: nothing to move")
        }
        try backend.setUp { session in
            guard try session.fetchScalar(Int.self, "SELECT COUNT(*) FROM meta WHERE key = 'vault.settings'") == 0 else {
                throw StoreError.openFailed("the fleet store already holds a vault: a node's SQLite state can only be moved into an empty store")
            }
            guard try session.fetchScalar(Int.self, "SELECT COUNT(*) FROM audit WHERE node = ?", node) == 0 else {
                throw StoreError.openFailed("the fleet store already holds an audit chain for node \(node)")
            }
            for table in Self.importedTables {
                for row in tables[table] ?? [] {
                    var names = row.columns.names.filter { $0 != "node" }
                    var values = names.map { row.value($0) }
                    if table == "meta", (try? row.get("key") as String) == Self.nodeMetaKey { continue }
                    if Self.nodeTables.contains(table) {
                        names.append("node")
                        values.append(.text(node))
                    }
                    let columns = names.map { "\"\($0)\"" }.joined(separator: ", ")
                    let marks = names.map { _ in "?" }.joined(separator: ", ")
                    try session.execute("INSERT INTO \(table) (\(columns)) VALUES (\(marks))", values)
                }
            }
        }
        // Checked on the store's side, after the commit.
        var copied: [String: Int] = [:]
        let targetChain: [ChainLink] = try readNowAll { session in
            for table in Self.importedTables {
                let filter = Self.nodeTables.contains(table) ? " WHERE node = ?" : ""
                let arguments: [SQLValue] = Self.nodeTables.contains(table) ? [.text(node)] : []
                copied[table] = try session.fetchAll("SELECT COUNT(*) AS n FROM \(table)\(filter)", arguments).first.map { try $0.get("n") } ?? 0
            }
            return try Self.chainLinks(try session.fetchAll("SELECT seq, prev, mac FROM audit WHERE node = ? ORDER BY seq", [.text(node)]),
                                       what: "the fleet store")
        }
        for table in Self.importedTables {
            let expected = (tables[table] ?? []).count - (table == "meta" ? (tables["meta"] ?? []).filter { (try? $0.get("key") as String) == Self.nodeMetaKey }.count : 0)
            guard copied[table] == expected else {
                throw StoreError.database("after the copy, table \(table) holds \(copied[table] ?? 0) rows for node \(node), not \(expected)")
            }
        }
        guard targetChain == sourceChain else {
            throw StoreError.database("after the copy, node \(node)'s audit chain differs from \(path)'s")
        }
        copied["meta"] = (tables["meta"] ?? []).count
        return ImportSummary(rows: copied, auditHead: sourceChain.last.flatMap { link in link.mac.map { .init(seq: link.seq, mac: $0) } })
    }

    struct ChainLink: Equatable {
        var seq: Int64
        var prev: String?
        var mac: String?
    }

    /// The chain's links in order, checked without the key: a gap-free sequence from 1 and each
    /// `prev` the previous record's MAC (records awaiting their MAC may only end the chain).
    static func chainLinks(_ rows: [SQLRow], what: String) throws -> [ChainLink] {
        let links = try rows.map { ChainLink(seq: try $0.get("seq"), prev: try $0.get("prev"), mac: try $0.get("mac")) }.sorted { $0.seq < $1.seq }
        var previous: String? = AuditChain.genesis
        for (index, link) in links.enumerated() {
            guard link.seq == Int64(index) + 1 else {
                throw StoreError.database("\(what): audit record \(index + 1) is missing (next is \(link.seq))")
            }
            if let mac = link.mac {
                guard link.prev == previous else { throw StoreError.database("\(what): audit record \(link.seq) does not follow record \(link.seq - 1)") }
                previous = mac
            } else {
                previous = nil
            }
        }
        return links
    }

    /// Runs `body` on a reading connection, on this thread (offline commands).
    func readNowAll<T>(_ body: (any SQLSession) throws -> T) throws -> T {
        try backend.readNowBlocking(body)
    }
}
