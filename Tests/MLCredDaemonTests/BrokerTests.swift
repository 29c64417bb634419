import Foundation
import MLCredAPI
import MLCredCrypto
import MLCredPolicy
import MLCredProviders
import MLCredStore
import MLCredVault
import Synchronization
import XCTest
@testable import MLCredBroker

/// A provider for `static` grants that records what it was asked, can fail for one secret, can
/// hold an issuance until told to go on, and ends credentials early (revocable).
final class FakeProvider: CredentialProvider, Sendable {
    let grantTypes: [GrantType] = [.static]
    let revocable: Bool
    let failing: String?
    private let state = Mutex<(issued: [String], revoked: [String], gate: CheckedContinuation<Void, Never>?, waiting: Bool)>(([], [], nil, false))
    let holdsIssuance: Bool

    init(revocable: Bool = true, failing: String? = nil, holdsIssuance: Bool = false) {
        self.revocable = revocable
        self.failing = failing
        self.holdsIssuance = holdsIssuance
    }

    var issued: [String] { state.withLock { $0.issued } }
    var revoked: [String] { state.withLock { $0.revoked } }
    var isHolding: Bool { state.withLock { $0.gate != nil } }

    func issue(secret: OpenedSecret, context: IssuanceContext) async throws -> IssuedCredential {
        if secret.name == failing { throw APIError(.upstreamRefused, "the fake provider refuses \(secret.name)") }
        let id = "fake-\(secret.name)-\(context.accessor)"
        state.withLock { $0.issued.append(id) }
        if holdsIssuance {
            await withCheckedContinuation { continuation in state.withLock { $0.gate = continuation } }
        }
        return IssuedCredential(env: [context.grant.name.uppercased(): secret.fields["v"] ?? ""], providerID: id, expiresAt: context.expiresAt)
    }

    func release() {
        state.withLock { $0.gate?.resume(); $0.gate = nil }
    }

    func revoke(lease: LeaseHandle, secret: OpenedSecret) async throws {
        state.withLock { $0.revoked.append(lease.providerID) }
    }
}

/// The broker with fake providers: what is left at a provider when minting fails part-way, when
/// the token is revoked while minting, and how ended leases are settled.
final class BrokerTests: XCTestCase {
    private var directory = ""
    private let admin = Principal(uid: 0, gid: 0, user: "root", pid: 1, groups: [], unit: nil)
    private let caller = Principal(uid: 4242, gid: 4242, user: "alice", pid: 7, groups: [], unit: nil)
    private var subject: PolicySubject { PolicySubject(uid: 4242, user: "alice", gid: 4242, groups: [(4242, "alice")], unit: nil) }

