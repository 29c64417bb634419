import Dispatch

/// Runs CPU- or I/O-heavy work (Argon2id) on a dispatch queue, off both the NIO event loops
/// and Swift's cooperative pool, and awaits its result.
enum Blocking {
    private static let queue = DispatchQueue(label: "mlcred.blocking", qos: .userInitiated, attributes: .concurrent)

    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try body() })
            }
        }
    }
}
