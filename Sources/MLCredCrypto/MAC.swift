import CSodium

/// Keyed BLAKE2b (libsodium `crypto_generichash`), 32-byte output.
public enum MAC {
    /// Output length in bytes.
    public static let length = 32

    /// BLAKE2b-256 of `message` keyed with `key`.
    public static func blake2b(_ message: [UInt8], key: SecureBytes) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: length)
        try key.withKeyPointer { keyBytes in
            _ = crypto_generichash(
                &out, length, message, UInt64(message.count),
                keyBytes, key.count)
        }
        return out
    }
}

extension MAC {
    /// Unkeyed BLAKE2b of `message` with `length` output bytes (16...64), for identifiers.
    public static func hash(_ message: [UInt8], length: Int = 32) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: length)
        _ = crypto_generichash(&out, length, message, UInt64(message.count), nil, 0)
        return out
    }
}
