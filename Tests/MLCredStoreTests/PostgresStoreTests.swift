import Dispatch
import Glibc
import Foundation
import MLCredAPI
import MLCredCrypto
import PostgresNIO
@testable import MLCredStore
import Synchronization
import XCTest

/// The parts of the PostgreSQL store that need no server: the URL, placeholders, DDL
/// translation. The store itself runs against a real PostgreSQL in Tests/EndToEnd/test_fleet.py.
final class PostgresStoreTests: XCTestCase {
    func testAURLListsHostsInOrderWithTLSAndNoPassword() throws {
        let url = "postgres://mlcred@db1:5432,db2:6543,[::1]/fleet?target_session_attrs=read-write&sslmode=verify-full&sslrootcert=/etc/mlcred/ca%20root.pem"
        let parsed = try PostgresStoreConfiguration(url: url, password: "pw")
        XCTAssertEqual(parsed.hosts.map(\.description), ["db1:5432", "db2:6543", "[::1]:5432"])
        XCTAssertEqual(parsed.user, "mlcred")
        XCTAssertEqual(parsed.database, "fleet")
        XCTAssertEqual(parsed.sslMode, .verifyFull)
        XCTAssertEqual(parsed.sslRootCert, "/etc/mlcred/ca root.pem")
        XCTAssertFalse(parsed.redactedDescription.contains("pw"))
    }

