/// `POST /v1/audit/verify`: every node's chain (SPEC §12), one per node of the store.
public struct AuditVerifyResponse: Codable, Sendable, Equatable {
    /// The last record of a chain, to compare with a copy kept elsewhere.
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
        /// The node whose chain broke.
        public var node: String?

        public init(seq: Int64, reason: String, node: String? = nil) {
            self.seq = seq
            self.reason = reason
            self.node = node
        }
    }

    /// One node's chain.
    public struct Chain: Codable, Sendable, Equatable {
        public var node: String
        public var checked: Int64
        public var head: Head?
        public var firstBroken: Broken?
        /// Records at the chain's end its node wrote while sealed: chained at that node's next unseal.
        public var pending: Int64

        enum CodingKeys: String, CodingKey {
            case node, checked, head, pending
            case firstBroken = "first_broken"
        }

        public init(node: String, checked: Int64, head: Head?, firstBroken: Broken?, pending: Int64 = 0) {
            self.pending = pending
            self.node = node
            self.checked = checked
            self.head = head
            self.firstBroken = firstBroken
        }
    }

    /// Every chain verified.
    public var ok: Bool
    /// Records checked, over all chains.
    public var checked: Int64
    /// The head of the answering node's chain.
    public var head: Head?
    /// The first broken record of the first broken chain (by node name), with its node.
    public var firstBroken: Broken?
    public var chains: [Chain]

    enum CodingKeys: String, CodingKey {
        case ok, checked, head, chains
        case firstBroken = "first_broken"
    }

    public init(ok: Bool, checked: Int64, head: Head?, firstBroken: Broken?, chains: [Chain] = []) {
        self.ok = ok
        self.checked = checked
        self.head = head
        self.firstBroken = firstBroken
        self.chains = chains
    }

    /// The summary of `chains`, as answered by `localNode`.
    public init(chains: [Chain], localNode: String) {
        let broken = chains.first { $0.firstBroken != nil }
        self.init(ok: broken == nil, checked: chains.reduce(0) { $0 + $1.checked },
                  head: chains.first { $0.node == localNode }?.head,
                  firstBroken: broken.flatMap { chain in chain.firstBroken.map { Broken(seq: $0.seq, reason: $0.reason, node: chain.node) } },
                  chains: chains)
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        ok = try container.decode(Bool.self, forKey: .ok)
        checked = try container.decode(Int64.self, forKey: .checked)
        head = try container.decodeIfPresent(Head.self, forKey: .head)
        firstBroken = try container.decodeIfPresent(Broken.self, forKey: .firstBroken)
        chains = try container.decodeIfPresent([Chain].self, forKey: .chains) ?? []
    }
}
