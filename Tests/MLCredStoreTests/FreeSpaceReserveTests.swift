import XCTest
@testable import MLCredStore

final class FreeSpaceReserveTests: XCTestCase {
    func testMinFreeSizesParse() {
        XCTAssertEqual(FreeSpaceReserve.parse("auto"), .automatic)
        XCTAssertEqual(FreeSpaceReserve.parse("0"), .bytes(0))
        XCTAssertEqual(FreeSpaceReserve.parse("512K"), .bytes(512 << 10))
        XCTAssertEqual(FreeSpaceReserve.parse("64M"), .bytes(64 << 20))
        XCTAssertEqual(FreeSpaceReserve.parse("64MiB"), .bytes(64 << 20))
        XCTAssertEqual(FreeSpaceReserve.parse("2g"), .bytes(2 << 30))
        for bad in ["", "M", "-1", "1.5G", "12T", "١٢M", "99999999999999999999G"] {
            XCTAssertNil(FreeSpaceReserve.parse(bad), bad)
        }
    }

    func testTheAutomaticReserveIsFivePercentCappedAt64MiB() throws {
        let reading = try XCTUnwrap(FreeSpaceReserve(directory: "/", size: .automatic).reading())
        var info = statvfs()
        XCTAssertEqual(statvfs("/", &info), 0)
        let total = UInt64(info.f_blocks) * UInt64(info.f_frsize)
        XCTAssertEqual(reading.reserve, min(64 << 20, total / 20))
        XCTAssertFalse(FreeSpaceReserve(directory: "/", size: .bytes(0)).isBelow)
        XCTAssertTrue(FreeSpaceReserve(directory: "/", size: .bytes(UInt64.max)).isBelow)
        XCTAssertThrowsError(try FreeSpaceReserve(directory: "/", size: .bytes(UInt64.max)).check(refusing: "new tokens"))
    }
}
