import Foundation
import XCTest
@testable import MLCredAPI
import MLCredCrypto
@testable import MLCredStore
@testable import MLCredVault

final class VaultTests: XCTestCase {
    var directory = ""
    let admin = Principal(uid: 0, gid: 0, user: "root", pid: 1, groups: [], unit: nil)
    let passphrase = Array("a long enough passphrase".utf8)

    override func setUpWithError() throws {
        try Sodium.initialize()
        directory = NSTemporaryDirectory() + "mlcred-vault-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func openVault(environment: String = "dev", phi: Bool = false) async throws -> (Vault, Store) {
        let store = try Store(path: directory + "/mlcred.db")
        let vault = try await Vault(store: store, settings: .init(environment: environment, phi: phi), kdfParameters: .unsafeTestOnly)
        return (vault, store)
    }

    func testInitLeavesTheVaultUnsealedAndARestartFindsItSealed() async throws {
        var (vault, _) = try await openVault()
        var state = await vault.status
        XCTAssertEqual(state.initialized, false)
        try await vault.initialize(passphrase: passphrase, keyFileKey: nil, principal: admin)
        state = await vault.status
        XCTAssertEqual(state.sealed, false)
        (vault, _) = try await openVault()
        state = await vault.status
        XCTAssertEqual(state.initialized, true)
        XCTAssertEqual(state.sealed, true)
        try await vault.unseal(passphrase: passphrase, keyFileKey: nil, principal: admin)
        state = await vault.status
        XCTAssertEqual(state.sealed, false)
    }

    func testAStartWithOtherSettingsThanAtInitIsRefused() async throws {
        let (vault, _) = try await openVault(environment: "staging", phi: true)
        try await vault.initialize(passphrase: passphrase, keyFileKey: nil, principal: admin)
        do {
            _ = try await openVault(environment: "prod", phi: true)
            XCTFail("expected a mismatch")
        } catch let error as VaultSettingsMismatch {
            XCTAssertTrue(error.description.contains("environment 'staging'"))
        }
        do {
            _ = try await openVault(environment: "staging", phi: false)
            XCTFail("expected a mismatch")
        } catch is VaultSettingsMismatch {}
    }

    func testSecretValuesRoundTripAndAreVersioned() async throws {
        let (vault, _) = try await openVault()
        try await vault.initialize(passphrase: passphrase, keyFileKey: nil, principal: admin)
        let request = SecretPutRequest(type: "postgres", phi: true, fields: [
            "host": .string("db"), "port": .number(5432), "dbname": .string("d"), "user": .string("u"), "password": .string("pw"),
        ])
        _ = try await vault.putSecret(name: "warehouse", request: request, principal: admin)
        let second = try await vault.putSecret(name: "warehouse", request: request, principal: admin)
        XCTAssertEqual(second.version, 2)
        let opened = try await vault.openSecret(name: "warehouse")
        XCTAssertEqual(opened.fields["port"], "5432")
        XCTAssertEqual(opened.fields["password"], "pw")
        XCTAssertTrue(opened.phi)
    }

    func testAPostgresPortIsPlainDecimalDigits() async throws {
        let (vault, _) = try await openVault()
        try await vault.initialize(passphrase: passphrase, keyFileKey: nil, principal: admin)
        for port in ["+5432", "-1", " 5432", "5432 ", "0", "65536", "05432x", ""] {
            let request = SecretPutRequest(type: "postgres", phi: false, fields: [
                "host": .string("db"), "port": .string(port), "dbname": .string("d"), "user": .string("u"), "password": .string("pw"),
            ])
            do {
                _ = try await vault.putSecret(name: "warehouse", request: request, principal: admin)
                XCTFail("port '\(port)' was accepted")
            } catch let error as APIError {
                XCTAssertEqual(error.reason, .invalidSecretFields, port)
            }
        }
        XCTAssertEqual(PortNumber.parse("5432"), 5432)
        XCTAssertEqual(PortNumber.parse("65535"), 65535)
        XCTAssertNil(PortNumber.parse("٥٤٣٢"), "digits of another script")
    }

