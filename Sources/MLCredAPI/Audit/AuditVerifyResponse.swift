/// `POST /v1/audit/verify`.
public struct AuditVerifyResponse: Codable, Sendable, Equatable {
    /// The last record of the chain, to compare with a copy kept elsewhere.
    public struct Head: Codable, Sendable, Equatable {
        public var seq: Int64
        public var mac: String

        public init(seq: Int64, mac: String) {
            self.seq = seq
            self.mac = mac
        }
    }

    /// The first record that failed, and why.
    public struct Broken: Codable, Sendable, Equatable {
        public var seq: Int64
        public var reason: String

        public init(seq: Int64, reason: String) {
            self.seq = seq
            self.reason = reason
        }
    }

    public var ok: Bool
    public var checked: Int64
    public var head: Head?
    public var firstBroken: Broken?

    enum CodingKeys: String, CodingKey {
        case ok, checked, head
        case firstBroken = "first_broken"
    }

    public init(ok: Bool, checked: Int64, head: Head?, firstBroken: Broken?) {
        self.ok = ok
        self.checked = checked
        self.head = head
        self.firstBroken = firstBroken
    }
}
