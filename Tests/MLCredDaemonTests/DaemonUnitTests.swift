import XCTest
@testable import MLCredBroker
@testable import MLCredDaemon

final class DaemonUnitTests: XCTestCase {
    func testOnlySystemSliceUnitsCountAsUnits() {
        XCTAssertEqual(PeerAttestation.systemUnit(cgroup: "0::/system.slice/trainer.service\n"), "trainer.service")
        XCTAssertNil(PeerAttestation.systemUnit(cgroup: "0::/user.slice/user-1000.slice/user@1000.service/app.slice/trainer.service\n"),
                     "a user manager's unit names are chosen by the user")
        XCTAssertNil(PeerAttestation.systemUnit(cgroup: "0::/\n"))
        XCTAssertNil(PeerAttestation.systemUnit(cgroup: "0::/system.slice\n"))
    }

    func testAnEmptyQueryParameterIsIgnored() {
        // Regression: "?=" once crashed the daemon.
        let request = HTTPRequest(method: "GET", uri: "/v1/audit?=&limit=5&after", authorization: nil, body: [])
        XCTAssertEqual(request.path, "/v1/audit")
        XCTAssertEqual(request.query, ["limit": "5", "after": ""])
    }

    func testMetricRouteLabelsStayBounded() {
        XCTAssertEqual(Metrics.routeLabel("/v1/secrets/warehouse"), "/v1/secrets/{name}")
        XCTAssertEqual(Metrics.routeLabel("/v1/tokens/abc/revoke"), "/v1/tokens/{accessor}/revoke")
        XCTAssertEqual(Metrics.routeLabel("/v1/tokens/renew"), "/v1/tokens/renew")
        XCTAssertEqual(Metrics.routeLabel("/v1/anything/\(UUID().uuidString)"), "other")
    }

    func testTokensAreRecognisableAndChecksummed() {
        let token = TokenFormat.generate()
        XCTAssertTrue(token.hasPrefix("mlc_"))
        XCTAssertEqual(token.count, 53)
        XCTAssertTrue(TokenFormat.isWellFormed(token))
        var typo = Array(token)
        typo[10] = typo[10] == "a" ? "b" : "a"
        XCTAssertFalse(TokenFormat.isWellFormed(String(typo)), "a one-character typo fails the CRC")
        XCTAssertNotEqual(TokenFormat.generate(), token)
        XCTAssertEqual(CRC32.checksum(Array("123456789".utf8)), 0xCBF4_3926, "the standard CRC-32 check value")
    }
}
