import XCTest
@testable import MLCredAPI

final class ListPageTests: XCTestCase {
    func testAQueryNamesItsPageOrIsRefusedWithoutQuotingIt() throws {
        XCTAssertEqual(try ListPage(query: [:]), ListPage(after: nil, limit: 1000))
        XCTAssertEqual(try ListPage(query: ["limit": "10000", "after": "01a2b3"]), ListPage(after: "01a2b3", limit: 10000))
        for query in [["limit": "0"], ["limit": "10001"], ["limit": "-1"], ["limit": "ten"], ["after": "../x"], ["after": ""]] {
            XCTAssertThrowsError(try ListPage(query: query), "\(query)") { error in
                XCTAssertEqual((error as? APIError)?.reason, .invalidQuery)
                XCTAssertFalse((error as? APIError)?.message.contains("../x") ?? true)
            }
        }
        XCTAssertEqual(ListPage(after: "abc", limit: 5).query(["all=true"]), "?all=true&after=abc&limit=5")
        XCTAssertEqual(ListPage().query(), "?limit=1000")
    }

    func testCollectFollowsTheCursorToTheLastPageAndStopsOnOneThatDoesNotMove() {
        let items = Array(0..<25)
        var asked: [ListPage] = []
        let all = ListPage.collect(limit: 10) { page -> (items: [Int], next: String?) in
            asked.append(page)
            let start = page.after.map { Int($0)! + 1 } ?? 0
            let shown = Array(items[start..<min(start + page.limit, items.count)])
            return (shown, start + page.limit < items.count ? String(shown.last!) : nil)
        }
        XCTAssertEqual(all, items)
        XCTAssertEqual(asked.map(\.after), [nil, "9", "19"])
        var calls = 0
        let stuck = ListPage.collect { _ -> (items: [Int], next: String?) in
            calls += 1
            return ([calls], "same")
        }
        XCTAssertEqual(stuck, [1, 2], "a daemon that repeats its cursor does not loop the client for ever")
    }
}
