import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import Synchronization

/// The store's connections to PostgreSQL: one for the writer thread, one shared by readers,
/// each (re)made on demand. Connecting tries the URL's hosts in order and keeps the first that is
/// not in recovery (SPEC §12: PostgresNIO has no multi-host URLs). After a failure, connecting
/// waits a backoff (0.25 s doubling to 2 s) during which requests fail at once with
/// `unavailable`: a store outage is answered quickly, never queued.
final class PostgresLink: Sendable {
    /// A connection's use: the writer's, one of the point readers' (`pointReaders`, taken in
    /// turn: a server's event loops blocked on one connection would wait for each other), the
    /// scans', or the node lock's.
    enum Role: Sendable, Hashable { case writer, pointReader(Int), reader, nodeLock }

    /// Connections for point reads on the request path: one per core of this machine's size.
    static let pointReaders = 2
    private let nextPointReader = Atomic<Int>(0)

    /// The next point reader, in turn.
    func pointReader() -> Role {
        .pointReader(nextPointReader.wrappingAdd(1, ordering: .relaxed).oldValue % Self.pointReaders)
    }

    private struct State {
        var connections: [Role: PostgresConnection] = [:]
        var connecting: Set<Role> = []
        var notBefore: [Role: DispatchTime] = [:]
        var backoff: [Role: Double] = [:]
        var lastError = "not connected yet"
        /// The host the last connection reached, for logs and fleet status.
        var host: String?
    }

    let configuration: PostgresStoreConfiguration
    let logger: Logger
    let applicationName: String
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let state = Mutex(State())
    private let tls: PostgresConnection.Configuration.TLS

    init(configuration: PostgresStoreConfiguration, node: String) throws {
        self.configuration = configuration
        self.applicationName = "mlcredd-" + String(node.prefix(40))
        var logger = Logger(label: "mlcred.store.postgres")
        logger.logLevel = .critical
        self.logger = logger
        tls = try Self.tls(configuration)
    }

    /// The host currently connected (`name:port`), if any.
    var connectedHost: String? { state.withLock { $0.host } }

    /// How long a `waitBackoff` caller waits for a backoff or another caller's connect before it
    /// fails: the longest backoff (2 s) and then one whole connect, every listed host timing out
    /// (the connect, then `pg_is_in_recovery()`).
    var waitLimit: Double {
        2 + Double(configuration.hosts.count) * (configuration.connectTimeout + configuration.statementTimeout)
    }

    private static func seconds(from start: DispatchTime, to end: DispatchTime) -> Double {
        Double(Int64(end.uptimeNanoseconds) - Int64(start.uptimeNanoseconds)) / 1e9
    }

    /// A live connection for `role`, connecting if needed. Throws `StoreError.unavailable` at once
    /// while a previous attempt's backoff runs or another thread is connecting the same role.
    /// With `inline` false (a caller that must not block for a connect: a server's event loop),
    /// a missing connection is made in the background and this call fails at once.
    /// With `waitBackoff` (scans and admin reads off the request path), a running backoff and
    /// other callers' connects are waited out, up to `waitLimit` in all, and then this caller
    /// connects itself: an admin view right after a failover waits for the store rather than
    /// failing because a sweep was reconnecting the same role (CI: `audit verify` refused once
    /// writes had resumed).
    func connection(_ role: Role, inline: Bool = true, waitBackoff: Bool = false) throws -> PostgresConnection {
        enum Decision { case use(PostgresConnection), connect, background, wait(Double), fail(String) }
        let until = DispatchTime.now() + (waitBackoff ? waitLimit : 0)
        while true {
            let now = DispatchTime.now()
            let decision = state.withLock { state -> Decision in
                if let connection = state.connections[role], !connection.isClosed { return .use(connection) }
                state.connections[role] = nil
                let left = Self.seconds(from: now, to: until)
                if state.connecting.contains(role) {
                    return waitBackoff && left > 0 ? .wait(min(0.05, left)) : .fail("connecting to PostgreSQL")
                }
                if let notBefore = state.notBefore[role], now < notBefore {
                    let backoff = Self.seconds(from: now, to: notBefore)
                    return waitBackoff && left > 0 ? .wait(min(backoff, left)) : .fail(state.lastError)
                }
                if !inline { return .background }
                state.connecting.insert(role)
                return .connect
            }
            switch decision {
            case .use(let connection): return connection
            case .fail(let message): throw StoreError.unavailable(message)
            case .wait(let seconds):
                Thread.sleep(forTimeInterval: seconds)
                continue
            case .background:
                DispatchQueue.global().async { [self] in _ = try? connection(role) }
                throw StoreError.unavailable("connecting to PostgreSQL")
            case .connect: break
            }
            break
        }
        do {
            let (connection, host) = try connectToPrimary()
            state.withLock { state in
                state.connecting.remove(role)
                state.connections[role] = connection
                state.backoff[role] = nil
                state.notBefore[role] = nil
                state.host = host
            }
            return connection
        } catch {
            var message = "\(error)"
            if case StoreError.unavailable(let inner)? = error as? StoreError { message = inner }
            state.withLock { state in
                state.connecting.remove(role)
                let backoff = min((state.backoff[role] ?? 0.125) * 2, 2)
                state.backoff[role] = backoff
                state.notBefore[role] = .now() + backoff
                state.lastError = message
            }
            throw StoreError.unavailable(message)
        }
    }

