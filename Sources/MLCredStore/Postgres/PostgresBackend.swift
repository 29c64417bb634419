import Dispatch
import Foundation
import PostgresNIO

/// The fleet store (SPEC §12): a PostgreSQL database shared by every node. The writer thread
/// runs each batch as one transaction on its own connection (BEGIN, a savepoint per job, COMMIT);
/// readers share another. The server's `synchronous_commit` decides what COMMIT waits for.
final class PostgresBackend: StoreBackend {
    let link: PostgresLink
    let writer: StoreWriter
    var dialect: SQLDialect { .postgres }

    init(configuration: PostgresStoreConfiguration, node: String) throws {
        let link = try PostgresLink(configuration: configuration, node: node)
        self.link = link
        let timeout = configuration.statementTimeout
        writer = StoreWriter(mode: .optimistic, transact: { deadline, optimistic, body in
            try Self.transaction(link: link, role: .writer, timeout: timeout, deadline: deadline, optimistic: optimistic, body)
        })
        try migrate()
        // The point readers connect now: on the request path they never wait for a connect
        // (a request would get 503 while one is made in the background).
        for index in 0..<PostgresLink.pointReaders { _ = try? link.connection(.pointReader(index)) }
    }

    /// Runs `body` in one transaction on `role`'s connection and commits it. A failure rolls it
    /// back (when the connection still lives); a lost connection is `unavailable`.
    /// `optimistic`: the writer's first attempt at a batch (`SQLSession.optimistic`).
    static func transaction(link: PostgresLink, role: PostgresLink.Role, timeout: Double, deadline: DispatchTime? = nil,
                            optimistic: Bool = false, _ body: (any SQLSession) throws -> Void) throws {
        if let deadline, DispatchTime.now() >= deadline { throw StoreError.unavailable("the store did not answer in time") }
        let connection = try link.connection(role)
        let session = PostgresSession(connection: connection, link: link, timeout: timeout, deadline: deadline, optimistic: optimistic)
        try session.send("BEGIN", [])
        do {
            try body(session)
        } catch {
            session.held.discard()
            // A connection whose transaction cannot be rolled back is not used again.
            if session.lost.error == nil && !connection.isClosed {
                do {
                    try session.execute("ROLLBACK", [])
                } catch {
                    link.drop(connection)
                }
            }
            throw error
        }
        // A COMMIT whose answer is lost may or may not have committed: the request fails (503),
        // never the other way round (nothing answered before it is committed).
        try session.commit()
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        let link = self.link
        let timeout = max(link.configuration.statementTimeout, 30)
        return try await withCheckedThrowingContinuation { continuation in
            // A blocking wait belongs on a thread made for it, not the cooperative pool.
            DispatchQueue.global().async {
                continuation.resume(with: Result {
                    let connection = try link.connection(.reader, waitBackoff: true)
                    return try body(PostgresSession(connection: connection, link: link, timeout: timeout))
                })
            }
        }
    }

    func readNow<T>(_ body: (any SQLSession) throws -> T) throws -> T {
        // Never waits for a connect (a request gets 503 while one is made in the background);
        // one round trip per statement, bounded by the statement timeout.
        let connection = try link.connection(link.pointReader(), inline: false)
        return try body(PostgresSession(connection: connection, link: link, timeout: link.configuration.statementTimeout))
    }

    /// Threat: a slow or stalled server holding an event loop (every connection on it) for up
    /// to the statement timeout. A round trip never runs on an event loop: the lookup runs on a
    /// thread made for waiting while the request's task is suspended. GCD adds threads as they
    /// block: twelve requests on a frozen server were each answered 503 at the statement timeout
    /// (1.5 s), none queued behind another (test_fleet).
    func pointRead<T: Sendable>(_ body: @escaping @Sendable (any SQLSession) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result { try self.readNow(body) })
            }
        }
    }

    func readNowBlocking<T>(_ body: (any SQLSession) throws -> T) throws -> T {
        let connection = try link.connection(.reader, waitBackoff: true)
        return try body(PostgresSession(connection: connection, link: link, timeout: 30))
    }

    func setUp(_ body: (any SQLSession) throws -> Void) throws {
        try Self.transaction(link: link, role: .writer, timeout: 30, body)
    }

    /// Brings the schema up to date: the same migrations as SQLite's, recorded in
    /// `mlcred_migrations`, under an advisory lock so nodes starting together apply each once.
    /// Waits up to 15 s for a reachable primary (a node started before its database).
    private func migrate() throws {
        let deadline = DispatchTime.now() + 15
        while true {
            do {
                try Self.transaction(link: link, role: .writer, timeout: 30) { session in
                    try session.execute("SELECT pg_advisory_xact_lock(7283629001)", [])
                    try session.execute("CREATE TABLE IF NOT EXISTS mlcred_migrations (id TEXT PRIMARY KEY NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())", [])
                    let applied = Set(try session.fetchColumn(String.self, "SELECT id FROM mlcred_migrations"))
                    for migration in StoreSchema.migrations where !applied.contains(migration.id) {
                        for sql in migration.statements(for: .postgres) { try session.execute(sql, []) }
                        try session.execute("INSERT INTO mlcred_migrations(id) VALUES (?)", migration.id)
                    }
                }
                return
            } catch StoreError.unavailable(let message) {
                // A refused certificate, login or database will not heal by waiting: say so now.
                let permanent = ["TLS", "(28P01)", "(28000)", "(3D000)", "authentication"].contains { message.contains($0) }
                guard DispatchTime.now() < deadline, !permanent else {
                    throw StoreError.openFailed("PostgreSQL store \(link.configuration.redactedDescription) "
                                                + (permanent ? "refused this node: \(message)" : "unreachable for 15 s: \(message)"))
                }
                Thread.sleep(forTimeInterval: 0.5)
            } catch {
                throw StoreError.openFailed("cannot migrate the PostgreSQL store \(link.configuration.redactedDescription): \(error)")
            }
        }
    }
}