    func testAPasswordInTheURLIsRefusedWithoutEchoingIt() {
        for url in ["postgres://mlcred:s3cret@db/fleet", "postgres://mlcred@db/fleet?password=s3cret"] {
            XCTAssertThrowsError(try PostgresStoreConfiguration(url: url, password: nil)) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains("password"), text)
                XCTAssertFalse(text.contains("s3cret"), text)
            }
        }
    }

    func testBadURLsSayWhatIsWrong() {
        let cases: [(String, String)] = [
            ("mysql://db/x", "postgres://"),
            ("postgres://mlcred@db", "names no database"),
            ("postgres://mlcred@db:99999/x", "bad port"),
            ("postgres://mlcred@db:+5432/x", "bad port"),
            ("postgres://mlcred@db: 5432/x", "bad port"),
            ("postgres://mlcred@db:/x", "bad port"),
            ("postgres://mlcred@db/x?sslmode=prefer", "sslmode must be"),
            ("postgres://mlcred@db/x?sslmode=verify-full", "needs sslrootcert"),
            ("postgres://mlcred@db/x?target_session_attrs=standby", "target_session_attrs"),
            ("postgres://mlcred@db/x?application=1", "unknown store URL parameter"),
        ]
        for (url, expected) in cases {
            XCTAssertThrowsError(try PostgresStoreConfiguration(url: url, password: nil), url) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(url): \(error)")
            }
        }
    }

    func testPlaceholdersAreNumberedOutsideQuotes() {
        XCTAssertEqual(PostgresPlaceholders.numbered("SELECT * FROM t WHERE a = ? AND b = '?' AND c IN (?, ?)"),
                       "SELECT * FROM t WHERE a = $1 AND b = '?' AND c IN ($2, $3)")
    }

    func testAnOptimisticBatchSendsEachTablesRowsAsOneInsertInTheOrderTheyFirstAppeared() {
        let tokens = SQLInsert("tokens", ["accessor", "\"user\""])
        let audit = SQLInsert("audit", ["seq"])
        XCTAssertEqual(tokens.sql, "INSERT INTO tokens(accessor, \"user\") VALUES (?, ?)")
        XCTAssertEqual(tokens.postgres(rows: 2), "INSERT INTO tokens(accessor, \"user\") VALUES ($1, $2), ($3, $4)")
        let held = HeldStatements()
        held.add(tokens, [.text("a1"), .null])
        held.add(audit, [.int(1)])
        held.add(SQLRowCheck(table: "tokens", column: "accessor", condition: "revoked_at IS NULL", key: "a0"))
        held.add(tokens, [.text("a2"), .text("bob")])
        held.add(audit, [.int(2)])
        held.add(SQLRowCheck(table: "tokens", column: "accessor", condition: "revoked_at IS NULL", key: "a0"))
        let queries = held.take()
        XCTAssertEqual(queries.map(\.sql), [
            "INSERT INTO tokens(accessor, \"user\") VALUES ($1, $2), ($3, $4)",
            "INSERT INTO audit(seq) VALUES ($1), ($2)",
            "SELECT 1 / (COUNT(*) = $1)::int FROM (SELECT 1 FROM tokens WHERE accessor = ANY($2) AND revoked_at IS NULL ORDER BY accessor FOR SHARE) AS held",
        ])
        XCTAssertEqual(queries.map(\.binds.count), [4, 2, 2], "the check binds the count of distinct keys and the keys")
        XCTAssertTrue(held.isEmpty)
    }

    func testARowNeverPrecedesTheRowItReferencesInTheSameBatch() {
        // A fetch (a lease of an earlier token), then a token issued with its credentials: the
        // merged leases INSERT must follow the tokens INSERT (leases.accessor references tokens).
        let held = HeldStatements()
        held.add(StoreConnection.leaseInsert, Array(repeating: .text("l1"), count: StoreConnection.leaseInsert.columns.count))
        held.add(StoreConnection.auditInsert, Array(repeating: .int(1), count: StoreConnection.auditInsert.columns.count))
        held.add(StoreConnection.tokenInsert, Array(repeating: .text("t2"), count: StoreConnection.tokenInsert.columns.count))
        held.add(StoreConnection.leaseInsert, Array(repeating: .text("l2"), count: StoreConnection.leaseInsert.columns.count))
        let tables = held.take().map { $0.sql.split(separator: "(")[0] }
        XCTAssertEqual(tables, ["INSERT INTO audit", "INSERT INTO tokens", "INSERT INTO leases"])
    }

    func testAHeldInsertLargerThanTheParameterLimitIsSentInChunks() {
        let wide = SQLInsert("audit", (0..<12).map { "c\($0)" })
        let held = HeldStatements()
        for row in 0..<6_000 { held.add(wide, (0..<12).map { .int(Int64(row * 12 + $0)) }) }
        let queries = held.take()
        XCTAssertEqual(queries.map(\.binds.count), [65_532, 6_000 * 12 - 65_532])
        XCTAssertTrue(queries.allSatisfy { $0.binds.count <= HeldStatements.maximumParameters })
    }

    func testMigrationsTranslateToPostgreSQLTypes() {
        let tokens = StoreSchema.migrations.first { $0.id == "v2-tokens-leases" }!.statements(for: .postgres)[0]
        XCTAssertTrue(tokens.contains("\"user\" TEXT"), tokens)
        XCTAssertTrue(tokens.contains("uid BIGINT NOT NULL"), tokens)
        XCTAssertTrue(tokens.contains("issued_at DOUBLE PRECISION"), tokens)
        XCTAssertFalse(tokens.contains("STRICT"), tokens)
        let audit = StoreSchema.migrations.first!.statements(for: .postgres)[2]
        XCTAssertTrue(audit.contains("seq BIGINT NOT NULL"), audit)
        // Engine-specific steps go only to their engine.
        let fleet = StoreSchema.migrations.first { $0.id == "v9-fleet" }!
        XCTAssertTrue(fleet.statements(for: .postgres).contains("ALTER TABLE audit ADD PRIMARY KEY (node, seq)"))
        XCTAssertFalse(fleet.statements(for: .sqlite).contains("ALTER TABLE audit ADD PRIMARY KEY (node, seq)"))
        XCTAssertEqual(Set(StoreSchema.migrations.map(\.id)).count, StoreSchema.migrations.count)
    }

    func testASQLiteStoreAdoptsItsRowsForARenamedNode() async throws {
        let directory = NSTemporaryDirectory() + "mlcred-store-node-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try Store(path: directory + "/mlcred.db", node: "old-name")
        let token = TokenRecord(accessor: "a1", tokenHash: "h1", role: "r", phi: false, uid: 1, user: nil, pid: 1, boundStartTime: 7,
                                issuedAt: 0, expiresAt: 9e9, maxExpiresAt: 9e9)
        try await first.write { try $0.insertToken(token) }
        let renamed = try Store(path: directory + "/mlcred.db", node: "new-name")
        let bound = try await renamed.read { try $0.boundLiveTokens() }
        XCTAssertEqual(bound.map(\.accessor), ["a1"])
        XCTAssertEqual(bound.first?.node, "new-name")
    }

    /// CI once saw `audit verify` right after a failover answer "connecting to PostgreSQL": an
    /// admin read waited at most 2 s for another thread's connect of the same connection, then
    /// gave up, though a connect may take longer (every listed host timing out). A server that
    /// accepts and never answers (a listening socket nobody reads) makes one connect take 2.7 s here.
    func testAnAdminReadWaitsOutAReconnectUnderWayAndThenTriesItself() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(listener, 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && getsockname(listener, $0, &length) == 0 }
        }
        XCTAssertTrue(bound)
        XCTAssertEqual(listen(listener, 64), 0)
        let port = UInt16(bigEndian: address.sin_port)
        let hosts = Array(repeating: "127.0.0.1:\(port)", count: 9).joined(separator: ",")
        let configuration = try PostgresStoreConfiguration(url: "postgres://mlcred@\(hosts)/fleet?connect_timeout=0.3", password: "pw")
        let link = try PostgresLink(configuration: configuration, node: "wait-test")
        defer { link.close() }
        let first = DispatchSemaphore(value: 0)
        let started = DispatchTime.now()
        DispatchQueue.global().async {
            _ = try? link.connection(.reader)  // a sweep's reconnect: 9 × 0.3 s
            first.signal()
        }
        Thread.sleep(forTimeInterval: 0.2)
        var message = ""
        do {
            _ = try link.connection(.reader, waitBackoff: true)
            XCTFail("a silent server gave a connection")
        } catch StoreError.unavailable(let text) {
            message = text
        }
        let waited = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
        first.wait()
        XCTAssertFalse(message.contains("connecting to PostgreSQL"), message)
        XCTAssertTrue(message.hasPrefix("no writable PostgreSQL: 127.0.0.1:\(port): "), "its own attempt's error: \(message)")
        XCTAssertGreaterThan(waited, 5, "the other connect (2.7 s), its backoff, then its own (2.7 s)")
        // Without waiting, the same call fails at once while a backoff runs.
        let quick = DispatchTime.now()
        XCTAssertThrowsError(try link.connection(.reader))
        XCTAssertLessThan(Double(DispatchTime.now().uptimeNanoseconds - quick.uptimeNanoseconds) / 1e9, 0.2)
    }
}

