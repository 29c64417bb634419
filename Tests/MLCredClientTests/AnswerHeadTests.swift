import XCTest
@testable import MLCredClient

/// `HTTPConnection.parseHead`: the daemon's answer heads, read as bytes.
final class AnswerHeadTests: XCTestCase {
    private func parse(_ text: String) -> (status: Int?, contentLength: Int, close: Bool) {
        HTTPConnection.parseHead(ArraySlice(Array(text.utf8)))
    }

    func testStatusLengthAndKeepAliveAreRead() {
        let head = parse("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1234\r\nconnection: keep-alive\r\ncache-control: no-store")
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.contentLength, 1234)
        XCTAssertFalse(head.close)
    }

    func testHeaderNamesAndCloseMatchInAnyCaseWithSpacesAndTabsAround() {
        let head = parse("HTTP/1.1 403 Forbidden\r\nContent-Length:\t 17 \r\nCONNECTION:  Close\t")
        XCTAssertEqual(head.status, 403)
        XCTAssertEqual(head.contentLength, 17)
        XCTAssertTrue(head.close)
    }

    func testAStatusLineWithoutAReasonAndTheInterimContinueAreRead() {
        XCTAssertEqual(parse("HTTP/1.1 100").status, 100)
        XCTAssertEqual(parse("HTTP/1.1 100 Continue").contentLength, 0)
    }

    func testWhatIsNotANumberOrNotAStatusLineIsRefusedOrZero() {
        XCTAssertNil(parse("HTTP/1.1").status)
        XCTAssertNil(parse("HTTP/1.1 2x0 OK").status)
        XCTAssertNil(parse("").status)
        XCTAssertEqual(parse("HTTP/1.1 200 OK\r\ncontent-length: -5").contentLength, 0)
        XCTAssertEqual(parse("HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999999").contentLength, 0)
        XCTAssertEqual(parse("HTTP/1.1 200 OK\r\ncontent-length: ").contentLength, 0)
        // Only the exact names count; a longer or shorter one is another header.
        XCTAssertEqual(parse("HTTP/1.1 200 OK\r\ncontent-lengths: 5\r\nx-connection: close").contentLength, 0)
        XCTAssertFalse(parse("HTTP/1.1 200 OK\r\nx-connection: close\r\nconnection: closed").close)
        // A line without a colon is skipped, the rest still read.
        XCTAssertEqual(parse("HTTP/1.1 200 OK\r\ngarbage\r\ncontent-length: 3").contentLength, 3)
    }
}
