import CSodium

/// Ed25519 signing keys (libsodium `crypto_sign`).
public enum Ed25519 {
    /// Public key length in bytes.
    public static let publicKeyLength = Int(crypto_sign_PUBLICKEYBYTES)
    /// Secret key length in bytes (seed ‖ public key, libsodium layout).
    public static let secretKeyLength = Int(crypto_sign_SECRETKEYBYTES)

    /// A new key pair; the secret half is created directly in guarded memory.
    public static func generateKeyPair() throws -> (publicKey: [UInt8], secretKey: SecureBytes) {
        var publicKey = [UInt8](repeating: 0, count: publicKeyLength)
        let secretKey = try SecureBytes.filled(count: secretKeyLength) { out in
            _ = crypto_sign_keypair(&publicKey, out)
        }
        return (publicKey, secretKey)
    }

    /// A detached 64-byte signature of `message`.
    public static func sign(_ message: [UInt8], secretKey: SecureBytes) throws -> [UInt8] {
        guard secretKey.count == secretKeyLength else {
            throw CryptoError.invalidLength(expected: secretKeyLength, actual: secretKey.count)
        }
        var signature = [UInt8](repeating: 0, count: Int(crypto_sign_BYTES))
        try secretKey.withKeyPointer { sk in
            _ = crypto_sign_detached(&signature, nil, message, UInt64(message.count), sk)
        }
        return signature
    }

    /// Whether `signature` is a valid signature of `message` by `publicKey`.
    public static func verify(_ signature: [UInt8], message: [UInt8], publicKey: [UInt8]) -> Bool {
        guard signature.count == Int(crypto_sign_BYTES), publicKey.count == publicKeyLength else { return false }
        return crypto_sign_verify_detached(signature, message, UInt64(message.count), publicKey) == 0
    }
}
