import CSodium

/// SHA-256 and HMAC-SHA-256 (libsodium), for protocols that prescribe them (AWS Signature V4).
public enum SHA256 {
    /// SHA-256 of `message`.
    public static func hash(_ message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(crypto_hash_sha256_BYTES))
        _ = crypto_hash_sha256(&out, message, UInt64(message.count))
        return out
    }

    /// HMAC-SHA-256 of `message` under `key` (any length).
    public static func hmac(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        var state = crypto_auth_hmacsha256_state()
        var out = [UInt8](repeating: 0, count: Int(crypto_auth_hmacsha256_BYTES))
        _ = crypto_auth_hmacsha256_init(&state, key, key.count)
        _ = crypto_auth_hmacsha256_update(&state, message, UInt64(message.count))
        _ = crypto_auth_hmacsha256_final(&state, &out)
        sodium_memzero(&state, MemoryLayout<crypto_auth_hmacsha256_state>.size)
        return out
    }

    /// PBKDF2-HMAC-SHA256 (RFC 8018), one 32-byte block: what SCRAM-SHA-256 salts passwords with.
    public static func pbkdf2(password: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8] {
        var block = hmac(key: password, salt + [0, 0, 0, 1])
        var out = block
        for _ in 1..<max(1, iterations) {
            block = hmac(key: password, block)
            for index in out.indices { out[index] ^= block[index] }
        }
        return out
    }
}