/// The writer's optimistic mode (PostgreSQL's: a batch without savepoints first, then again
/// with one per job if any failed), run here on SQLite where a batch can be made on purpose.
final class OptimisticWriterTests: XCTestCase {
    struct Refused: Error {}
    static let principal = Principal(uid: 0, gid: 0, user: "root", pid: 1, groups: [], unit: nil)
    var directory = ""

    override func setUpWithError() throws {
        try Sodium.initialize()
        directory = NSTemporaryDirectory() + "mlcred-optimistic-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A SQLite store whose writer runs optimistic batches, with an audit key installed.
    func makeStore() async throws -> (Store, SecureBytes) {
        let store = try Store(location: .sqlite(path: directory + "/mlcred.db"), stateDirectory: directory, node: "n1",
                              reserve: .bytes(0), batchMode: .optimistic)
        let key = try SecureBytes.random(count: 32)
        try await store.setAuditKey(key)
        return (store, key)
    }

    func testAFailingJobInAnOptimisticBatchFailsAloneAndTheChainStaysWhole() async throws {
        let (store, key) = try await makeStore()
        let principal = Self.principal
        @Sendable func event(_ reason: String) -> AuditEvent { AuditEvent(principal: principal, action: .secretPut, result: .allowed, reason: reason) }
        // A slow job holds the writer while the next five queue up: they form one batch.
        let gate = DispatchSemaphore(value: 0)
        let started = DispatchSemaphore(value: 0)
        store.write({ connection in
            started.signal()
            gate.wait()
            gate.signal()  // open for good (a job may run again)
            return try connection.appendAudit(event("first"), time: 1)
        }, completion: { _ in })
        started.wait()
        let results = Mutex<[Int: Result<Int64, Error>]>([:])
        let done = DispatchGroup()
        for index in 0..<5 {
            done.enter()
            store.write({ connection -> Int64 in
                let seq = try connection.appendAudit(event("job \(index)"), time: 2)
                if index == 2 { throw Refused() }  // after appending: its record must go with it
                return seq
            }, completion: { result in
                results.withLock { $0[index] = result }
                done.leave()
            })
        }
        gate.signal()
        done.wait()
        let outcomes = results.withLock { $0 }
        XCTAssertThrowsError(try outcomes[2]!.get())
        let seqs = try [0, 1, 3, 4].map { try outcomes[$0]!.get() }
        XCTAssertEqual(seqs, [2, 3, 4, 5], "the refused job's record is gone and the others follow without a gap")
        let verdict = try await store.read { try $0.verifyAudit(key: key) }
        XCTAssertTrue(verdict.ok, "\(verdict)")
        XCTAssertEqual(verdict.checked, 5)
        // And the writer goes on from the right head.
        let next = try await store.write { try $0.appendAudit(event("after"), time: 3) }
        XCTAssertEqual(next, 6)
        XCTAssertEqual(store.commitStatistics.transactions, 4, "the audit key, the slow job, the batch (its second try), the last")
    }

    func testASealInABatchThatRunsAgainStillMACsItsRecordAndThoseBeforeIt() async throws {
        // A review found it: the seal's job removes the audit key after writing its record; when
        // a sibling failed, the batch ran again with the key already gone, so the seal's record
        // and every record queued before it in that batch were written without a MAC.
        let (store, key) = try await makeStore()
        let principal = Self.principal
        @Sendable func event(_ action: AuditAction) -> AuditEvent { AuditEvent(principal: principal, action: action, result: .allowed) }
        let gate = DispatchSemaphore(value: 0)
        let started = DispatchSemaphore(value: 0)
        store.write({ _ in
            started.signal()
            gate.wait()
            gate.signal()
        }, completion: { _ in })
        started.wait()
        let done = DispatchGroup()
        let failures = Mutex<[String]>([])
        func queue(_ name: String, _ body: @escaping @Sendable (StoreConnection) throws -> Void) {
            done.enter()
            store.write(body) { result in
                if case .failure = result { failures.withLock { $0.append(name) } }
                done.leave()
            }
        }
        queue("put") { try $0.appendAudit(event(.secretPut), time: 1) }
        queue("seal") { connection in
            try connection.appendAudit(event(.vaultSeal), time: 2)
            connection.installAuditKey(nil)
        }
        queue("refused") { _ in throw Refused() }
        gate.signal()
        done.wait()
        XCTAssertEqual(failures.withLock { $0 }, ["refused"])
        let unprotected = try await store.read { try $0.session.fetchAll("SELECT seq FROM audit WHERE mac IS NULL", []) }
        XCTAssertEqual(unprotected.count, 0, "every record of the batch is MAC'd, the seal's included")
        let verdict = try await store.read { try $0.verifyAudit(key: key) }
        XCTAssertTrue(verdict.ok, "\(verdict)")
        XCTAssertEqual(verdict.checked, 2)
        // The seal took the key away for what comes after it.
        _ = try await store.write { try $0.appendAudit(event(.vaultUnseal), time: 3) }
        let after = try await store.read { try $0.session.fetchAll("SELECT seq FROM audit WHERE mac IS NULL", []) }
        XCTAssertEqual(after.count, 1)
    }
}
