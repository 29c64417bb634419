import XCTest
import MLCredCrypto

final class HexTests: XCTestCase {
    override func setUp() {
        XCTAssertNoThrow(try Sodium.initialize())
    }

    func testHexIsLowerCaseTwoDigitsPerByteHighNibbleFirst() {
        XCTAssertEqual(Hex.encode([]), "")
        XCTAssertEqual(Hex.encode([0x00, 0x0F, 0xF0, 0xFF, 0x12, 0xAB]), "000ff0ff12ab")
        for byte in UInt8.min...UInt8.max {
            let digits = String(byte, radix: 16)
            XCTAssertEqual(Hex.encode([byte]), digits.count == 1 ? "0" + digits : digits)
        }
    }

    func testTheSHA256OfNothingIsItsPublishedDigest() {
        // FIPS 180-2's empty-message digest: the text SigV4 puts in x-amz-content-sha256 for an empty body.
        XCTAssertEqual(Hex.encode(SHA256.hash([])), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }
}
