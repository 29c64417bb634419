import Synchronization

/// Resumes a continuation at most once.
final class OnceBox: Sendable {
    private let continuation: Mutex<CheckedContinuation<Void, Never>?>

    init(_ continuation: CheckedContinuation<Void, Never>) { self.continuation = Mutex(continuation) }

    func resume() {
        continuation.withLock { pending in
            pending?.resume()
            pending = nil
        }
    }
}
