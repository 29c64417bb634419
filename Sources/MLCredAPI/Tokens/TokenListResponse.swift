/// `GET /v1/tokens`.
public struct TokenListResponse: Codable, Sendable {
    public var tokens: [TokenInfo]

    public init(tokens: [TokenInfo]) { self.tokens = tokens }
}
