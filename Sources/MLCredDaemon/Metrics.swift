import MLCredAPI
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

    private struct State {
        var requests: [String: Int] = [:]   // "method route code" → count
        var issuance: [String: Histogram] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// Counts one answered request.
    func record(method: String, route: String, status: Int) {
        state.withLock { $0.requests["\(method) \(route) \(status)", default: 0] += 1 }
    }

    /// Records the latency of an issuance (`token` or `credentials`) that succeeded.
    func observe(operation: String, seconds: Double) {
        state.withLock { state in
            var histogram = state.issuance[operation] ?? Histogram()
            for (index, bound) in Self.buckets.enumerated() where seconds <= bound { histogram.counts[index] += 1 }
            histogram.sum += seconds
            histogram.count += 1
            state.issuance[operation] = histogram
        }
    }

    /// The exposition text, with the gauges read now.
    func render(tokens: Int, leases: Int, revocationsPending: Int, initialized: Bool, sealed: Bool) -> String {
        let snapshot = state.withLock { $0 }
        var out = "# HELP mlcred_requests_total Requests answered, by method, route and HTTP status.\n# TYPE mlcred_requests_total counter\n"
        for key in snapshot.requests.keys.sorted() {
            let parts = key.split(separator: " ", maxSplits: 2).map(String.init)
            out += "mlcred_requests_total{method=\"\(parts[0])\",route=\"\(parts[1])\",code=\"\(parts[2])\"} \(snapshot.requests[key] ?? 0)\n"
        }
        out += "# HELP mlcred_issuance_seconds Time to issue a token or mint credentials, durable.\n# TYPE mlcred_issuance_seconds histogram\n"
        for operation in snapshot.issuance.keys.sorted() {
            guard let histogram = snapshot.issuance[operation] else { continue }
            for (index, bound) in Self.buckets.enumerated() {
                out += "mlcred_issuance_seconds_bucket{op=\"\(operation)\",le=\"\(bound)\"} \(histogram.counts[index])\n"
            }
            out += "mlcred_issuance_seconds_bucket{op=\"\(operation)\",le=\"+Inf\"} \(histogram.count)\n"
            out += "mlcred_issuance_seconds_sum{op=\"\(operation)\"} \(histogram.sum)\n"
            out += "mlcred_issuance_seconds_count{op=\"\(operation)\"} \(histogram.count)\n"
        }
        out += "# HELP mlcred_tokens_active Live tokens.\n# TYPE mlcred_tokens_active gauge\nmlcred_tokens_active \(tokens)\n"
        out += "# HELP mlcred_leases_active Active leases.\n# TYPE mlcred_leases_active gauge\nmlcred_leases_active \(leases)\n"
        out += "# HELP mlcred_leases_revocation_pending Ended leases whose provider has not confirmed the revocation (retried with backoff).\n"
            + "# TYPE mlcred_leases_revocation_pending gauge\nmlcred_leases_revocation_pending \(revocationsPending)\n"
        out += "# HELP mlcred_vault_initialized 1 when the vault is initialized.\n# TYPE mlcred_vault_initialized gauge\nmlcred_vault_initialized \(initialized ? 1 : 0)\n"
        out += "# HELP mlcred_vault_sealed 1 when the vault is sealed.\n# TYPE mlcred_vault_sealed gauge\nmlcred_vault_sealed \(sealed ? 1 : 0)\n"
        return out
    }

    /// Every route template; anything else is counted as `other`, so labels stay bounded.
    static let templates: Set<String> = [
        "/v1/status", "/v1/whoami", "/v1/vault/init", "/v1/vault/unseal", "/v1/vault/seal", "/v1/secrets",
        "/v1/secrets/{name}", "/v1/secrets/{name}/generate", "/v1/tokens", "/v1/tokens/renew", "/v1/tokens/revoke",
        "/v1/tokens/{accessor}/revoke", "/v1/credentials", "/v1/leases", "/v1/leases/{id}/revoke", "/v1/jwks",
        "/v1/policies", "/v1/policies/reload", "/v1/policies/explain", "/v1/audit", "/v1/audit/verify", "/v1/metrics",
    ]

    /// The route template of a path (`/v1/secrets/{name}`), or `other`.
    static func routeLabel(_ path: String) -> String {
        var parts = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        if parts.count >= 3 {
            switch parts[1] {
            case "secrets": parts[2] = "{name}"
            case "tokens" where parts.count == 4: parts[2] = "{accessor}"
            case "leases": parts[2] = "{id}"
            default: break
            }
        }
        let template = "/" + parts.joined(separator: "/")
        return templates.contains(template) ? template : "other"
    }
}