    func testASwappedCiphertextFailsNamingTheSecret() async throws {
        let (vault, store) = try await openVault()
        try await vault.initialize(passphrase: passphrase, keyFileKey: nil, principal: admin)
        for name in ["a", "b"] {
            _ = try await vault.putSecret(name: name, request: SecretPutRequest(type: "static", phi: nil, fields: ["k": .string(name)]), principal: admin)
        }
        try await store.pool.write { try $0.execute(sql: "UPDATE secrets SET sealed = (SELECT sealed FROM secrets WHERE name = 'b') WHERE name = 'a'") }
        do {
            _ = try await vault.openSecret(name: "a")
            XCTFail("expected a decryption failure")
        } catch let error as APIError {
            XCTAssertEqual(error.reason, .secretCorrupt)
            XCTAssertEqual(error.code, .internal)
            XCTAssertTrue(error.message.contains("secret 'a'"))
        }
        let listed = try await vault.listSecrets()
        XCTAssertNotNil(listed.first { $0.name == "a" }?.error)
        XCTAssertNil(listed.first { $0.name == "b" }?.error)
    }

    func testSealWipesKeysAndRefusesSecretOperations() async throws {
        let (vault, _) = try await openVault()
        try await vault.initialize(passphrase: passphrase, keyFileKey: nil, principal: admin)
        try await vault.seal(principal: admin)
        do {
            _ = try await vault.listSecrets()
            XCTFail("expected sealed")
        } catch let error as APIError {
            XCTAssertEqual(error.reason, .sealed)
        }
    }

    func testUnsealBackOffDoublesAndIsCapped() async {
        let throttle = UnsealThrottle()
        var delays: [Double] = []
        for _ in 0..<8 { delays.append(await throttle.recordFailure(uid: 7)) }
        XCTAssertEqual(delays, [1, 2, 4, 8, 16, 30, 30, 30])
        let other = await throttle.recordFailure(uid: 8)
        XCTAssertEqual(other, 1, "per uid")
        await throttle.recordSuccess(uid: 7)
        let afterSuccess = await throttle.recordFailure(uid: 7)
        XCTAssertEqual(afterSuccess, 1, "reset by a success")
    }

    func testKeyFileUnsealsAndAWrongOneIsDenied() async throws {
        var (vault, _) = try await openVault()
        let key = Sodium.randomBytes(32)
        try await vault.initialize(passphrase: nil, keyFileKey: key, principal: admin)
        (vault, _) = try await openVault()
        do {
            try await vault.unseal(passphrase: nil, keyFileKey: Sodium.randomBytes(16), principal: admin)
            XCTFail("expected denied")
        } catch let error as APIError {
            XCTAssertEqual(error.reason, .wrongKeyFile)
            XCTAssertEqual(error.code, .denied)
        }
        try await vault.unseal(passphrase: nil, keyFileKey: key, principal: admin)
        let state = await vault.status
        XCTAssertFalse(state.sealed)
    }

    /// Issue 13 finding 2: a flood written while sealed is chained at unseal in batches, and the
    /// chain verifies across the batch boundaries.
    func testUnsealChainsRecordsWrittenWhileSealedInBatches() async throws {
        var (vault, store) = try await openVault()
        try await vault.initialize(passphrase: passphrase, keyFileKey: nil, principal: admin)
        (vault, store) = try await openVault()
        let pending = Vault.chainBatch * 2 + 17
        let user = Principal(uid: 1000, gid: 1000, user: "u", pid: 2, groups: [], unit: nil)
        _ = try await store.write { connection in
            for index in 0..<pending {
                try connection.appendAudit(AuditEvent(principal: user, action: .secretList, result: .denied, reason: "not an admin \(index)"),
                                           time: 1_700_000_000)
            }
        }
        try await vault.unseal(passphrase: passphrase, keyFileKey: nil, principal: admin)
        let verified = try await vault.verifyAudit()
        XCTAssertTrue(verified.ok, "\(String(describing: verified.firstBroken))")
        XCTAssertEqual(verified.checked, Int64(pending + 2))
        let last = try await vault.auditRecords(afterSeq: nil, since: nil, limit: 1)
        XCTAssertEqual(last.first?.reason, "passphrase; chained \(pending) records written while sealed")
    }