    override func setUpWithError() throws {
        try Sodium.initialize()
        directory = NSTemporaryDirectory() + "mlcred-broker-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory + "/policies", withIntermediateDirectories: true)
        try """
            name = "job"
            principals = ["uid:4242"]

            [[grant]]
            name = "first"
            secret = "s1"
            type = "static"

            [[grant]]
            name = "second"
            secret = "s2"
            type = "static"
            """.write(toFile: directory + "/policies/job.toml", atomically: true, encoding: .utf8)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func makeBroker(_ provider: FakeProvider) async throws -> (Broker, Store) {
        let store = try Store(path: directory + "/mlcred.db")
        let vault = try await Vault(store: store, settings: .init(environment: "dev", phi: false), kdfParameters: .unsafeTestOnly)
        try await vault.initialize(passphrase: Array("correct horse battery staple".utf8), keyFileKey: nil, principal: admin)
        for name in ["s1", "s2"] {
            _ = try await vault.putSecret(name: name, request: SecretPutRequest(type: "static", phi: nil, fields: ["v": .string("value-\(name)")]),
                                          principal: admin)
        }
        let broker = Broker(vault: vault, store: store, policies: try PolicyStore(directory: directory + "/policies", now: 0),
                            providers: [provider])
        return (broker, store)
    }

    private func issue(_ broker: Broker) async throws -> TokenResponse {
        try await broker.issueToken(principal: caller, subject: subject, request: TokenRequest(role: "job", ttl: nil, bind: nil),
                                    boundStartTime: nil)
    }

    func testAFailureAfterOneGrantWasMintedEndsWhatWasMadeAtItsProvider() async throws {
        let provider = FakeProvider(failing: "s2")
        let (broker, store) = try await makeBroker(provider)
        let token = try await issue(broker)
        do {
            _ = try await broker.fetchCredentials(authorization: "Bearer " + token.token, principal: caller, subject: subject,
                                                  request: CredentialsRequest(grants: nil))
            XCTFail("minting should fail on the second grant")
        } catch let error as APIError {
            XCTAssertEqual(error.reason, .upstreamRefused)
        }
        XCTAssertEqual(provider.issued, ["fake-s1-\(token.accessor)"])
        XCTAssertEqual(provider.revoked, provider.issued, "the credential made before the failure is ended at its provider")
        let leases = try store.readNow { try $0.leases(accessor: token.accessor) }
        XCTAssertEqual(leases.map(\.state), [.revoked], "stored, and settled")
        let actions = try await store.read { try $0.auditRecords(afterSeq: nil, since: nil, limit: 100) }.map(\.action)
        XCTAssertTrue(actions.contains(AuditAction.providerRevoke.rawValue), "\(actions)")
        XCTAssertEqual(actions.filter { $0 == AuditAction.credentialIssue.rawValue }.count, 2, "the success and the failure are both audited")
    }

    func testATokenRevokedWhileItsCredentialsAreMintedEndsThemAndTheCallerIsToldSo() async throws {
        let provider = FakeProvider(holdsIssuance: true)
        let (broker, store) = try await makeBroker(provider)
        let token = try await issue(broker)
        let caller = self.caller, subject = self.subject
        let fetch = Task {
            try await broker.fetchCredentials(authorization: "Bearer " + token.token, principal: caller, subject: subject,
                                              request: CredentialsRequest(grants: ["first"]))
        }
        while !provider.isHolding { try await Task.sleep(nanoseconds: 1_000_000) }
        let outcome = try await broker.revoke(accessor: token.accessor, principal: admin, reason: "revoked by an admin")
        XCTAssertTrue(outcome.revoked)
        provider.release()
        do {
            _ = try await fetch.value
            XCTFail("the fetch must not hand out credentials of a revoked token")
        } catch let error as APIError {
            XCTAssertEqual(error.code, .unauthenticated)
        }
        XCTAssertEqual(provider.revoked, provider.issued, "what was minted for the revoked token is ended at its provider")
        XCTAssertEqual(try store.readNow { try $0.leases(accessor: token.accessor) }.map(\.state), [.revoked])
    }

    func testRevocationSettlesRevocableLeasesAndReportsTheOnesThatStayValid() async throws {
        let revocable = FakeProvider(revocable: true)
        let (broker, _) = try await makeBroker(revocable)
        let token = try await issue(broker)
        _ = try await broker.fetchCredentials(authorization: "Bearer " + token.token, principal: caller, subject: subject,
                                              request: CredentialsRequest(grants: nil))
        let outcome = try await broker.revoke(authorization: "Bearer " + token.token, principal: caller)
        XCTAssertEqual(outcome.unconfirmed, [])
        XCTAssertEqual(outcome.stillValid, [], "ended at the provider: nothing stays valid")
        XCTAssertEqual(Set(revocable.revoked), Set(revocable.issued))
        XCTAssertEqual(revocable.issued.count, 2)
    }

    func testLeasesAProviderCannotEndEarlyAreReportedStillValid() async throws {
        let unrevocable = FakeProvider(revocable: false)
        let (broker, _) = try await makeBroker(unrevocable)
        let token = try await issue(broker)
        _ = try await broker.fetchCredentials(authorization: "Bearer " + token.token, principal: caller, subject: subject,
                                              request: CredentialsRequest(grants: nil))
        let outcome = try await broker.revoke(authorization: "Bearer " + token.token, principal: caller)
        XCTAssertEqual(outcome.stillValid.map(\.grant).sorted(), ["first", "second"])
        XCTAssertTrue(outcome.stillValid.allSatisfy { $0.state == .revoked })
        XCTAssertEqual(unrevocable.revoked, [], "nothing to tell a provider that cannot end them")
    }
}
