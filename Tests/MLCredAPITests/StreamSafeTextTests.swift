import XCTest
@testable import MLCredAPI

/// Unicode's stream-safe limit, on bytes and after JSON escapes (StreamSafeText's threat).
final class StreamSafeTextTests: XCTestCase {
    func testAtMostThirtyCombiningMarksInARow() {
        let marks = { (count: Int) in Array(("e" + String(repeating: "\u{301}", count: count)).utf8) }
        XCTAssertTrue(StreamSafeText.check(Array("plain ASCII".utf8)))
        XCTAssertTrue(StreamSafeText.check(marks(30)))
        XCTAssertFalse(StreamSafeText.check(marks(31)))
        // Runs are counted between starters, not in total; mixed classes count alike.
        XCTAssertTrue(StreamSafeText.check(Array(String(repeating: "e\u{301}\u{316}", count: 1000).utf8)))
        XCTAssertFalse(StreamSafeText.check(Array(("e" + String(repeating: "\u{301}\u{316}", count: 16)).utf8)))
        // A byte that is not UTF-8 ends a run (the JSON parser refuses such bytes anyway).
        XCTAssertTrue(StreamSafeText.check(marks(20) + [0xFF] + marks(20)))
    }

    func testTheJSONParserRefusesARunWrittenAsEscapes() {
        let escaped = "{\"k\": \"e" + String(repeating: "\\u0301", count: 31) + "\"}"
        XCTAssertThrowsError(try JSONParser.parse(Array(escaped.utf8))) { error in
            XCTAssertEqual((error as? JSONBodyError)?.description,
                           "a string has more than 30 combining marks in a row (Unicode's stream-safe limit)")
        }
        let key = "{\"e" + String(repeating: "\u{301}", count: 31) + "\": 1}"
        XCTAssertThrowsError(try JSONParser.parse(Array(key.utf8)))
        XCTAssertNoThrow(try JSONParser.parse(Array("{\"k\": \"caf\\u00e9 e\\u0301\"}".utf8)))
    }
}