    /// SPEC §3: a uid's denials beyond 10 in 10 s are merged; other uids keep their own allowance.
    func testDenialsBeyondTheAllowanceAreMergedPerUid() {
        let limiter = DenialLimiter()
        func denial(_ uid: UInt32) -> AuditEvent {
            AuditEvent(principal: Principal(uid: uid, gid: uid, user: "u\(uid)", pid: 1, groups: [], unit: nil),
                       action: .tokenIssue, role: "r", result: .denied, reason: "no role named 'r'")
        }
        var written = 0
        for _ in 0..<25 { written += limiter.admit(denial(1000), now: 100, mergeAll: false).count }
        XCTAssertEqual(written, 10)
        XCTAssertEqual(limiter.admit(denial(1001), now: 101, mergeAll: false).count, 1)
        XCTAssertTrue(limiter.drain(now: 105).isEmpty, "no window has ended yet")
        // The next denial after the window first writes the summary of the one that ended.
        let next = limiter.admit(denial(1000), now: 110.5, mergeAll: false)
        XCTAssertEqual(next.count, 2)
        XCTAssertEqual(next.first?.reason, "15 more denials from uid 1000 in 10 s (last: issuing a token: no role named 'r')")
        // Below the free-space reserve every denial is merged; shutdown drains every window.
        XCTAssertTrue(limiter.admit(denial(1002), now: 111, mergeAll: true).isEmpty)
        let drained = limiter.drain(now: 111, all: true)
        XCTAssertEqual(drained.count, 1)
        XCTAssertEqual(drained.first?.principal.uid, 1002)
    }

    func testTimestampsRoundTrip() {
        let text = Timestamp.format(epochSeconds: 1_795_000_000.25)
        XCTAssertEqual(text, "2026-11-18T11:06:40.250Z")
        XCTAssertEqual(Timestamp.format(epochSeconds: 0), "1970-01-01T00:00:00.000Z")
        XCTAssertEqual(Timestamp.format(epochSeconds: 951_782_399.875), "2000-02-28T23:59:59.875Z")
        XCTAssertEqual(Timestamp.format(epochSeconds: 951_868_800.5), "2000-03-01T00:00:00.500Z", "a leap year's 29 February passed")
        XCTAssertEqual(Timestamp.format(epochSeconds: -1.5), "1969-12-31T23:59:58.500Z")
        XCTAssertEqual(Timestamp.format(epochSeconds: 253_402_300_800), "10000-01-01T00:00:00.000Z", "five-digit years are written whole")
        // The fast path writes what the general form writes, across four centuries and both signs.
        for _ in 0..<20_000 {
            let seconds = Double.random(in: -2_000_000_000...12_000_000_000)
            XCTAssertEqual(Timestamp.format(epochSeconds: seconds), Timestamp.interpolated(Timestamp.fields(seconds)), "\(seconds)")
        }
        XCTAssertEqual(Timestamp.parse(text), 1_795_000_000.25)
        XCTAssertEqual(Timestamp.parse("2026-11-18"), 1_794_960_000)
        XCTAssertNil(Timestamp.parse("yesterday"))
        // A peer (STS) or a query string may send any number of digits: no overflow, no crash.
        XCTAssertNil(Timestamp.parse("2026-11-27T00:25:56.99999999999999999999Z"))
        XCTAssertNotNil(Timestamp.parse("2026-11-27T00:25:56.123456789Z"))
        XCTAssertNil(Timestamp.parse("2026-11-27T00:25:56.Z"))
    }
}