    /// Judges an error of a statement on `connection`: a server's refusal of the statement
    /// (an SQL error) stays a database error; anything else (closed, timed out, read-only after a
    /// failover) drops the connection, to be made again, and is `unavailable`.
    func failed(_ connection: PostgresConnection, _ error: Error) -> (error: Error, dropped: Bool) {
        if let error = error as? PSQLError, let sqlState = error.serverInfo?[.sqlState] {
            // 25006: read-only transaction (the host became a standby); 57P01..03: shut down.
            if sqlState == "25006" || sqlState.hasPrefix("57P") || sqlState.hasPrefix("08") {
                drop(connection)
                return (StoreError.unavailable("PostgreSQL \(sqlState): \(error.serverInfo?[.message] ?? "")"), true)
            }
            if sqlState == "23505", error.serverInfo?[.constraintName] == "audit_pkey" {
                // This node's chain head moved under it: a transaction whose COMMIT answer was
                // lost (a synchronous standby away, a failover) committed after all. The key
                // kept the chain whole; this request is refused, to be tried again, and the
                // next one reads the new head.
                return (StoreError.unavailable("the store committed an earlier write late (failover or standby catching up)"), false)
            }
            return (StoreError.database("PostgreSQL \(sqlState): \(error.serverInfo?[.message] ?? "statement refused")"), false)
        }
        drop(connection)
        if error is BlockingWait.TimedOut {
            return (StoreError.unavailable("PostgreSQL did not answer in time"), true)
        }
        return (StoreError.unavailable("the connection to PostgreSQL failed (\(Self.describe(error)))"), true)
    }

    /// Forgets `connection` and closes it (failing whatever still waits on it).
    func drop(_ connection: PostgresConnection) {
        state.withLock { state in
            for (role, current) in state.connections where current === connection { state.connections[role] = nil }
        }
        Self.close(connection)
    }

    /// Closes `connection`, holding it until its channel is closed (PostgresNIO insists a
    /// connection is closed before it is released).
    static func close(_ connection: PostgresConnection) {
        connection.close().whenComplete { _ in withExtendedLifetime(connection) {} }
    }

    /// Takes (or, after a reconnect, takes again) the session-level advisory lock named after
    /// `node` on a connection of its own, held for the daemon's life: two daemons cannot run
    /// under one node name (their chains and leases would mix). The server frees it when the
    /// holder's session ends (a crashed daemon's included). Returns false when another session
    /// holds it.
    func holdNodeLock(node: String) throws -> Bool {
        let connection = try connection(.nodeLock)
        let session = PostgresSession(connection: connection, link: self, timeout: configuration.statementTimeout)
        return try session.fetchScalar(Bool.self, "SELECT pg_try_advisory_lock(hashtextextended(?, 0))", "mlcred-node:" + node) ?? false
    }

