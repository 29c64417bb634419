import MLCredAPI
@testable import MLCredProviders
import XCTest

/// Which `upstream_*` reason a provider's refusal is answered with: the CLI's hint follows it.
final class UpstreamReasonTests: XCTestCase {
    func testSTSRefusalsAreToldApartByAWSCode() {
        for code in ["InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken", "RequestExpired", "IncompleteSignature"] {
            XCTAssertEqual(STSProtocol.reason(errorCode: code, status: 403), .upstreamSignature, code)
        }
        XCTAssertEqual(STSProtocol.reason(errorCode: "AccessDenied", status: 403), .upstreamDenied)
        XCTAssertEqual(STSProtocol.reason(errorCode: "Throttling", status: 400), .upstreamBusy)
        XCTAssertEqual(STSProtocol.reason(errorCode: "MalformedPolicyDocument", status: 400), .upstreamRefused)
        XCTAssertEqual(STSProtocol.reason(errorCode: nil, status: 400), .upstreamRefused)
        XCTAssertEqual(STSProtocol.reason(errorCode: nil, status: 503), .upstreamFailed)
        XCTAssertEqual(STSProtocol.reason(errorCode: "InternalFailure", status: 500), .upstreamFailed)
    }

    func testAnSTSAnswerWithoutCredentialsIsAnInvalidAnswer() {
        XCTAssertThrowsError(try STSProtocol.parse(status: 200, body: Array("<AssumeRoleResponse/>".utf8))) { error in
            XCTAssertEqual((error as? APIError)?.reason, .upstreamAnswerInvalid)
        }
        let denied = "<ErrorResponse><Error><Code>AccessDenied</Code><Message>not authorized to perform sts:AssumeRole</Message></Error></ErrorResponse>"
        XCTAssertThrowsError(try STSProtocol.parse(status: 403, body: Array(denied.utf8))) { error in
            XCTAssertEqual((error as? APIError)?.reason, .upstreamDenied)
        }
    }

    func testPostgreSQLFailuresAreToldApartBySQLSTATE() {
        XCTAssertEqual(PostgresProvider.connectReason(sqlState: nil), .upstreamUnreachable, "no server answered")
        XCTAssertEqual(PostgresProvider.connectReason(sqlState: "28P01"), .upstreamLogin, "password authentication failed")
        XCTAssertEqual(PostgresProvider.connectReason(sqlState: "28000"), .upstreamLogin, "no pg_hba.conf entry")
        XCTAssertEqual(PostgresProvider.connectReason(sqlState: "53300"), .upstreamBusy, "too many connections")
        XCTAssertEqual(PostgresProvider.connectReason(sqlState: "3D000"), .upstreamRefused, "no such database")
        XCTAssertEqual(PostgresProvider.statementReason(sqlState: "42501"), .upstreamDenied, "insufficient privilege")
        XCTAssertEqual(PostgresProvider.statementReason(sqlState: "57014"), .upstreamTimeout, "statement_timeout")
        XCTAssertEqual(PostgresProvider.statementReason(sqlState: "55P03"), .upstreamTimeout, "lock_timeout")
        XCTAssertEqual(PostgresProvider.statementReason(sqlState: "42601"), .upstreamRefused, "syntax error")
        XCTAssertEqual(PostgresProvider.statementReason(sqlState: nil), .upstreamUnreachable, "the connection failed under it")
    }

    func testAWaitThatRunsOutIsATimeout() async {
        do {
            _ = try await Deadline.run(seconds: 0.05, what: "X") { try await Task.sleep(nanoseconds: 2_000_000_000) }
            XCTFail("the deadline should have run out")
        } catch {
            XCTAssertEqual((error as? APIError)?.reason, .upstreamTimeout)
        }
    }
}
