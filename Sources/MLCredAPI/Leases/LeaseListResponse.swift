/// `GET /v1/leases`.
public struct LeaseListResponse: Codable, Sendable {
    public var leases: [LeaseInfo]

    public init(leases: [LeaseInfo]) { self.leases = leases }
}
