import XCTest
@testable import MLCredProviders

final class PostgresTemplateTests: XCTestCase {
    let values = PostgresTemplate.Values(name: "mlc_train_abc", password: "Pw0rd", expiration: "2026-11-26T17:03:04.000Z")

    func testPlaceholdersInsideQuotesAreFilledAsTheyStand() {
        let rendered = PostgresTemplate.render(
            "CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'", values: values)
        XCTAssertEqual(rendered, "CREATE ROLE \"mlc_train_abc\" LOGIN PASSWORD 'Pw0rd' VALID UNTIL '2026-11-26T17:03:04.000Z'")
    }

    func testBarePlaceholdersAreQuotedSoAValueNeverBecomesSQL() {
        let hostile = PostgresTemplate.Values(name: "x\"; DROP TABLE t; --", password: "a'; DROP TABLE t; --", expiration: "e")
        XCTAssertEqual(PostgresTemplate.render("GRANT r TO {{name}}", values: hostile), "GRANT r TO \"x\"\"; DROP TABLE t; --\"")
        XCTAssertEqual(PostgresTemplate.render("ALTER ROLE r PASSWORD {{password}}", values: hostile),
                       "ALTER ROLE r PASSWORD 'a''; DROP TABLE t; --'")
        XCTAssertEqual(PostgresTemplate.render("GRANT r TO \"{{name}}\"", values: hostile), "GRANT r TO \"x\"\"; DROP TABLE t; --\"")
        XCTAssertEqual(PostgresTemplate.render("SELECT '{{password}}'", values: hostile), "SELECT 'a''; DROP TABLE t; --'")
    }

    func testUnknownPlaceholdersAndBracesPassThrough() {
        XCTAssertEqual(PostgresTemplate.render("SELECT '{{other}}', '{'", values: values), "SELECT '{{other}}', '{'")
    }

    func testRoleNamesArePrefixedSafeShortAndUnique() {
        let names = (0..<50).map { _ in PostgresTemplate.roleName(role: "Train-PHI.Ünïcode-" + String(repeating: "x", count: 80)) }
        XCTAssertEqual(Set(names).count, names.count)
        for name in names {
            XCTAssertTrue(name.hasPrefix("mlc_train_phi_"), name)
            XCTAssertLessThanOrEqual(name.utf8.count, 63)
            XCTAssertTrue(name.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") }, name)
        }
    }

    func testPasswordsAreLongAlphanumericAndFresh() {
        let first = PostgresTemplate.password()
        XCTAssertEqual(first.count, 40)
        XCTAssertTrue(first.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) })
        XCTAssertNotEqual(first, PostgresTemplate.password())
    }

    func testScramVerifierMatchesPythonsPBKDF2AndHMAC() {
        // Computed with hashlib.pbkdf2_hmac('sha256', b'pencil', b'0123456789abcdef', 4096) and hmac.
        XCTAssertEqual(PostgresTemplate.scramVerifier(password: "pencil", salt: Array("0123456789abcdef".utf8)),
                       "SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$nQpbZ77WudtqufPwikHXGRt6g2QJ4zns8bZLw273DRM=:jn2amWP1q1h+jgjy0YTO14S6/F02SV7taipOeB7ef20=")
    }

    func testRedactRemovesSecretsFromServerMessages() {
        XCTAssertEqual(PostgresTemplate.redact("syntax error at or near \"'Pw0rdPw0rd'\"", secrets: ["Pw0rdPw0rd"]),
                       "syntax error at or near \"'<redacted>'\"")
    }

    func testDefaultRevocationEndsSessionsDropsOwnedAndTheRole() {
        let rendered = (PostgresTemplate.lockoutStatements + PostgresTemplate.defaultRevokeStatements)
            .map { PostgresTemplate.render($0, values: values) }
        XCTAssertEqual(rendered.first, "ALTER ROLE \"mlc_train_abc\" NOLOGIN", "the login dies first")
        XCTAssertEqual(rendered.last, "DROP ROLE \"mlc_train_abc\"")
        XCTAssertTrue(rendered.contains("DROP OWNED BY \"mlc_train_abc\""))
        XCTAssertTrue(rendered.contains { $0.contains("pg_terminate_backend") && $0.contains("'mlc_train_abc'") })
    }
}

final class AWSProviderTests: XCTestCase {
    func testAmzDateIsCompactUTC() {
        XCTAssertEqual(AWSProvider.amzDate(epochSeconds: 1_440_938_160), "20150830T123600Z")
    }

    func testSourceIdentityKeepsOnlyWhatSTSAccepts() {
        XCTAssertEqual(AWSProvider.sourceIdentity("alice"), "alice")
        XCTAssertEqual(AWSProvider.sourceIdentity("uid:1234"), "uid-1234")
        XCTAssertEqual(AWSProvider.sourceIdentity("a"), "mlcred-a", "STS needs at least 2 characters")
        XCTAssertEqual(AWSProvider.sourceIdentity(String(repeating: "b", count: 100)).count, 64)
    }

    func testJobEnvironmentCarriesRegionAndEndpointOnly() {
        let secret = OpenedSecret(name: "aws", type: "aws", phi: false, fields: [
            "access_key_id": "AKIA", "secret_access_key": "s", "region": "eu-west-1", "endpoint_url": "http://127.0.0.1:5000",
        ])
        XCTAssertEqual(AWSProvider.jobEnvironment(secret: secret),
                       ["AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL_STS": "http://127.0.0.1:5000"])
    }
}
