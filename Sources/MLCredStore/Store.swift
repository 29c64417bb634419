import Dispatch
import GRDB
import MLCredAPI
import MLCredCrypto

/// Where the store lives (SPEC §12 `--store`): the node's own SQLite file, or a PostgreSQL
/// database shared by a fleet of nodes.
public enum StoreLocation: Sendable {
    case sqlite(path: String)
    case postgres(PostgresStoreConfiguration)
}

/// The daemon's store: migrations, one serial writer that commits queued writes in groups,
/// readers, and the audit key. The engine (SQLite or PostgreSQL) is behind `StoreBackend`;
/// the promise is the same on both: nothing is answered before the store committed it.
public final class Store: Sendable {
    /// File name of the SQLite database inside the state directory.
    public static let fileName = "mlcred.db"

    let backend: any StoreBackend
    /// The audit-chain key, present while the vault is unsealed; read and changed only by writer jobs.
    let auditKeyHolder: AuditKeyHolder
    /// The free-space reserve of the file system the state directory is on.
    public let reserve: FreeSpaceReserve
    /// The state directory (the SQLite database's directory; with PostgreSQL, the node's local files).
    public let directory: String
    /// This node's name (SPEC §12): on every token, lease and audit record it writes.
    public let node: String
    /// Whether other nodes share this store (PostgreSQL): tokens are then node-bound, and dead
    /// nodes' leases are taken over.
    public var isShared: Bool { backend.dialect == .postgres }
    /// Which engine it is.
    public var kind: StoreKind { isShared ? .postgres : .sqlite }

    /// Opens (creating if needed) the SQLite database at `path` and runs pending migrations.
    /// `reserve` sizes the free space kept for revocations and admin audit (SPEC §3 `--min-free`).
    public convenience init(path: String, reserve: FreeSpaceReserve.Size = .automatic, node: String = "local") throws {
        let directory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        try self.init(location: .sqlite(path: path), stateDirectory: directory.isEmpty ? "/" : directory, node: node, reserve: reserve)
    }

    /// Opens the store at `location` for node `node`, running pending migrations.
    /// `batchMode` (tests): how SQLite's writer runs a batch (PostgreSQL's is always optimistic).
    public init(location: StoreLocation, stateDirectory: String, node: String, reserve: FreeSpaceReserve.Size = .automatic,
                batchMode: BatchMode = .optimistic) throws {
        self.directory = stateDirectory
        self.node = node
        self.reserve = FreeSpaceReserve(directory: stateDirectory, size: reserve)
        switch location {
        case .sqlite(let path):
            let backend = try SQLiteBackend(path: path, batchMode: batchMode)
            self.backend = backend
            // A SQLite store belongs to exactly one daemon: whatever it was called before, every
            // row is this node's (a renamed host keeps its tokens, leases and chain).
            try backend.setUp { session in
                let connection = StoreConnection(session: session, auditKey: nil, node: node)
                guard try connection.meta(Self.nodeMetaKey) != node else { return }
                for table in ["tokens", "leases", "audit"] {
                    try session.execute("UPDATE \(table) SET node = ? WHERE node <> ?", node, node)
                }
                try connection.setMeta(Self.nodeMetaKey, node)
            }
        case .postgres(let configuration):
            backend = try PostgresBackend(configuration: configuration, node: node)
        }
        auditKeyHolder = AuditKeyHolder()
    }

    /// `meta` key naming the node a SQLite store's rows belong to.
    static let nodeMetaKey = "store.node"

    /// Queues `body` for the next group commit and calls `completion` once the group's
    /// transaction is durably committed (or failed), on the writer thread: keep it short, and
    /// hand the result to where it belongs (an event loop's promise, a continuation).
    /// `body` runs inside its own savepoint: if it throws, only its own changes are undone and
    /// only its caller sees the error.
    public func write<T: Sendable>(_ body: @escaping @Sendable (StoreConnection) throws -> T,
                                   completion: @escaping @Sendable (Result<T, Error>) -> Void) {
        let box = ResultBox<T>()
        let holder = auditKeyHolder
        let node = self.node
        // The writer's state before this job (the chain head, the audit key), restored when its
        // changes are rolled back: its savepoint alone, or a whole optimistic attempt, which then
        // runs again (a seal that removed the key in the first attempt must find it again, or
        // its record and those queued before it would be written without a MAC).
        let before = WriterStateBox()
        backend.writer.submit(StoreWriter.Job(
            run: { session in
                before.capture(holder)
                do {
                    box.value = try body(StoreConnection(session: session, auditKey: holder, node: node))
                } catch {
                    before.restore(holder)
                    throw error
                }
            },
            finish: { error in
                // Called on the writer thread once the batch's transaction ended, before the next
                // batch: committed, the heads the batch's jobs moved become the committed head;
                // on any failure the head is read again from the store (always safe).
                holder.settle(committed: error == nil)
                if let error {
                    completion(.failure(error))
                } else if let value = box.value {
                    completion(.success(value))
                } else {
                    completion(.failure(StoreError.database("write produced no result")))
                }
            },
            undo: { before.restore(holder) }))
    }

    /// Runs `body` in the next group commit (see `write(_:completion:)`) and returns once the
    /// group's transaction is durably committed. The caller resumes on its own executor.
    public func write<T: Sendable>(_ body: @escaping @Sendable (StoreConnection) throws -> T) async throws -> T {
        try await withUnsafeThrowingContinuation { continuation in
            write(body) { continuation.resume(with: $0) }
        }
    }

