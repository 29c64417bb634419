import XCTest
import MLCredAPI

/// The hot routes' hand-written JSON must read what Foundation's decoder reads and write the
/// bytes its encoder writes: the client, the CLI and scripts rely on both.
final class JSONBodyTests: XCTestCase {
    private func parse<T: JSONBodyDecodable>(_ type: T.Type, _ text: String) throws -> T {
        try T(json: JSONObjectReader(JSONParser.parse(Array(text.utf8))))
    }

    func testTokenRequestReadsLikeTheCodableDecoder() throws {
        let text = #"{"role":"train","ttl":"30m","bind":"process","credentials":true,"aws":"defer","unknown":[1,{"x":null}]}"#
        let fast = try parse(TokenRequest.self, text)
        let slow = try APIJSON.decode(TokenRequest.self, from: Array(text.utf8))
        XCTAssertEqual([fast.role, fast.ttl], [slow.role, slow.ttl])
        XCTAssertEqual(fast.bind, .process)
        XCTAssertEqual(slow.bind, .process)
        XCTAssertEqual(fast.aws, .defer)
        XCTAssertEqual(slow.aws, .defer)
        XCTAssertEqual(fast.credentials, slow.credentials)
        let minimal = try parse(TokenRequest.self, #" { "role" : "r\u00e9le\n\"x\"" , "ttl": null } "#)
        XCTAssertEqual(minimal.role, "rôle\n\"x\"".replacingOccurrences(of: "ô", with: "é"))
        XCTAssertNil(minimal.ttl)
    }

    func testAnObjectThatRepeatsAKeyIsRefusedAtAnyDepth() {
        // Foundation's decoder keeps the first of two keys and this parser kept the last: a
        // body one reader takes as role "a" and another as role "b" is refused instead.
        for text in [#"{"role":"a","role":"b"}"#, #"{"role":"a","ttl":null,"ttl":null}"#,
                     #"{"role":"a","unknown":{"x":1,"y":[{"z":1,"z":1}]}}"#, #"{"role":"a","r\u006fle":"b"}"#] {
            XCTAssertThrowsError(try JSONParser.parse(Array(text.utf8)), text) { error in
                XCTAssertEqual((error as? JSONBodyError)?.description, "an object repeats a key", text)
            }
        }
        // The same key in different objects, and a key differing only in case, are not repeats.
        XCTAssertNoThrow(try JSONParser.parse(Array(#"{"a":{"k":1},"b":{"k":2},"K":[{"k":1},{"k":2}],"k":0}"#.utf8)))
    }

    func testAnUnknownModeIsRefusedNamingTheOnesAccepted() {
        XCTAssertThrowsError(try parse(TokenRequest.self, #"{"role":"r","bind":"thread"}"#)) { error in
            XCTAssertEqual((error as? JSONBodyError)?.description, #"field 'bind' must be one of "none", "process""#)
        }
        XCTAssertThrowsError(try parse(CredentialsRequest.self, #"{"aws":"later"}"#)) { error in
            XCTAssertEqual((error as? JSONBodyError)?.description, #"field 'aws' must be one of "mint", "defer", "only""#)
        }
        XCTAssertEqual(try parse(TokenRequest.self, #"{"role":"r","bind":"none"}"#).bind, TokenBinding.unbound)
    }

    func testMissingAndMistypedFieldsAreNamedWithoutQuotingValues() {
        XCTAssertThrowsError(try parse(TokenRequest.self, #"{"ttl":"1h"}"#)) { error in
            XCTAssertEqual((error as? JSONBodyError)?.description, "missing field 'role'")
        }
        XCTAssertThrowsError(try parse(TokenRequest.self, #"{"role":"secret-value-42","credentials":"yes"}"#)) { error in
            let message = (error as? JSONBodyError)?.description ?? ""
            XCTAssertEqual(message, "field 'credentials' has the wrong type")
        }
        XCTAssertThrowsError(try parse(CredentialsRequest.self, #"{"grants":["a",7]}"#)) { error in
            XCTAssertEqual((error as? JSONBodyError)?.description, "field 'grants.1' has the wrong type")
        }
        XCTAssertThrowsError(try parse(TokenRequest.self, #"["role"]"#))
    }

    func testMalformedJSONIsRefused() {
        for text in ["", "{", "{\"role\":}", "{\"role\":\"a\",}", "{\"role\":\"a\"} x", "{'role':'a'}", "{\"role\":\"a\u{1}\"}",
                     "{\"role\":01}", "{\"role\":\"\\ud800\"}", "{\"role\":\"\\q\"}", "{\"role\":tru}", "{\"role\":1e}", "nul"] {
            XCTAssertThrowsError(try JSONParser.parse(Array(text.utf8)), text)
        }
        XCTAssertThrowsError(try JSONParser.parse([0x22, 0xFF, 0x22]), "invalid UTF-8 is refused")
    }

    func testDeepNestingIsRefusedWithoutExhaustingTheStack() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        XCTAssertThrowsError(try JSONParser.parse(Array(deep.utf8))) { error in
            XCTAssertEqual((error as? JSONBodyError)?.description, "nested deeper than \(JSONParser.maxDepth) levels")
        }
        XCTAssertNoThrow(try JSONParser.parse(Array("[[[[1.5e3,-0,true,false,null,\"\\ud83d\\ude00\"]]]]".utf8)))
    }

    func testAnswersAreTheBytesTheCodableEncoderWrites() throws {
        let lease = LeaseInfo(id: "l1", accessor: "acc", role: "train", grant: "tracking", type: "jwt", providerID: "jti",
                              expiresAt: "2026-12-01T00:00:00.000Z", state: .active, lastError: nil)
        var failed = lease
        failed.lastError = "quote \" backslash \\ newline \n tab \t bell \u{7} slash / é"
        let credentials = CredentialsResponse(env: ["MLCRED_JWT": "a.b.c", "B": "x\"y"], files: [:], leases: [lease, failed],
                                              expiresAt: "2026-12-01T00:00:00.000Z", plain: ["B"],
                                              aws: [DeferredAWSGrant(grant: "s3", region: "eu-west-1", endpointURL: nil)])
        let token = TokenResponse(token: "mlc_x", accessor: "acc", role: "train", phi: false, expiresAt: "e", maxExpiresAt: "m",
                                  credentials: credentials)
        XCTAssertEqual(JSONWriter.encode(token), try APIJSON.encode(token))
        var bare = token
        bare.credentials = nil
        XCTAssertEqual(JSONWriter.encode(bare), try APIJSON.encode(bare))
        let info = TokenInfo(accessor: "a", role: "r", phi: true, uid: 1000, user: nil, pid: -1, bound: true, issuedAt: "i",
                             expiresAt: "e", maxExpiresAt: "m", state: .active, revokeReason: "why")
        XCTAssertEqual(JSONWriter.encode(info), try APIJSON.encode(info))
        let revocation = RevocationResponse(revoked: true, unconfirmed: [failed], stillValid: [lease])
        XCTAssertEqual(JSONWriter.encode(revocation), try APIJSON.encode(revocation))
    }

    func testTheClientsRequestsAndAnswersRoundTripLikeTheCodableCoders() throws {
        let request = TokenRequest(role: "train", ttl: "30m", bind: .process, credentials: true, aws: .defer)
        XCTAssertEqual(JSONWriter.encode(request), try APIJSON.encode(request))
        let bare = TokenRequest(role: "train", ttl: nil, bind: nil)
        XCTAssertEqual(JSONWriter.encode(bare), try APIJSON.encode(bare))
        XCTAssertEqual(JSONWriter.encode(CredentialsRequest(grants: ["a", "b"], aws: .only)), try APIJSON.encode(CredentialsRequest(grants: ["a", "b"], aws: .only)))
        XCTAssertEqual(JSONWriter.encode(RenewRequest(ttl: "1h")), try APIJSON.encode(RenewRequest(ttl: "1h")))

        let lease = LeaseInfo(id: "l1", accessor: "acc", role: "train", grant: "g", type: "jwt", providerID: "jti",
                              expiresAt: "e", state: .revokeFailed, lastError: "boom")
        let answer = TokenResponse(token: "mlc_x", accessor: "acc", role: "train", phi: true, expiresAt: "e", maxExpiresAt: "m",
                                   credentials: CredentialsResponse(env: ["K": "v\u{1}"], files: [:], leases: [lease], expiresAt: "e",
                                                                    plain: nil, aws: [DeferredAWSGrant(grant: "s3", region: nil, endpointURL: "http://127.0.0.1:5000")]))
        let text = try APIJSON.encode(answer)
        let read = try JSONObjectReader.decode(TokenResponse.self, from: text)
        XCTAssertEqual(try APIJSON.encode(read), text, "every field survives")
        let info = TokenInfo(accessor: "a", role: "r", phi: false, uid: 4_000_000_000, user: "ünï", pid: 42, bound: false, issuedAt: "i",
                             expiresAt: "e", maxExpiresAt: "m", state: .active, revokeReason: nil)
        XCTAssertEqual(try JSONObjectReader.decode(TokenInfo.self, from: try APIJSON.encode(info)), info)
        XCTAssertThrowsError(try JSONObjectReader.decode(TokenInfo.self, from: Array(#"{"uid":1.5}"#.utf8)))
    }
}