    /// Whether the node lock's connection still lives (its lock with it).
    var holdsNodeLock: Bool {
        state.withLock { state in state.connections[.nodeLock].map { !$0.isClosed } ?? false }
    }

    /// Closes every connection (shutdown).
    func close() {
        let connections = state.withLock { state -> [PostgresConnection] in
            defer { state.connections = [:] }
            return Array(state.connections.values)
        }
        for connection in connections { _ = try? BlockingWait.result(of: connection.close(), within: 2) }
    }

    /// Connects to the first listed host that accepts us and is not in recovery.
    private func connectToPrimary() throws -> (PostgresConnection, String) {
        var failures: [String] = []
        for host in configuration.hosts {
            var settings = PostgresConnection.Configuration(host: host.name, port: host.port, username: configuration.user,
                                                            password: configuration.password, database: configuration.database, tls: tls)
            settings.options.connectTimeout = .milliseconds(Int64(configuration.connectTimeout * 1000))
            settings.options.additionalStartupParameters = [("application_name", applicationName)]
            let connection: PostgresConnection
            let connecting = PostgresConnection.connect(on: group.next(), configuration: settings, id: 1, logger: logger)
            do {
                connection = try BlockingWait.result(of: connecting, within: configuration.connectTimeout)
            } catch {
                // Too late is not never: a connection made after we gave up is closed when it comes.
                connecting.whenSuccess { Self.close($0) }
                failures.append("\(host): \(Self.describe(error))")
                continue
            }
            do {
                let result = try BlockingWait.result(
                    of: connection.query(PostgresQuery(unsafeSQL: "SELECT pg_is_in_recovery()"), logger: logger),
                    within: configuration.statementTimeout)
                let inRecovery = try result.rows.first?.decode(Bool.self) ?? true
                if inRecovery {
                    failures.append("\(host): in recovery (a standby)")
                    Self.close(connection)
                    continue
                }
                return (connection, host.description)
            } catch {
                failures.append("\(host): \(Self.describe(error))")
                Self.close(connection)
            }
        }
        throw StoreError.unavailable("no writable PostgreSQL: " + failures.joined(separator: "; "))
    }

    /// TLS as libpq's `sslmode` means it: `require` encrypts without checking the certificate;
    /// `verify-full` checks the chain against `sslrootcert` and the host name.
    static func tls(_ configuration: PostgresStoreConfiguration) throws -> PostgresConnection.Configuration.TLS {
        var tls = TLSConfiguration.makeClientConfiguration()
        switch configuration.sslMode {
        case .disable:
            return .disable
        case .require:
            tls.certificateVerification = .none
        case .verifyFull:
            tls.certificateVerification = .fullVerification
            if let root = configuration.sslRootCert {
                guard FileManager.default.isReadableFile(atPath: root) else {
                    throw StoreError.openFailed("cannot read sslrootcert \(root)")
                }
                tls.trustRoots = .file(root)
            }
        }
        do {
            return .require(try NIOSSLContext(configuration: tls))
        } catch {
            throw StoreError.openFailed("cannot set up TLS for the store: \(error)")
        }
    }

    /// An error in words (PSQLError's description hides the server's message; its fields don't).
    static func describe(_ error: Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                return "\(message) (\(error.serverInfo?[.sqlState] ?? "?"))"
            }
            if let underlying = error.underlying {
                // NIO's connection errors are long; what a reader needs is the cause.
                let text = "\(underlying)"
                for (needle, short) in [("Connection refused", "connection refused"), ("connectTimeout", "connect timed out"),
                                        ("timed out", "timed out"), ("No route to host", "no route to host"),
                                        ("certificate", "TLS certificate refused: \(text)"), ("handshake", "TLS handshake failed: \(text)")]
                where text.contains(needle) {
                    return short
                }
                return "\(error.code): \(text)"
            }
            return "\(error.code)"
        }
        if error is BlockingWait.TimedOut { return "timed out" }
        return "\(error)"
    }
}