    /// Group commits so far (see `CommitStatistics`).
    public var commitStatistics: CommitStatistics {
        let writer = backend.writer
        return CommitStatistics(transactions: writer.transactions.load(ordering: .relaxed), writes: writer.jobs.load(ordering: .relaxed),
                                busySeconds: Double(writer.busyNanoseconds.load(ordering: .relaxed)) / 1e9,
                                commitSeconds: Double(writer.commitNanoseconds.load(ordering: .relaxed)) / 1e9)
    }

    /// Runs `body` on a read-only connection.
    public func read<T: Sendable>(_ body: @escaping @Sendable (StoreConnection) throws -> T) async throws -> T {
        let node = self.node
        return try await backend.read { session in try body(StoreConnection(session: session, auditKey: nil, node: node)) }
    }

    /// Runs `body` on a read-only connection on the calling thread, which it holds: tens of
    /// microseconds in SQLite's WAL mode, a network round trip with PostgreSQL. Not on an event
    /// loop (requests use `pointRead`), not for scans.
    public func readNow<T>(_ body: (StoreConnection) throws -> T) throws -> T {
        try backend.readNow { session in try body(StoreConnection(session: session, auditKey: nil, node: node)) }
    }

    /// A point lookup for a request (a token by hash, a secret by name, an emergency): on the
    /// calling thread with SQLite (see `readNow`), on a reader thread with PostgreSQL, where it is
    /// a network round trip that must not hold the event loop the request runs on.
    /// `body` runs one statement: on SQLite it gets no transaction around it (see
    /// `SQLiteBackend.pointRead`), so two statements could see two states of the store.
    public func pointRead<T: Sendable>(_ body: @escaping @Sendable (StoreConnection) throws -> T) async throws -> T {
        let node = self.node
        return try await backend.pointRead { session in try body(StoreConnection(session: session, auditKey: nil, node: node)) }
    }

    /// Installs or removes the audit-chain key. Runs as a writer job so every write queued before
    /// this call uses the old state and every write after it the new one.
    public func setAuditKey(_ key: SecureBytes?) async throws {
        let holder = auditKeyHolder
        _ = try await write { _ in holder.key = key }
    }

    /// Claims this node's name in a shared store (see `PostgresLink.holdNodeLock`); throws when
    /// another running daemon holds it. Nothing to claim in a SQLite store (the state lock is it).
    public func claimNodeName() throws {
        guard let postgres = backend as? PostgresBackend else { return }
        guard try postgres.link.holdNodeLock(node: node) else {
            throw StoreError.openFailed("node name '\(node)' is in use by another running mlcredd on this store (it holds the node's lock): give this daemon its own --node")
        }
    }

    /// Takes the node's lock again after its connection was lost (a failover, an outage).
    /// Returns false when another daemon took the name meanwhile.
    public func keepNodeName() async -> Bool {
        guard let postgres = backend as? PostgresBackend, !postgres.link.holdsNodeLock else { return true }
        let node = self.node
        // Connecting blocks: on a thread made for it, not the cooperative pool.
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: (try? postgres.link.holdNodeLock(node: node)) ?? true)
            }
        }
    }

    /// The SQLite engine, for what only it has (online backup, PRAGMAs); nil on PostgreSQL.
    var sqlite: SQLiteBackend? { backend as? SQLiteBackend }
    /// The SQLite pool (unit tests reach the database with it).
    var pool: DatabasePool { sqlite!.pool }

    /// The `synchronous` setting of the writing connection (2 = FULL); SQLite only.
    public func writerSynchronousSetting() async throws -> Int {
        guard let sqlite else { return -1 }
        return try await sqlite.pool.writeWithoutTransaction { db in
            try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1
        }
    }
}

/// The writer state a job found before it ran: the chain head and the audit key (writer thread only).
final class WriterStateBox: @unchecked Sendable {
    private var head: AuditKeyHolder.Head?
    private var key: SecureBytes?
    /// False until the job ran: a batch that fails before reaching a job (the store went away)
    /// undoes it too, and there is nothing of it to undo then (restoring an empty state would
    /// drop the audit key).
    private var captured = false

    func capture(_ holder: AuditKeyHolder) {
        head = holder.pendingHead
        key = holder.key
        captured = true
    }

    func restore(_ holder: AuditKeyHolder) {
        guard captured else { return }
        holder.pendingHead = head
        holder.key = key
        captured = false
    }
}

/// The writer's own state: the audit key, and this node's chain head. Accessed only on the
/// writer thread (jobs, which run one at a time, and their completions).
final class AuditKeyHolder: @unchecked Sendable {
    var key: SecureBytes?

    struct Head: Equatable {
        var seq: Int64
        var mac: String?
    }

    /// This node's chain head as last committed, when known. Only this daemon appends to its
    /// chain (the state lock; in a fleet, the node-name lock), so the head need not be read
    /// back per record: one query less per write, a round trip less with PostgreSQL.
    var committedHead: Head?
    /// The head as the current batch's jobs moved it (not committed yet).
    var pendingHead: Head?

    /// The head to append after: the batch's own, else the committed one.
    var head: Head? { pendingHead ?? committedHead }

    func settle(committed: Bool) {
        if committed {
            if let pendingHead { committedHead = pendingHead }
        } else {
            committedHead = nil
        }
        pendingHead = nil
    }

    /// Forgets the head (records were re-chained: their MACs changed).
    func forgetHead() {
        committedHead = nil
        pendingHead = nil
    }
}
