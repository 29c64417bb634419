import XCTest
import MLCredAPI

final class StateTests: XCTestCase {
    func testALeaseThatEndsIsOwedToItsProviderOnlyWhenTheProviderCanEndItEarly() {
        XCTAssertEqual(LeaseState.active.ended(revocableAtProvider: true), .revoking)
        XCTAssertEqual(LeaseState.active.ended(revocableAtProvider: false), .revoked)
        XCTAssertEqual(LeaseState.active.ended(revocableAtProvider: false, expired: true), .expired)
        XCTAssertEqual(LeaseState.active.ended(revocableAtProvider: true, expired: true), .revoking, "its provider is told even when it expired")
        for state in LeaseState.allCases where state != .active {
            XCTAssertEqual(state.ended(revocableAtProvider: true), state, "an ended lease keeps its state: \(state)")
        }
        XCTAssertEqual(LeaseState.allCases.filter(\.owedToProvider), [.revoking, .revokeFailed])
    }

    func testStoredAndWireSpellingsStayAsReleased() {
        XCTAssertEqual(LeaseState.allCases.map(\.rawValue), ["active", "revoking", "revoke_failed", "revoked", "expired"])
        XCTAssertEqual(TokenState.allCases.map(\.rawValue), ["active", "expired", "revoked"])
        let actions = AuditAction.allCases.map(\.rawValue)
        XCTAssertEqual(Set(actions).count, actions.count)
        for action in actions {
            XCTAssertNotNil(action.range(of: #"^[a-z]+\.[a-z]+$"#, options: .regularExpression), action)
        }
        XCTAssertEqual(AuditAction.secretRemove.rawValue, "secret.rm")
        XCTAssertEqual(AuditAction.credentialIssue.rawValue, "credential.issue")
    }

    func testEnumsReadInMessagesAsTheyAreSpelledOnTheWire() {
        // Regression: "needs a secret of type jwtSigner" once reached `policy validate`.
        XCTAssertEqual("\(SecretType.jwtSigner)", "jwt-signer")
        XCTAssertEqual("\(AuditAction.secretList)", "secret.list")
        XCTAssertEqual("\(LeaseState.revokeFailed)", "revoke_failed")
        XCTAssertEqual("\(TokenState.expired)", "expired")
    }

    func testTheLeaseListShowsWhatNeedsAttentionUnlessAskedForMore() {
        XCTAssertEqual(LeaseListScope(query: [:]), .live)
        XCTAssertEqual(LeaseListScope(query: ["ended": "true"]), .ended)
        XCTAssertEqual(LeaseListScope(query: ["all": "true", "ended": "true"]), .all)
        XCTAssertNil(LeaseListScope(query: ["all": "yes"]), "only true or false")
        XCTAssertNil(LeaseListScope(query: ["ended": "1"]))
        XCTAssertEqual(LeaseListScope(query: ["all": "false", "ended": "true"]), .ended)
    }

    func testEveryActionReadsAsAnActivityForPeople() {
        for action in AuditAction.allCases {
            XCTAssertFalse(action.activity.contains("."), "\(action): messages name what was refused, not the audit action")
        }
        XCTAssertEqual(AuditAction.secretList.activity, "listing secrets")
    }
}
