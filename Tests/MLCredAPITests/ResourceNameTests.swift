import XCTest
import MLCredAPI

final class ResourceNameTests: XCTestCase {
    func testLettersDigitsDotsUnderscoresAndDashesUpToTheLimitAreNames() {
        for name in ["a", "Z", "9lives", "_private", "db.prod", "aws-prod_Readonly.v2", "a.", "a-", String(repeating: "x", count: ResourceName.maxLength)] {
            XCTAssertTrue(ResourceName.isValid(name), name)
        }
    }

    func testEmptyTooLongLeadingDotOrDashAndOtherCharactersAreRefused() {
        let refused = [
            "", String(repeating: "x", count: ResourceName.maxLength + 1),
            ".hidden", "..", "-rf", "a/b", "../a", "a?force=true", "a#b", "a%2fb", "a b", " a", "a\n", "a\0", "é", "a:b", "a@b",
        ]
        for name in refused {
            XCTAssertFalse(ResourceName.isValid(name), name.debugDescription)
        }
    }

    func testTheRequirementStatesTheLimit() {
        XCTAssertEqual(ResourceName.maxLength, 128)
        XCTAssertEqual(ResourceName.requirement, "use 1-128 letters, digits, '.', '_' or '-', not starting with '.' or '-'")
    }
}
