import CSodium

/// Derives independent sub-keys from a 256-bit master key (libsodium `crypto_kdf`, BLAKE2b).
public enum KeyDerivation {
    /// The purposes keys are derived for; each has its own id and 8-byte context, so a key
    /// for one purpose can never be used for another.
    public enum Purpose: Sendable {
        case secretEncryption
        case auditChain
        case tokenHash
        /// Wraps the random data keys of later key generations (`vault rotate`).
        case dataKeyWrapping

        var id: UInt64 {
            switch self {
            case .secretEncryption: 1
            case .auditChain: 2
            case .tokenHash: 3
            case .dataKeyWrapping: 4
            }
        }

        var context: [CChar] {
            let text: String
            switch self {
            case .secretEncryption: text = "mlcsecrt"
            case .auditChain: text = "mlcaudit"
            case .tokenHash: text = "mlctoken"
            case .dataKeyWrapping: text = "mlcdekwr"
            }
            return text.utf8.map { CChar(bitPattern: $0) }
        }
    }

    /// A 32-byte sub-key of `master` for `purpose`.
    public static func subkey(of master: SecureBytes, for purpose: Purpose) throws -> SecureBytes {
        guard master.count == Int(crypto_kdf_KEYBYTES) else {
            throw CryptoError.invalidLength(expected: Int(crypto_kdf_KEYBYTES), actual: master.count)
        }
        let context = purpose.context
        return try SecureBytes.filled(count: 32) { out in
            let result = try master.withKeyPointer { masterBytes in
                crypto_kdf_derive_from_key(
                    out, 32, purpose.id, context,
                    masterBytes)
            }
            if result != 0 { throw CryptoError.keyDerivationFailed }
        }
    }
}
