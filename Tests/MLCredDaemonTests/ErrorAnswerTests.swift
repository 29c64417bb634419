import MLCredAPI
@testable import MLCredDaemon
import XCTest

/// The error answers of SPEC §9: status from the code, body with code, reason and message.
final class ErrorAnswerTests: XCTestCase {
    func testAnErrorAnswerCarriesItsReasonAndTheStatusOfItsCode() throws {
        let answer = HTTPResponse.error(APIError(.secretMissing, "no secret named 'x'"))
        XCTAssertEqual(answer.status, 404)
        let body = try APIJSON.decode(APIErrorBody.self, from: answer.body)
        XCTAssertEqual(body.error.code, .notFound)
        XCTAssertEqual(body.error.reason, .secretMissing)
        XCTAssertEqual(body.error.message, "no secret named 'x'")
        XCTAssertNil(body.error.details)
    }

    func testEveryReasonIsAnsweredWithItsCodesStatus() throws {
        for reason in APIErrorReason.allCases {
            let answer = HTTPResponse.error(reason, "m")
            XCTAssertEqual(answer.status, reason.code.httpStatus, reason.rawValue)
            XCTAssertEqual(try APIJSON.decode(APIErrorBody.self, from: answer.body).error.reason, reason)
        }
    }
}
