import MLCredAPI
import Synchronization

/// At most `limit` broker connections at once per PostgreSQL server and login; further
/// operations wait their turn, first come first served, for at most `waitSeconds`.
///
/// Threat (availability): a sweep of a few hundred jobs started together would otherwise open
/// as many broker connections at once, and every job past the server's `max_connections` (or
/// the broker role's CONNECTION LIMIT) would fail with 53300 instead of waiting a moment.
final class ConnectionGate: Sendable {
    let limit: Int
    let waitSeconds: Double
    private let lines = Mutex<[String: Line]>([:])
    private let nextID = Atomic<UInt64>(0)

    private struct Line {
        var active = 0
        var waiting: [(id: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
    }

    init(limit: Int, waitSeconds: Double) {
        self.limit = limit
        self.waitSeconds = waitSeconds
    }

    /// Runs `body` holding one of `key`'s places; throws `upstream_busy` if none frees up in time.
    func withPlace<T: Sendable>(_ key: String, what: String, _ body: () async throws -> T) async throws -> T {
        try await acquire(key, what: what)
        defer { release(key) }
        return try await body()
    }

    /// Operations running and waiting for `key` (for tests).
    func usage(_ key: String) -> (active: Int, waiting: Int) {
        lines.withLock { ($0[key]?.active ?? 0, $0[key]?.waiting.count ?? 0) }
    }

    private func acquire(_ key: String, what: String) async throws {
        let entered = lines.withLock { lines -> Bool in
            var line = lines[key] ?? Line()
            defer { lines[key] = line }
            guard line.active < limit else { return false }
            line.active += 1
            return true
        }
        if entered { return }
        let id = nextID.add(1, ordering: .relaxed).newValue
        let timer = Task { [waitSeconds] in
            try? await Task.sleep(nanoseconds: UInt64(waitSeconds * 1e9))
            if !Task.isCancelled {
                self.abandon(key, id: id, APIError(.upstreamBusy, "\(what): \(self.limit) broker connections stayed busy for \(Int(waitSeconds)) s"))
            }
        }
        defer { timer.cancel() }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                lines.withLock { $0[key, default: Line()].waiting.append((id, continuation)) }
                // Cancelled before it joined the line: the handler found nothing to take out.
                if Task.isCancelled { abandon(key, id: id, CancellationError()) }
            }
        } onCancel: {
            abandon(key, id: id, CancellationError())
        }
    }

    /// Takes waiter `id` out of line (timed out or cancelled), if it is still waiting.
    private func abandon(_ key: String, id: UInt64, _ error: any Error) {
        let waiter = lines.withLock { lines -> CheckedContinuation<Void, any Error>? in
            guard let index = lines[key]?.waiting.firstIndex(where: { $0.id == id }) else { return nil }
            return lines[key]?.waiting.remove(at: index).continuation
        }
        waiter?.resume(throwing: error)
    }

    /// Hands the place to the next in line, or frees it.
    private func release(_ key: String) {
        let next = lines.withLock { lines -> CheckedContinuation<Void, any Error>? in
            guard var line = lines[key] else { return nil }
            defer { lines[key] = line.active == 0 && line.waiting.isEmpty ? nil : line }
            if line.waiting.isEmpty {
                line.active -= 1
                return nil
            }
            return line.waiting.removeFirst().continuation
        }
        next?.resume()
    }
}
