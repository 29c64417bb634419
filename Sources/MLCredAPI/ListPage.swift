/// Where a page of an admin list starts and how long it is (`?after=CURSOR&limit=N` on
/// `GET /v1/tokens` and `GET /v1/leases`): a list of a million tokens is read a page at a time,
/// never whole into the daemon's memory.
public struct ListPage: Sendable, Equatable {
    /// Items per page when the query does not say, and the most it may ask for.
    public static let defaultLimit = 1000
    public static let maximumLimit = 10000

    /// The last item of the previous page (an accessor, a lease id); nil for the first page.
    public var after: String?
    public var limit: Int

    public init(after: String? = nil, limit: Int = ListPage.defaultLimit) {
        self.after = after
        self.limit = limit
    }

    /// The page a query names, or why it names none. `after` must be a resource name.
    public init(query: [String: String]) throws(APIError) {
        var limit = Self.defaultLimit
        if let text = query["limit"] {
            guard let value = Int(text), value > 0, value <= Self.maximumLimit else {
                throw APIError(.invalidQuery, "'limit' must be a number from 1 to \(Self.maximumLimit)")
            }
            limit = value
        }
        if let after = query["after"], !ResourceName.isValid(after) {
            throw APIError(.invalidQuery, "'after' must be the cursor a previous page gave as 'next'")
        }
        self.init(after: query["after"], limit: limit)
    }

    /// The query of this page, to append to a path (`?` included), after any of `other`.
    public func query(_ other: [String] = []) -> String {
        let items = other + (after.map { ["after=\($0)"] } ?? []) + ["limit=\(limit)"]
        return "?" + items.joined(separator: "&")
    }

    /// Every item of a list, page after page from the first, as `fetch` reads one page.
    public static func collect<Item>(limit: Int = ListPage.defaultLimit,
                                     _ fetch: (ListPage) throws -> (items: [Item], next: String?)) rethrows -> [Item] {
        var items: [Item] = []
        var page = ListPage(limit: limit)
        while true {
            let answer = try fetch(page)
            items += answer.items
            // A cursor that does not move would loop for ever: stop there.
            guard let next = answer.next, next != page.after else { return items }
            page.after = next
        }
    }
}
