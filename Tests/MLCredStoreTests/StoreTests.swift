import Foundation
import Synchronization
import XCTest
import MLCredAPI
import MLCredCrypto
@testable import MLCredStore

final class StoreTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        try Sodium.initialize()
        directory = NSTemporaryDirectory() + "mlcred-store-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func makeStore() throws -> Store { try Store(path: directory + "/mlcred.db") }

    func makeStore(_ batchMode: BatchMode) throws -> Store {
        try Store(location: .sqlite(path: directory + "/mlcred.db"), stateDirectory: directory, node: "local", batchMode: batchMode)
    }

    let principal = Principal(uid: 1000, gid: 1000, user: "alice", pid: 42, groups: [1000], unit: nil)

    func testWriterRunsInWALWithSynchronousFull() async throws {
        let store = try makeStore()
        let initial = try await store.writerSynchronousSetting()
        XCTAssertEqual(initial, 2)
        _ = try await store.write { try $0.setMeta("k", "v") }
        let afterWrites = try await store.writerSynchronousSetting()
        XCTAssertEqual(afterWrites, 2, "FULL holds after writes")
        let mode = try await store.pool.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") }
        XCTAssertEqual(mode, "wal")
        // Reopening (a restart) sets it again.
        let reopened = try makeStore()
        let reopenedSetting = try await reopened.writerSynchronousSetting()
        XCTAssertEqual(reopenedSetting, 2)
    }

    func testEveryValueKindIsBoundAndReadBackExactlyThroughTheCAPI() throws {
        let store = try makeStore()
        let values: [SQLValue] = [
            .null, .int(0), .int(Int64.min), .int(Int64.max), .double(-0.5), .double(1e300),
            .text(""), .text("a\u{0}b"), .text("ünïcödé ✓ 🙂"), .text(String(repeating: "x", count: 100_000)),
            .blob([]), .blob([0, 1, 0, 255]), .blob((0..<70_000).map { UInt8(truncatingIfNeeded: $0) }),
        ]
        try store.pool.write { db in
            let session = SQLiteSession(db: db)
            try session.execute("CREATE TABLE round_trip (n INTEGER PRIMARY KEY, v ANY) STRICT", [])
            for (index, value) in values.enumerated() {
                try session.execute("INSERT INTO round_trip(n, v) VALUES (?, ?)", [.int(Int64(index)), value])
            }
            let rows = try session.fetchAll("SELECT n, v FROM round_trip ORDER BY n", [])
            XCTAssertEqual(rows.map { $0.value("v") }, values)
            XCTAssertEqual(try session.fetchAll("SELECT v FROM round_trip WHERE n = ?", [.int(8)]).first?.value("v"), values[8])
            // The statement is cached and reused: a second run with other values is not confused by the first.
            XCTAssertEqual(try session.fetchAll("SELECT v FROM round_trip WHERE n = ?", [.int(1)]).first?.value("v"), .int(0))
            XCTAssertEqual(try session.execute("UPDATE round_trip SET v = ? WHERE n >= ?", [.text("z"), .int(11)]), 2, "rows changed")
        }
    }

    /// The sweeper's per-second queries on SQLite walk their partial index, not `tokens_node` or
    /// `leases_node` (an equality on `node` matches every row of a SQLite store: at 300,000 live
    /// tokens each query took 34 ms instead of 0.01 ms).
    func testTheSweepersQueriesUseTheirPartialIndexesOnSQLite() throws {
        let store = try makeStore()
        let queries = [
            (StoreConnection.expiredUnrevokedTokensSQL(.sqlite), "tokens_live"),
            (StoreConnection.boundLiveTokensSQL(.sqlite), "tokens_bound"),
            (StoreConnection.expiredActiveLeasesSQL(.sqlite), "leases_active"),
            // Counted at every token issue (--max-tokens-per-uid): the uid's own live tokens only.
            (StoreConnection.liveTokenCountSQL(.sqlite), "tokens_node_uid"),
        ]
        try store.pool.read { db in
            let session = SQLiteSession(db: db)
            for (sql, index) in queries {
                let arguments = [SQLValue](repeating: .null, count: sql.filter { $0 == "?" }.count)
                let plan = try session.fetchAll("EXPLAIN QUERY PLAN " + sql, arguments).map { "\($0.value("detail"))" }.joined(separator: " | ")
                XCTAssertTrue(plan.contains("USING INDEX \(index)"), "\(sql): \(plan)")
            }
        }
        XCTAssertFalse(StoreConnection.boundLiveTokensSQL(.postgres).contains("INDEXED BY"), "PostgreSQL plans from statistics")
    }

    func testTheSweepersQueriesFindWhatTheyAreFor() throws {
        let store = try makeStore()
        let node = store.node
        try store.pool.write { db in
            let session = SQLiteSession(db: db)
            // accessor, bound_start_time, expires_at, revoked_at
            let tokens: [(String, SQLValue, Double, SQLValue)] = [
                ("bound-live", .int(7), 9e9, .null), ("bound-revoked", .int(7), 9e9, .double(1)),
                ("unbound-live", .null, 9e9, .null), ("expired", .null, 1, .null), ("expired-revoked", .null, 1, .double(1)),
            ]
            for (accessor, bound, expires, revoked) in tokens {
                try session.execute("""
                    INSERT INTO tokens(accessor, token_hash, role, phi, uid, pid, bound_start_time, issued_at, expires_at, max_expires_at, revoked_at, node)
                    VALUES (?, ?, 'r', 0, 0, 0, ?, 0, ?, ?, ?, ?)
                    """, [.text(accessor), .text("h-" + accessor), bound, .double(expires), .double(expires), revoked, .text(node)])
            }
            for (id, state, expires) in [("l-expired", "active", 1.0), ("l-live", "active", 9e9), ("l-ended", "revoked", 1.0)] {
                try session.execute("""
                    INSERT INTO leases(id, accessor, role, grant_name, type, secret, provider_id, created_at, expires_at, state, node)
                    VALUES (?, 'bound-live', 'r', 'g', 'jwt', 's', 'p', 0, ?, ?, ?)
                    """, [.text(id), .double(expires), .text(state), .text(node)])
            }
        }
        let found = try store.readNow { connection in
            (try connection.boundLiveTokens().map(\.accessor), try connection.expiredUnrevokedTokens(now: 100, limit: 10).map(\.accessor),
             try connection.expiredActiveLeases(now: 100, limit: 10).map(\.id))
        }
        XCTAssertEqual(found.0, ["bound-live"])
        XCTAssertEqual(found.1, ["expired"])
        XCTAssertEqual(found.2, ["l-expired"])
    }

    func testAFailingStatementSaysWhyWithoutTheValuesItWasGiven() throws {
        let store = try makeStore()
        try store.pool.write { db in
            let session = SQLiteSession(db: db)
            try session.execute("CREATE TABLE unique_names (name TEXT UNIQUE NOT NULL)", [])
            try session.execute("INSERT INTO unique_names(name) VALUES (?)", [.text("s3cr3t-value-1")])
            XCTAssertThrowsError(try session.execute("INSERT INTO unique_names(name) VALUES (?)", [.text("s3cr3t-value-1")])) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains("UNIQUE constraint failed"), text)
                XCTAssertFalse(text.contains("s3cr3t"), "an error never carries a bound value: \(text)")
            }
            XCTAssertThrowsError(try session.execute("INSERT INTO unique_names(name) VALUES (?)", [.text("a"), .text("b")])) { error in
                XCTAssertTrue("\(error)".contains("expects 1 values, got 2"), "\(error)")
            }
            // The connection is still usable after both.
            try session.execute("INSERT INTO unique_names(name) VALUES (?)", [.text("other")])
            XCTAssertEqual(try session.fetchAll("SELECT COUNT(*) AS c FROM unique_names", []).first?.value("c"), .int(2))
        }
    }

    func testConcurrentWritesAreGroupedAndAFailingJobFailsAlone() async throws {
        try await checkConcurrentWritesAreGroupedAndAFailingJobFailsAlone(.optimistic)
    }

    func testConcurrentWritesAreGroupedAndAFailingJobFailsAloneWithASavepointPerJob() async throws {
        try await checkConcurrentWritesAreGroupedAndAFailingJobFailsAlone(.savepointPerJob)
    }

    func checkConcurrentWritesAreGroupedAndAFailingJobFailsAlone(_ mode: BatchMode) async throws {
        let store = try makeStore(mode)
        struct Boom: Error {}
        let results = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<200 {
                group.addTask {
                    do {
                        _ = try await store.write { connection in
                            try connection.setMeta("key\(index)", "value")
                            if index % 10 == 0 { throw Boom() }
                        }
                        return true
                    } catch {
                        return false
                    }
                }
            }
            var outcomes: [Bool] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        XCTAssertEqual(results.filter { $0 }.count, 180)
        let stored = try await store.read { connection in
            try (0..<200).filter { try connection.meta("key\($0)") != nil }
        }
        XCTAssertEqual(stored.count, 180)
        XCTAssertTrue(stored.allSatisfy { $0 % 10 != 0 }, "a failed job's changes are rolled back")
    }

    func testWritersOnManyThreadsShareCommitsAndEachIsToldOnlyAfterItsCommit() throws {
        let started = Date()
        let store = try makeStore()
        let reader = try makeStore()
        let group = DispatchGroup()
        let violations = Atomic<Int>(0)
        let completionThreads = Mutex<Set<UInt>>([])
        let callerThreads = Mutex<Set<UInt>>([])
        for thread in 0..<32 {
            group.enter()
            Thread.detachNewThread {
                let done = DispatchSemaphore(value: 0)
                _ = callerThreads.withLock { $0.insert(UInt(pthread_self())) }
                for round in 0..<20 {
                    let key = "t\(thread)-\(round)"
                    store.write({ try $0.setMeta(key, "v") }) { result in
                        // Durable before the completion runs: another connection sees it.
                        let seen = (try? reader.readNow { try $0.meta(key) }) ?? nil
                        if case .failure = result { violations.add(1, ordering: .relaxed) }
                        if seen != "v" { violations.add(1, ordering: .relaxed) }
                        _ = completionThreads.withLock { $0.insert(UInt(pthread_self())) }
                        done.signal()
                    }
                    done.wait()
                }
                group.leave()
            }
        }
        group.wait()
        XCTAssertEqual(violations.load(ordering: .relaxed), 0)
        let completions = completionThreads.withLock { $0 }
        XCTAssertEqual(completions.count, 1, "every completion runs on the one writer thread")
        XCTAssertTrue(completions.isDisjoint(with: callerThreads.withLock { $0 }))
        let statistics = store.commitStatistics
        XCTAssertEqual(statistics.writes, 640)
        XCTAssertLessThan(statistics.transactions, 640, "concurrent writers share commits")
        // The writer's time: every batch is counted, and committing (an fsync each) is part of it.
        XCTAssertGreaterThan(statistics.commitSeconds, 0)
        XCTAssertGreaterThan(statistics.busySeconds, statistics.commitSeconds)
        XCTAssertLessThan(statistics.busySeconds, Date().timeIntervalSince(started), "the writer's busy time is within the test's time")
    }

    func testAuditChainVerifiesAndNamesTheFirstEditedRecord() async throws {
        let store = try makeStore()
        let key = try SecureBytes.random(count: 32)
        try await store.setAuditKey(key)
        for index in 0..<5 {
            _ = try await store.write { [principal] in
                try $0.appendAudit(AuditEvent(principal: principal, action: AuditAction.allCases[index], result: .allowed), time: 1_700_000_000)
            }
        }
        var verdict = try await store.read { try $0.verifyAudit(key: key) }
        XCTAssertTrue(verdict.ok)
        XCTAssertEqual(verdict.checked, 5)
        XCTAssertEqual(verdict.head?.seq, 5)
        try await store.pool.write { try $0.execute(sql: "UPDATE audit SET action = 'forged' WHERE seq = 4") }
        verdict = try await store.read { try $0.verifyAudit(key: key) }
        XCTAssertFalse(verdict.ok)
        XCTAssertEqual(verdict.firstBroken?.seq, 4)
        XCTAssertEqual(verdict.head?.seq, 3)
        let wrongKey = try SecureBytes.random(count: 32)
        let withWrongKey = try await store.read { try $0.verifyAudit(key: wrongKey) }
        XCTAssertEqual(withWrongKey.firstBroken?.seq, 1)
    }

    func testRecordsWrittenWhileSealedAreChainedAtUnseal() async throws {
        let store = try makeStore()
        let key = try SecureBytes.random(count: 32)
        try await store.setAuditKey(key)
        _ = try await store.write { [principal] in try $0.appendAudit(AuditEvent(principal: principal, action: .tokenIssue, result: .allowed), time: 1) }
        try await store.setAuditKey(nil)
        for _ in 0..<3 {
            _ = try await store.write { [principal] in try $0.appendAudit(AuditEvent(principal: principal, action: .vaultUnseal, result: .denied), time: 2) }
        }
        let pending = try await store.read { try $0.auditRecords(afterSeq: 0, since: nil, limit: 10) }
        XCTAssertEqual(pending.map { $0.mac == nil }, [false, true, true, true])
        let chained = try await store.write { connection in
            connection.installAuditKey(key)
            return try connection.chainPendingAudit()
        }
        XCTAssertEqual(chained, 3)
        let verdict = try await store.read { try $0.verifyAudit(key: key) }
        XCTAssertTrue(verdict.ok)
    }

    func testAuditPagesByAfterSinceAndTail() async throws {
        let store = try makeStore()
        for index in 0..<10 {
            _ = try await store.write { [principal] in
                try $0.appendAudit(AuditEvent(principal: principal, action: AuditAction.allCases[index], result: .allowed), time: 1_700_000_000 + Double(index) * 60)
            }
        }
        let tail = try await store.read { try $0.auditRecords(afterSeq: nil, since: nil, limit: 3) }
        XCTAssertEqual(tail.map(\.seq), [8, 9, 10])
        let after = try await store.read { try $0.auditRecords(afterSeq: 7, since: nil, limit: 100) }
        XCTAssertEqual(after.map(\.seq), [8, 9, 10])
        let since = try await store.read { try $0.auditRecords(afterSeq: nil, since: 1_700_000_000 + 8 * 60, limit: 100) }
        XCTAssertEqual(since.map(\.seq), [9, 10])
    }

    func testEndedLeasesOwedToAProviderAreRetriedWithBackoffUntilConfirmed() async throws {
        let store = try makeStore()
        let token = TokenRecord(accessor: "acc1", tokenHash: "h1", role: "r", phi: false, uid: 1000, user: "alice", pid: 42,
                                boundStartTime: nil, issuedAt: 100, expiresAt: 200, maxExpiresAt: 300)
        _ = try await store.write { connection in
            try connection.insertToken(token)
            try connection.insertLease(LeaseRecord(id: "pg", accessor: "acc1", role: "r", grant: "db", type: "postgres-role", secret: "s",
                                                   providerID: "mlc_r_x", createdAt: 100, expiresAt: 200, providerState: "[\"DROP ROLE x\"]"))
            try connection.insertLease(LeaseRecord(id: "jwt", accessor: "acc1", role: "r", grant: "t", type: "jwt", secret: "s",
                                                   providerID: "jti", createdAt: 100, expiresAt: 200))
        }
        let ended = try await store.write { try $0.revokeToken(accessor: "acc1", reason: "done", at: 150, revocableTypes: ["postgres-role"]) }
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: ended.leases.map { ($0.id, $0.state) }), ["pg": .revoking, "jwt": .revoked])
        var due = try await store.read { try $0.dueRevocations(now: 150, limit: 10) }
        XCTAssertEqual(due.map(\.id), ["pg"])
        XCTAssertEqual(due.first?.providerState, "[\"DROP ROLE x\"]")

        _ = try await store.write { try $0.failRevocation(id: "pg", error: "connection refused", nextAttemptAt: 160) }
        due = try await store.read { try $0.dueRevocations(now: 155, limit: 10) }
        XCTAssertTrue(due.isEmpty, "not before its backoff passed")
        let failed = try await store.read { try $0.lease(id: "pg") }
        XCTAssertEqual(failed?.state, .revokeFailed)
        XCTAssertEqual(failed?.lastError, "connection refused")
        XCTAssertEqual(failed?.attempts, 1)
        let listed = try await store.read { try $0.leases(all: false, limit: 10) }
        XCTAssertEqual(listed.map(\.id), ["pg"], "a lease that could not be revoked stays visible")

        due = try await store.read { try $0.dueRevocations(now: 160, limit: 10) }
        XCTAssertEqual(due.map(\.id), ["pg"])
        _ = try await store.write { try $0.finishRevocation(id: "pg", at: 161) }
        let done = try await store.read { try $0.lease(id: "pg") }
        XCTAssertEqual(done?.state, .revoked)
        XCTAssertNil(done?.lastError)
        let remaining = try await store.read { try $0.dueRevocations(now: 1000, limit: 10) }
        XCTAssertTrue(remaining.isEmpty)
    }

    func testThePurgeTakesOnlyWhatEndedBeforeTheCutoffAndNeverARevocationStillOwed() async throws {
        let store = try makeStore()
        @Sendable func token(_ accessor: String) -> TokenRecord {
            TokenRecord(accessor: accessor, tokenHash: "h-" + accessor, role: "r", phi: false, uid: 1000, user: "alice", pid: 42,
                        boundStartTime: nil, issuedAt: 100, expiresAt: 200, maxExpiresAt: 300)
        }
        @Sendable func lease(_ id: String, _ accessor: String, type: String, expiresAt: Double) -> LeaseRecord {
            LeaseRecord(id: id, accessor: accessor, role: "r", grant: "g", type: type, secret: "s", providerID: id, createdAt: 100,
                        expiresAt: expiresAt)
        }
        _ = try await store.write { connection in
            for accessor in ["old", "owed", "recent", "live"] { try connection.insertToken(token(accessor)) }
            try connection.insertLease(lease("old-jwt", "old", type: "jwt", expiresAt: 200))
            try connection.insertLease(lease("owed-pg", "owed", type: "postgres-role", expiresAt: 200))
            try connection.insertLease(lease("recent-sts", "recent", type: "aws-assume-role", expiresAt: 5000))
            try connection.insertLease(lease("live-jwt", "live", type: "jwt", expiresAt: 200))
        }
        _ = try await store.write { connection in
            for accessor in ["old", "owed", "recent"] {
                _ = try connection.revokeToken(accessor: accessor, reason: "done", at: 150, revocableTypes: ["postgres-role"])
            }
            try connection.failRevocation(id: "owed-pg", error: "connection refused", nextAttemptAt: 160)
        }
        let gone = try await store.write { try $0.purgeEnded(before: 1000, limit: 100) }
        XCTAssertEqual(gone.leases, 1, "only the old JWT lease: the STS session is valid until 5000, the failed revocation is owed")
        XCTAssertEqual(gone.tokens, 1, "only the old token: the others still have leases, the live one has not ended")
        let left = try await store.read { try $0.leases(all: true, limit: 100) }.map(\.id).sorted()
        XCTAssertEqual(left, ["live-jwt", "owed-pg", "recent-sts"])
        let oldToken = try await store.read { try $0.token(accessor: "old") }
        XCTAssertNil(oldToken)
        let owedToken = try await store.read { try $0.token(accessor: "owed") }
        XCTAssertNotNil(owedToken)
        // Later, once the STS session has expired too, it goes with its token.
        let later = try await store.write { try $0.purgeEnded(before: 6000, limit: 100) }
        XCTAssertTrue(later.leases == 1 && later.tokens == 1, "\(later)")
    }
}
