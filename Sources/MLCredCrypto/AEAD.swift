import CSodium

/// XChaCha20-Poly1305-IETF authenticated encryption with a random 192-bit nonce per message.
public enum AEAD {
    /// Key length in bytes.
    public static let keyLength = Int(crypto_aead_xchacha20poly1305_ietf_KEYBYTES)
    /// Nonce length in bytes; the nonce is stored in front of the ciphertext.
    public static let nonceLength = Int(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)
    static let tagLength = Int(crypto_aead_xchacha20poly1305_ietf_ABYTES)

    /// Encrypts `plaintext` bound to `associatedData`; returns nonce ‖ ciphertext ‖ tag.
    public static func seal(_ plaintext: [UInt8], key: SecureBytes, associatedData: [UInt8]) throws -> [UInt8] {
        guard key.count == keyLength else { throw CryptoError.invalidLength(expected: keyLength, actual: key.count) }
        let nonce = Sodium.randomBytes(nonceLength)
        var output = [UInt8](repeating: 0, count: plaintext.count + tagLength)
        var outputLength: UInt64 = 0
        try key.withKeyPointer { keyBytes in
            _ = crypto_aead_xchacha20poly1305_ietf_encrypt(
                &output, &outputLength,
                plaintext, UInt64(plaintext.count),
                associatedData, UInt64(associatedData.count),
                nil, nonce,
                keyBytes)
        }
        return nonce + output
    }

    /// Decrypts a value produced by `seal`. Throws `authenticationFailed` if the key, the
    /// ciphertext or the associated data differ from what was sealed.
    public static func open(_ sealed: [UInt8], key: SecureBytes, associatedData: [UInt8]) throws -> [UInt8] {
        guard key.count == keyLength else { throw CryptoError.invalidLength(expected: keyLength, actual: key.count) }
        guard sealed.count >= nonceLength + tagLength else { throw CryptoError.authenticationFailed }
        let nonce = Array(sealed[0..<nonceLength])
        let ciphertext = Array(sealed[nonceLength...])
        var output = [UInt8](repeating: 0, count: ciphertext.count - tagLength)
        var outputLength: UInt64 = 0
        let result = try key.withKeyPointer { keyBytes in
            crypto_aead_xchacha20poly1305_ietf_decrypt(
                &output, &outputLength, nil,
                ciphertext, UInt64(ciphertext.count),
                associatedData, UInt64(associatedData.count),
                nonce, keyBytes)
        }
        guard result == 0 else { throw CryptoError.authenticationFailed }
        return output
    }
}

extension AEAD {
    /// Seals key material held in guarded memory (e.g. wrapping the root key).
    public static func seal(secret: SecureBytes, key: SecureBytes, associatedData: [UInt8]) throws -> [UInt8] {
        try secret.withUnsafeBytes { raw in
            var plaintext = Array(raw.bindMemory(to: UInt8.self))
            defer { Sodium.wipe(&plaintext) }
            return try seal(plaintext, key: key, associatedData: associatedData)
        }
    }

    /// Opens sealed key material straight back into guarded memory.
    public static func openSecret(_ sealed: [UInt8], key: SecureBytes, associatedData: [UInt8]) throws -> SecureBytes {
        var plaintext = try open(sealed, key: key, associatedData: associatedData)
        defer { Sodium.wipe(&plaintext) }
        return try SecureBytes.copying(plaintext)
    }
}
