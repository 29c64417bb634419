/// `GET /v1/leases`: one page of leases, newest first.
public struct LeaseListResponse: Codable, Sendable {
    public var leases: [LeaseInfo]
    /// The cursor of the next page (`?after=NEXT`), absent on the last page.
    public var next: String?

    public init(leases: [LeaseInfo], next: String? = nil) {
        self.leases = leases
        self.next = next
    }
}
