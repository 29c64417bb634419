/// `GET /v1/tokens`: one page of live tokens, in issue order.
public struct TokenListResponse: Codable, Sendable {
    public var tokens: [TokenInfo]
    /// The cursor of the next page (`?after=NEXT`), absent on the last page.
    public var next: String?

    public init(tokens: [TokenInfo], next: String? = nil) {
        self.tokens = tokens
        self.next = next
    }
}
