import MLCredAPI
import MLCredStore
import Synchronization

/// Counters and histograms for `GET /v1/metrics` (Prometheus text format, version 0.0.4).
public final class Metrics: Sendable {
    /// Upper bounds of the issuance latency histogram, in seconds.
    static let buckets: [Double] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

    private struct Histogram {
        var counts = [Int](repeating: 0, count: Metrics.buckets.count)
        var sum = 0.0
        var count = 0
    }

    /// The statuses the API answers with (SPEC §9); anything else is counted under the last slot.
    static let statuses: [Int] = [200, 400, 401, 403, 404, 409, 413, 429, 500, 502, 503, 507, 0]

    /// What an issuance latency is recorded under.
    enum Operation: Int, CaseIterable {
        case token, credentials
        var label: String { self == .token ? "token" : "credentials" }
    }

    private struct State {
        /// Indexed by `Route.rawValue` (one extra row for unmatched paths) × `statuses` index.
        var requests = [Int](repeating: 0, count: (Route.allCases.count + 1) * Metrics.statuses.count)
        var issuance = [Histogram](repeating: Histogram(), count: Operation.allCases.count)
    }

    private let state = Mutex(State())
    /// Requests answered so far (what `IdleTrim` watches to tell an idle daemon).
    let answered = Atomic<Int>(0)
    /// Times the idle daemon gave memory back (`IdleTrim`).
    let idleTrims = Atomic<Int>(0)

    public init() {}

    /// Counts one answered request; `route` nil for a path no route matches.
    func record(route: Route?, status: Int) {
        let row = route?.rawValue ?? Route.allCases.count
        let column = Self.statuses.firstIndex(of: status) ?? (Self.statuses.count - 1)
        state.withLock { $0.requests[row * Self.statuses.count + column] += 1 }
        answered.add(1, ordering: .relaxed)
    }

    /// Records the latency of an issuance that succeeded.
    func observe(_ operation: Operation, seconds: Double) {
        state.withLock { state in
            for (index, bound) in Self.buckets.enumerated() where seconds <= bound { state.issuance[operation.rawValue].counts[index] += 1 }
            state.issuance[operation.rawValue].sum += seconds
            state.issuance[operation.rawValue].count += 1
        }
    }

    /// The exposition text, with the gauges read now.
    func render(tokens: Int, leases: Int, revocationsPending: Int, initialized: Bool, sealed: Bool,
                commits: CommitStatistics = CommitStatistics()) -> String {
        let snapshot = state.withLock { $0 }
        var out = "# HELP mlcred_requests_total Requests answered, by method, route and HTTP status.\n# TYPE mlcred_requests_total counter\n"
        for row in 0...Route.allCases.count {
            let route = Route(rawValue: row)
            for (column, status) in Self.statuses.enumerated() {
                let count = snapshot.requests[row * Self.statuses.count + column]
                guard count > 0 else { continue }
                out += "mlcred_requests_total{method=\"\(route?.method ?? "other")\",route=\"\(route?.label ?? "other")\",code=\"\(status == 0 ? "other" : String(status))\"} \(count)\n"
            }
        }
        out += "# HELP mlcred_issuance_seconds Time to issue a token or mint credentials, durable.\n# TYPE mlcred_issuance_seconds histogram\n"
        for operation in Operation.allCases {
            let histogram = snapshot.issuance[operation.rawValue]
            guard histogram.count > 0 else { continue }
            for (index, bound) in Self.buckets.enumerated() {
                out += "mlcred_issuance_seconds_bucket{op=\"\(operation.label)\",le=\"\(bound)\"} \(histogram.counts[index])\n"
            }
            out += "mlcred_issuance_seconds_bucket{op=\"\(operation.label)\",le=\"+Inf\"} \(histogram.count)\n"
            out += "mlcred_issuance_seconds_sum{op=\"\(operation.label)\"} \(histogram.sum)\n"
            out += "mlcred_issuance_seconds_count{op=\"\(operation.label)\"} \(histogram.count)\n"
        }
        out += "# HELP mlcred_tokens_active Live tokens.\n# TYPE mlcred_tokens_active gauge\nmlcred_tokens_active \(tokens)\n"
        out += "# HELP mlcred_leases_active Active leases.\n# TYPE mlcred_leases_active gauge\nmlcred_leases_active \(leases)\n"
        out += "# HELP mlcred_leases_revocation_pending Ended leases whose provider has not confirmed the revocation (retried with backoff).\n"
            + "# TYPE mlcred_leases_revocation_pending gauge\nmlcred_leases_revocation_pending \(revocationsPending)\n"
        out += "# HELP mlcred_store_transactions_total Store transactions committed (group commits).\n# TYPE mlcred_store_transactions_total counter\nmlcred_store_transactions_total \(commits.transactions)\n"
        out += "# HELP mlcred_store_writes_total Writes carried by those transactions.\n# TYPE mlcred_store_writes_total counter\nmlcred_store_writes_total \(commits.writes)\n"
        out += "# HELP mlcred_store_writer_busy_seconds_total Seconds the store's writer thread spent on batches (near the wall time elapsed, it is the bottleneck).\n"
            + "# TYPE mlcred_store_writer_busy_seconds_total counter\nmlcred_store_writer_busy_seconds_total \(commits.busySeconds)\n"
        out += "# HELP mlcred_store_commit_seconds_total Part of that time spent committing (SQLite: WAL writes and fsync).\n"
            + "# TYPE mlcred_store_commit_seconds_total counter\nmlcred_store_commit_seconds_total \(commits.commitSeconds)\n"
        out += "# HELP mlcred_idle_trims_total Times the idle daemon returned free heap pages and dropped its code mappings.\n# TYPE mlcred_idle_trims_total counter\nmlcred_idle_trims_total \(idleTrims.load(ordering: .relaxed))\n"
        out += "# HELP mlcred_vault_initialized 1 when the vault is initialized.\n# TYPE mlcred_vault_initialized gauge\nmlcred_vault_initialized \(initialized ? 1 : 0)\n"
        out += "# HELP mlcred_vault_sealed 1 when the vault is sealed.\n# TYPE mlcred_vault_sealed gauge\nmlcred_vault_sealed \(sealed ? 1 : 0)\n"
        return out
    }
}
