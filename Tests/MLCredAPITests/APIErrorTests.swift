import Foundation
import XCTest
import MLCredAPI

final class APIErrorTests: XCTestCase {
    func testEveryReasonBelongsToACodeAndEveryCodeHasAReason() {
        let codes = Set(APIErrorReason.allCases.map(\.code))
        XCTAssertEqual(codes, Set(APIErrorCode.allCases), "a code no reason raises cannot be told apart from an unknown one")
        for reason in APIErrorReason.allCases {
            XCTAssertTrue([400, 401, 403, 404, 409, 413, 429, 500, 502, 503, 507].contains(reason.code.httpStatus), reason.rawValue)
        }
    }

    func testReasonsAreUniqueSnakeCaseWords() {
        let raw = APIErrorReason.allCases.map(\.rawValue)
        XCTAssertEqual(Set(raw).count, raw.count)
        for word in raw {
            let bytes = Array(word.utf8)
            XCTAssertTrue(bytes.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 95 }, word)
            XCTAssertTrue(bytes.first.map { $0 >= 97 && $0 <= 122 } ?? false, word)
            XCTAssertFalse(word.hasSuffix("_") || word.contains("__"), word)
        }
    }

    func testSPECNamedReasonsKeepTheirWordsAndCodes() {
        // Stable words clients branch on: renaming one breaks them.
        let expected: [(APIErrorReason, String, APIErrorCode)] = [
            (.secretMissing, "secret_missing", .notFound), (.roleDenied, "role_denied", .denied),
            (.tokenOtherUID, "token_other_uid", .denied), (.tokenUnknown, "token_unknown", .unauthenticated),
            (.notAdmin, "not_admin", .denied), (.wrongPassphrase, "wrong_passphrase", .denied),
            (.storeUnavailable, "store_unavailable", .unavailable), (.storeFull, "store_full", .storeFull),
            (.sealed, "sealed", .sealed), (.uninitialized, "uninitialized", .uninitialized),
        ]
        for (reason, word, code) in expected {
            XCTAssertEqual(reason.rawValue, word)
            XCTAssertEqual(reason.code, code, word)
        }
        XCTAssertEqual(APIErrorCode.unavailable.httpStatus, 503)
        XCTAssertEqual(APIErrorCode.storeFull.httpStatus, 507)
    }

    func testTheErrorBodyCarriesCodeReasonAndMessage() throws {
        let error = APIError(.tokenOtherUID, "this token belongs to another user")
        XCTAssertEqual(error.code, .denied)
        XCTAssertEqual(String(decoding: try APIJSON.encode(error.body), as: UTF8.self),
                       #"{"error":{"code":"denied","message":"this token belongs to another user","reason":"token_other_uid"}}"#)
        let detailed = APIError(.policyInvalid, "policy reload failed", details: ["a.toml:1: bad"])
        let decoded = try APIJSON.decode(APIErrorBody.self, from: try APIJSON.encode(detailed.body))
        XCTAssertEqual(decoded, detailed.body)
        XCTAssertEqual(decoded.error.details, ["a.toml:1: bad"])
    }

    func testABodyWithoutAReasonOrWithAnUnknownOneStillDecodes() throws {
        let older = try APIJSON.decode(APIErrorBody.self, from: Array(#"{"error":{"code":"rate_limited","message":"too many"}}"#.utf8))
        XCTAssertEqual(older.error.code, .rateLimited)
        XCTAssertNil(older.error.reason)
        let newer = try APIJSON.decode(APIErrorBody.self,
                                       from: Array(#"{"error":{"code":"denied","reason":"a_reason_from_the_future","message":"no"}}"#.utf8))
        XCTAssertEqual(newer.error.code, .denied)
        XCTAssertNil(newer.error.reason)
        XCTAssertEqual(newer.error.message, "no")
    }

    func testDocsListEveryReasonWithItsCodeAndStatus() throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/api.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        // The rows of the reasons table: from its heading to the next one.
        guard let start = text.range(of: "\n### Reasons\n") else { return XCTFail("docs/api.md has no '### Reasons' section") }
        let section = text[start.upperBound...].prefix { $0 != "#" }
        var documented: [String: (code: String, status: String)] = [:]
        for line in section.split(separator: "\n") where line.hasPrefix("| `") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count >= 4 else { continue }
            documented[cells[0].trimmingCharacters(in: CharacterSet(charactersIn: "`"))] = (cells[1], cells[2])
        }
        for reason in APIErrorReason.allCases {
            guard let row = documented[reason.rawValue] else {
                XCTFail("docs/api.md has no row for reason \(reason.rawValue)")
                continue
            }
            XCTAssertEqual(row.code, reason.code.rawValue, reason.rawValue)
            XCTAssertEqual(row.status, String(reason.code.httpStatus), reason.rawValue)
        }
    }
}
