import CSodium
import Synchronization

/// Key material in libsodium guarded memory (`sodium_malloc`): locked out of swap,
/// fenced by guard pages, read-only while at rest, and zeroed when wiped or released.
///
/// Threat: a key copied into ordinary heap memory can outlive its use in a core dump,
/// in swap, or in a freed page reused by other code. Keys never leave this type except
/// through `withUnsafeBytes`, for the duration of one libsodium call.
public final class SecureBytes: @unchecked Sendable {
    // Safety of @unchecked Sendable: the buffer is written only during init; afterwards it
    // is read-only (sodium_mprotect_readonly) until `wipe`, which takes `lock`.
    private let pointer: UnsafeMutableRawPointer
    /// Number of bytes held.
    public let count: Int
    /// Whether the bytes were wiped; the lock every use of the key takes.
    private let wiped = Mutex(false)

    private init(count: Int) throws {
        guard let pointer = sodium_malloc(count) else { throw CryptoError.allocationFailed }
        self.pointer = pointer
        self.count = count
    }

    /// `count` random bytes, generated directly into guarded memory.
    public static func random(count: Int) throws -> SecureBytes {
        let key = try SecureBytes(count: count)
        randombytes_buf(key.pointer, count)
        key.seal()
        return key
    }

    /// Copies `bytes` into guarded memory. The caller should wipe its own copy.
    public static func copying(_ bytes: [UInt8]) throws -> SecureBytes {
        let key = try SecureBytes(count: bytes.count)
        bytes.withUnsafeBytes { source in
            if let base = source.baseAddress { key.pointer.copyMemory(from: base, byteCount: bytes.count) }
        }
        key.seal()
        return key
    }

    /// Fills fresh guarded memory through `body` (e.g. a KDF writing its output in place).
    public static func filled(count: Int, _ body: (UnsafeMutablePointer<UInt8>) throws -> Void) throws -> SecureBytes {
        let key = try SecureBytes(count: count)
        do {
            try body(key.pointer.assumingMemoryBound(to: UInt8.self))
        } catch {
            key.wipe()
            throw error
        }
        key.seal()
        return key
    }

    private func seal() {
        sodium_mprotect_readonly(pointer)
    }

    /// Whether `wipe()` has been called.
    public var isWiped: Bool { wiped.withLock { $0 } }

    /// Gives read access to the key as a byte pointer (what libsodium takes); throws `keyWiped` once wiped.
    public func withKeyPointer<R>(_ body: (UnsafePointer<UInt8>) throws -> R) throws -> R {
        try wiped.withLock { (wiped: inout Bool) throws -> R in
            guard !wiped else { throw CryptoError.keyWiped }
            return try body(UnsafePointer(pointer.assumingMemoryBound(to: UInt8.self)))
        }
    }

    /// Whether these bytes equal `bytes`, compared in constant time; false once wiped.
    public func holds(_ bytes: [UInt8]) -> Bool {
        guard bytes.count == count else { return false }
        return (try? withKeyPointer { sodium_memcmp($0, bytes, count) == 0 }) ?? false
    }

    /// Zeroes the bytes now; the object stays valid but must not be used for crypto again.
    public func wipe() {
        wiped.withLock { wiped in
            guard !wiped else { return }
            sodium_mprotect_readwrite(pointer)
            sodium_memzero(pointer, count)
            wiped = true
        }
    }

    /// Gives read access to the key for the duration of `body`; throws `keyWiped` once wiped.
    /// Threat: a request racing a `seal` must fail, not encrypt or MAC under a zeroed key.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        try wiped.withLock { (wiped: inout Bool) throws -> R in
            guard !wiped else { throw CryptoError.keyWiped }
            return try body(UnsafeRawBufferPointer(start: pointer, count: count))
        }
    }

    deinit {
        // sodium_free zeroes the memory before releasing it.
        sodium_mprotect_readwrite(pointer)
        sodium_free(pointer)
    }
}
