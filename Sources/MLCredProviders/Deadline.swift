import MLCredAPI
import Synchronization

/// Bounds a provider call in time, whatever the peer does (a body trickled a byte at a time,
/// a server that stops answering mid-session). The caller gets its answer or an `upstream_timeout`
/// error when the time is up; the call itself is cancelled and left to unwind on its own.
public enum Deadline {
    /// Runs `operation`, or throws `upstream_timeout` "`what`: no answer within N s" after `seconds`.
    public static func run<T: Sendable>(seconds: Double, what: String,
                                        _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let state = State()
        return try await withCheckedThrowingContinuation { continuation in
            let work = Task {
                let result: Result<T, any Error>
                do { result = .success(try await operation()) } catch { result = .failure(error) }
                if state.claim() {
                    state.timer.withLock { $0?.cancel() }
                    continuation.resume(with: result)
                }
            }
            let timer = Task {
                try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
                if Task.isCancelled { return }
                if state.claim() {
                    work.cancel()
                    continuation.resume(throwing: APIError(.upstreamTimeout, "\(what): no answer within \(Int(seconds)) s"))
                }
            }
            state.timer.withLock { $0 = timer }
        }
    }

    /// Who answered first, and the timer to stop when the work wins.
    private final class State: Sendable {
        let settled = Mutex(false)
        let timer = Mutex<Task<Void, Never>?>(nil)

        /// True for the first caller only.
        func claim() -> Bool {
            settled.withLock { done in
                defer { done = true }
                return !done
            }
        }
    }
}
