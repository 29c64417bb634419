import CSodium

/// Errors raised by the crypto layer. Messages never contain key material.
public enum CryptoError: Error, Equatable, Sendable {
    /// libsodium could not be initialised (no entropy source).
    case initializationFailed
    /// Authenticated decryption failed: wrong key, or the data or its associated data changed.
    case authenticationFailed
    /// Guarded memory could not be allocated (RLIMIT_MEMLOCK too low, or out of memory).
    case allocationFailed
    /// Argon2id could not run with the requested parameters (usually out of memory).
    case keyDerivationFailed
    /// The key was wiped (the vault was sealed) before this use.
    case keyWiped
    /// An input had the wrong length.
    case invalidLength(expected: Int, actual: Int)
}

/// Process-wide libsodium set-up.
public enum Sodium {
    /// Initialises libsodium once; safe to call repeatedly and from any thread.
    public static func initialize() throws {
        if sodium_init() < 0 { throw CryptoError.initializationFailed }
    }

    /// `count` bytes from the operating system's CSPRNG.
    public static func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        if count > 0 { randombytes_buf(&bytes, count) }
        return bytes
    }

    /// `length` characters drawn uniformly from `alphabet` (libsodium's unbiased `randombytes_uniform`).
    public static func randomString(length: Int, alphabet: String) -> String {
        let characters = Array(alphabet)
        precondition(!characters.isEmpty, "empty alphabet")
        return String((0..<length).map { _ in characters[Int(randombytes_uniform(UInt32(characters.count)))] })
    }

    /// Constant-time comparison of two byte strings of equal length.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        guard !a.isEmpty else { return true }
        return sodium_memcmp(a, b, a.count) == 0
    }

    /// Overwrites `bytes` with zeros in a way the compiler may not elide.
    public static func wipe(_ bytes: inout [UInt8]) {
        if !bytes.isEmpty { sodium_memzero(&bytes, bytes.count) }
        bytes.removeAll()
    }
}
