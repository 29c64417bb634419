import CSodium

/// Argon2id (libsodium `crypto_pwhash`, ALG_ARGON2ID13) parameters, stored beside what they protect.
public struct PasswordKDFParameters: Codable, Equatable, Sendable {
    /// Number of passes (libsodium opslimit).
    public var opsLimit: UInt64
    /// Memory in bytes (libsodium memlimit).
    public var memLimit: UInt64

    public init(opsLimit: UInt64, memLimit: UInt64) {
        self.opsLimit = opsLimit
        self.memLimit = memLimit
    }

    /// libsodium's MODERATE setting (3 passes, 256 MiB): the default for a vault passphrase.
    public static let moderate = PasswordKDFParameters(
        opsLimit: UInt64(crypto_pwhash_OPSLIMIT_MODERATE), memLimit: UInt64(crypto_pwhash_MEMLIMIT_MODERATE))

    /// libsodium's minimum (1 pass, 8 KiB). UNSAFE: offers almost no resistance to guessing.
    /// Only for test suites, enabled explicitly by `MLCRED_UNSAFE_TEST_KDF=1`.
    public static let unsafeTestOnly = PasswordKDFParameters(
        opsLimit: UInt64(crypto_pwhash_OPSLIMIT_MIN), memLimit: UInt64(crypto_pwhash_MEMLIMIT_MIN))
}

/// Derives keys from passphrases with Argon2id.
public enum PasswordKDF {
    /// Salt length in bytes.
    public static let saltLength = Int(crypto_pwhash_SALTBYTES)

    /// Derives a `length`-byte key from `passphrase`. Blocking and memory-hard: call it off
    /// any event loop.
    public static func deriveKey(
        passphrase: [UInt8], salt: [UInt8], parameters: PasswordKDFParameters, length: Int = AEAD.keyLength
    ) throws -> SecureBytes {
        guard salt.count == saltLength else { throw CryptoError.invalidLength(expected: saltLength, actual: salt.count) }
        return try SecureBytes.filled(count: length) { out in
            var passChars = passphrase.map { CChar(bitPattern: $0) }
            defer {
                if !passChars.isEmpty { sodium_memzero(&passChars, passChars.count) }
            }
            let result = crypto_pwhash(
                out, UInt64(length), passChars, UInt64(passChars.count),
                salt, parameters.opsLimit, Int(parameters.memLimit), crypto_pwhash_ALG_ARGON2ID13)
            if result != 0 { throw CryptoError.keyDerivationFailed }
        }
    }
}
