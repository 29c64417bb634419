import XCTest
import MLCredCrypto
@testable import MLCredProviders

final class SigV4SignerTests: XCTestCase {
    /// The GET Object example of the Amazon S3 Signature Version 4 documentation.
    func testTheDocumentedS3GetObjectExampleSignsToItsPublishedSignature() {
        let signer = SigV4Signer(
            credentials: .init(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            region: "us-east-1", service: "s3")
        let emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        let headers = [("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9"), ("x-amz-content-sha256", emptyHash),
                       ("x-amz-date", "20130524T000000Z")]
        let (canonical, signed) = signer.canonicalRequest(method: "GET", path: "/test.txt", query: "", headers: headers, body: [])
        XCTAssertEqual(signed, "host;range;x-amz-content-sha256;x-amz-date")
        XCTAssertEqual(Hex.encode(SHA256.hash(Array(canonical.utf8))), "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972")
        let authorization = signer.authorizationHeader(method: "GET", path: "/test.txt", query: "", headers: headers, body: [],
                                                       amzDate: "20130524T000000Z")
        XCTAssertEqual(authorization, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    func testQueryParametersAreSortedAndEncoded() {
        XCTAssertEqual(SigV4Signer.canonicalQuery("b=2&a=x%20y&a=1"), "a=1&a=x%20y&b=2")
        XCTAssertEqual(SigV4Signer.uriEncode("a b/c~"), "a%20b%2Fc~")
    }

    func testSessionCredentialsAddTheSecurityToken() {
        let signer = SigV4Signer(credentials: .init(accessKeyID: "A", secretAccessKey: "S", sessionToken: "T"), region: "eu-west-1", service: "sts")
        let added = signer.sign(method: "POST", path: "/", query: "", headers: [("host", "sts.eu-west-1.amazonaws.com")],
                                body: Array("Action=GetCallerIdentity&Version=2011-06-15".utf8), amzDate: "20261126T120000Z")
        XCTAssertEqual(added.map(\.0), ["x-amz-date", "x-amz-security-token", "authorization"])
        XCTAssertTrue(added[2].1.contains("SignedHeaders=host;x-amz-date;x-amz-security-token"))
    }
}
