import Glibc

/// A small pthread mutex, so the crypto module needs nothing beyond libc.
final class Mutex: @unchecked Sendable {
    private let handle = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    init() { pthread_mutex_init(handle, nil) }

    deinit {
        pthread_mutex_destroy(handle)
        handle.deallocate()
    }

    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(handle)
        defer { pthread_mutex_unlock(handle) }
        return try body()
    }
}
