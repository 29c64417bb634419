import Foundation
import XCTest
import MLCredAPI
import MLCredPolicy
@testable import MLCredProviders

final class STSProtocolTests: XCTestCase {
    func grant(_ type: GrantType) -> Grant {
        var grant = Grant(name: "s3", secret: "aws-main", type: type, line: 1)
        grant.roleARN = "arn:aws:iam::123456789012:role/train"
        grant.sessionPolicy = #"{"Version":"2012-10-17","Statement":[]}"#
        grant.sessionTags = ["team": "ml"]
        return grant
    }

    func testAssumeRoleNamesTheRoleSessionSourceIdentityPolicyAndTags() {
        let parameters = Dictionary(uniqueKeysWithValues: STSProtocol.parameters(
            grant: grant(.awsAssumeRole), sessionName: "mlcred-alice-abc", sourceIdentity: "alice"))
        XCTAssertEqual(parameters["Action"], "AssumeRole")
        XCTAssertEqual(parameters["RoleArn"], "arn:aws:iam::123456789012:role/train")
        XCTAssertEqual(parameters["RoleSessionName"], "mlcred-alice-abc")
        XCTAssertEqual(parameters["SourceIdentity"], "alice")
        XCTAssertEqual(parameters["Policy"], #"{"Version":"2012-10-17","Statement":[]}"#)
        XCTAssertEqual(parameters["Tags.member.1.Key"], "team")
        XCTAssertEqual(parameters["DurationSeconds"], "3600", "default session 1 h")
    }

    func testSessionsAreNeverShorterThanThirtyMinutes() {
        var short = grant(.awsSessionToken)
        short.durationSeconds = 900
        let parameters = Dictionary(uniqueKeysWithValues: STSProtocol.parameters(grant: short, sessionName: "x", sourceIdentity: "y"))
        XCTAssertEqual(parameters["DurationSeconds"], "1800")
        XCTAssertEqual(parameters["Action"], "GetSessionToken")
    }

    func testSessionNamesAreSanitisedAndBounded() {
        let name = STSProtocol.sessionName(subject: "uid:1001 (bob)", accessor: String(repeating: "a", count: 24))
        XCTAssertEqual(name, "mlcred-uid-1001--bob--" + String(repeating: "a", count: 24))
        let long = STSProtocol.sessionName(subject: String(repeating: "x", count: 100), accessor: "0193a1b2c3d4e5f6a7b8c9d0")
        XCTAssertEqual(long.count, 64)
        XCTAssertTrue(long.hasSuffix("-0193a1b2c3d4e5f6a7b8c9d0"), "a long principal is cut, never the accessor: \(long)")
        // Two tokens of one user issued in the same millisecond share the accessor's time half.
        XCTAssertNotEqual(STSProtocol.sessionName(subject: "bob", accessor: "0193a1b2c3d4000000000001"),
                          STSProtocol.sessionName(subject: "bob", accessor: "0193a1b2c3d4000000000002"))
    }

    func testTheRequestIsAFormPostSignedForSTS() throws {
        let signer = SigV4Signer(credentials: .init(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "secret"), region: "us-east-1", service: "sts")
        let endpoint = try XCTUnwrap(STSProtocol.endpoint(region: "us-east-1", endpointURL: "http://127.0.0.1:5000"))
        XCTAssertEqual(endpoint.host, "127.0.0.1:5000")
        let request = STSProtocol.request(parameters: [("Action", "GetCallerIdentity"), ("Version", "2011-06-15")], signer: signer,
                                          endpoint: endpoint, amzDate: "20261126T120000Z")
        XCTAssertEqual(String(decoding: request.body, as: UTF8.self), "Action=GetCallerIdentity&Version=2011-06-15")
        let authorization = request.headers.first { $0.0 == "authorization" }?.1 ?? ""
        XCTAssertTrue(authorization.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261126/us-east-1/sts/aws4_request"))
        XCTAssertFalse(request.headers.contains { $0.1.contains("secret") }, "the secret key is never sent")
        XCTAssertEqual(STSProtocol.endpoint(region: "eu-west-1", endpointURL: nil)?.url, "https://sts.eu-west-1.amazonaws.com/")
    }

    func testOnlyPlainHostPortEndpointsAreAccepted() {
        XCTAssertEqual(EndpointURL.parse("http://[::1]:5000/")?.authority, "[::1]:5000")
        XCTAssertEqual(EndpointURL.parse("https://sts.example.com")?.url, "https://sts.example.com/")
        for bad in ["http://127.0.0.1:99999/", "http://127.0.0.1:0", "http://user:pw@127.0.0.1/", "http://127.0.0.1/path",
                    "http://127.0.0.1/?q=1", "http://", "ftp://x", "http://x\n[profile y]", "http://127.0.0.1:", "http://[::1"] {
            XCTAssertNil(EndpointURL.parse(bad), bad)
        }
    }

    func testAnswersAndErrorsAreRead() throws {
        let ok = """
            <AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIAEXAMPLEKEY000</AccessKeyId>\
            <SecretAccessKey>s3cr&amp;amp;t</SecretAccessKey><SessionToken>tok</SessionToken>\
            <Expiration>2026-11-26T13:00:00Z</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>
            """
        let credentials = try STSProtocol.parse(status: 200, body: Array(ok.utf8))
        XCTAssertEqual(credentials, .init(accessKeyID: "ASIAEXAMPLEKEY000", secretAccessKey: "s3cr&amp;t", sessionToken: "tok", expiration: "2026-11-26T13:00:00Z"))
        let refused = "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error></ErrorResponse>"
        XCTAssertThrowsError(try STSProtocol.parse(status: 403, body: Array(refused.utf8))) { error in
            XCTAssertEqual((error as? APIError)?.reason, .upstreamSignature)
            XCTAssertEqual((error as? APIError)?.code, .upstream)
            XCTAssertEqual((error as? APIError)?.message, "STS refused the request: SignatureDoesNotMatch: The request signature we calculated does not match")
        }
        let hostile = "<Error><Code>X</Code><Message>line\n\u{1B}[31mfake\(String(repeating: "m", count: 5000))</Message></Error>"
        XCTAssertThrowsError(try STSProtocol.parse(status: 400, body: Array(hostile.utf8))) { error in
            let message = (error as? APIError)?.message ?? ""
            XCTAssertFalse(message.contains("\n") || message.contains("\u{1B}"), "no control characters reach terminals or the audit log")
            XCTAssertLessThan(message.count, 400)
        }
        let odd = ok.replacingOccurrences(of: "ASIAEXAMPLEKEY000", with: "ASIA\nKEY")
        XCTAssertThrowsError(try STSProtocol.parse(status: 200, body: Array(odd.utf8)), "a key id of another shape is refused")
    }

    func testFormBodiesEncodeSpacesAsPlusAndEverythingElseReservedAsPercent() {
        XCTAssertEqual(STSProtocol.formEncode(#"{"Effect": "Allow", "Action": "s3:*"}"#),
                       "%7B%22Effect%22%3A+%22Allow%22%2C+%22Action%22%3A+%22s3%3A%2A%22%7D")
        XCTAssertEqual(STSProtocol.formEncode("a-b_c.d~e"), "a-b_c.d~e")
    }
}
