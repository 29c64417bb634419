import CSodium

/// Shamir secret sharing over GF(256), the AES field (x^8 + x^4 + x^3 + x + 1): a secret of
/// 1 to 64 bytes becomes N shares of which any K recover it and K−1 reveal nothing about it.
///
/// Each byte of the secret is the constant term of its own polynomial of degree K−1 whose
/// other coefficients are fresh libsodium random bytes; share number x (1...N) holds every
/// polynomial evaluated at x. The secret, the coefficients and every share value live in
/// guarded memory (`SecureBytes`) and never in an ordinary array.
public enum Shamir {
    /// The largest secret `split` takes: a root key is 32 bytes, and 64 covers every libsodium
    /// key while keeping a share short enough to type.
    public static let maximumSecretLength = 64
    /// The most shares of one secret: the nonzero elements of GF(256), one x coordinate each.
    public static let maximumShares = 255
    /// The smallest threshold: with K = 1 every share would be a plain copy of the secret.
    public static let minimumThreshold = 2

    /// One share of a split secret: its split's identifier, the threshold, its number (the
    /// x coordinate) and its value, which stays in guarded memory.
    public struct Share: Sendable {
        /// Length of `splitID` in bytes: enough that two splits an admin could mix up differ
        /// (a collision needs about 2^16 splits), short enough not to lengthen the share much.
        public static let splitIDLength = 4

        /// Random bytes, the same in every share of one split and drawn anew for each split.
        public let splitID: [UInt8]
        /// How many distinct shares of this split recover the secret (K).
        public let threshold: Int
        /// The share's number, its x coordinate: 1...255, distinct within a split.
        public let x: UInt8
        /// The polynomials evaluated at `x`, one byte per byte of the secret.
        let value: SecureBytes

        /// Checks the fields and takes ownership of `value`.
        init(splitID: [UInt8], threshold: Int, x: UInt8, value: SecureBytes) throws {
            guard splitID.count == Share.splitIDLength else {
                throw ShamirError.invalidShare("its split identifier has \(splitID.count) bytes, not \(Share.splitIDLength)")
            }
            guard (Shamir.minimumThreshold...Shamir.maximumShares).contains(threshold) else {
                throw ShamirError.invalidShare("its threshold is \(threshold), not one from \(Shamir.minimumThreshold) to \(Shamir.maximumShares)")
            }
            guard x != 0 else {
                // Threat: the share at x = 0 would be the secret itself.
                throw ShamirError.invalidShare("its number is 0, which no share may have")
            }
            guard (1...Shamir.maximumSecretLength).contains(value.count) else {
                throw ShamirError.invalidShare("it holds \(value.count) bytes, not 1 to \(Shamir.maximumSecretLength)")
            }
            self.splitID = splitID
            self.threshold = threshold
            self.x = x
            self.value = value
        }

        /// Length of the secret this share belongs to, in bytes.
        public var length: Int { value.count }

        /// The split identifier as 8 lower-case hex digits, for messages and audit records
        /// (it is not secret: it says which split a share belongs to, nothing about the value).
        public var splitIDHex: String { Hex.encode(splitID) }

        /// Zeroes the share's value now; a wiped share can no longer be combined or encoded.
        public func wipe() { value.wipe() }
    }

    /// Splits `secret` into `shares` shares, any `threshold` of which recover it.
    ///
    /// Throws `ShamirError` for a secret of 0 or more than `maximumSecretLength` bytes, fewer
    /// than 2 or more than 255 shares, or a threshold below 2 or above `shares`.
    public static func split(_ secret: SecureBytes, shares count: Int, threshold: Int) throws -> [Share] {
        try checkSplit(secretLength: secret.count, shares: count, threshold: threshold)
        try Sodium.initialize()
        // Threat: a coefficient reused across bytes or splits would let shares of one be solved
        // with shares of another; every byte of every split gets its own random coefficients.
        let coefficients = try SecureBytes.random(count: secret.count * (threshold - 1))
        defer { coefficients.wipe() }
        return try split(secret, shares: count, threshold: threshold,
                         splitID: Sodium.randomBytes(Share.splitIDLength), coefficients: coefficients)
    }

    /// `split` with the split identifier and coefficients given: for byte i of the secret, the
    /// coefficient of x^k (k = 1...threshold−1) is `coefficients[i * (threshold − 1) + k − 1]`.
    /// Deterministic, for tests that enumerate coefficients.
    static func split(_ secret: SecureBytes, shares count: Int, threshold: Int,
                      splitID: [UInt8], coefficients: SecureBytes) throws -> [Share] {
        try checkSplit(secretLength: secret.count, shares: count, threshold: threshold)
        let length = secret.count
        let degree = threshold - 1
        guard coefficients.count == length * degree else {
            throw CryptoError.invalidLength(expected: length * degree, actual: coefficients.count)
        }
        var shares: [Share] = []
        shares.reserveCapacity(count)
        for number in 1...count {
            let x = UInt8(number)
            let value = try SecureBytes.filled(count: length) { out in
                try secret.withKeyPointer { secretBytes in
                    try coefficients.withKeyPointer { coefficientBytes in
                        for i in 0..<length {
                            // Horner's rule from the highest coefficient down to the secret byte.
                            var y: UInt8 = 0
                            for k in stride(from: degree, through: 1, by: -1) {
                                y = GF256.multiply(y, x) ^ coefficientBytes[i * degree + k - 1]
                            }
                            out[i] = GF256.multiply(y, x) ^ secretBytes[i]
                        }
                    }
                }
            }
            shares.append(try Share(splitID: splitID, threshold: threshold, x: x, value: value))
        }
        return shares
    }

    private static func checkSplit(secretLength: Int, shares count: Int, threshold: Int) throws {
        guard (1...maximumSecretLength).contains(secretLength) else {
            throw ShamirError.invalidSecretLength(secretLength)
        }
        guard (minimumThreshold...maximumShares).contains(count) else {
            throw ShamirError.invalidShareCount(count)
        }
        guard (minimumThreshold...count).contains(threshold) else {
            throw ShamirError.invalidThreshold(threshold, shares: count)
        }
    }

    /// Checks that `shares` can belong together, whether or not there are enough of them yet:
    /// one split, one length, no number twice. What a collector of shares runs on each new one.
    public static func validate(_ shares: [Share]) throws {
        guard let first = shares.first else { throw ShamirError.noShares }
        for share in shares {
            guard share.splitID == first.splitID, share.threshold == first.threshold else {
                throw ShamirError.differentSplits(share.splitIDHex, first.splitIDHex)
            }
            guard share.length == first.length else {
                throw ShamirError.mismatchedLengths(share.length, first.length)
            }
        }
        for (index, share) in shares.enumerated() {
            for earlier in shares[..<index] where earlier.x == share.x {
                // One object given twice is one share (and its lock must not be taken twice).
                let same = try share.value === earlier.value || share.value.withKeyPointer { a in
                    try earlier.value.withKeyPointer { b in sodium_memcmp(a, b, share.length) == 0 }
                }
                throw same ? ShamirError.duplicateShare(x: share.x) : ShamirError.conflictingShares(x: share.x)
            }
        }
    }

    /// Recovers the secret from at least `threshold` distinct shares of one split.
    ///
    /// With more shares than the threshold, the extra ones must lie on the same polynomials:
    /// a damaged or forged extra share is refused (`inconsistentShares`) rather than ignored.
    public static func combine(_ shares: [Share]) throws -> SecureBytes {
        try validate(shares)
        let threshold = shares[0].threshold
        guard shares.count >= threshold else {
            throw ShamirError.notEnoughShares(have: shares.count, need: threshold)
        }
        let basis = Array(shares.prefix(threshold))
        let secret = try interpolate(basis, at: 0)
        for extra in shares.dropFirst(threshold) {
            let expected = try interpolate(basis, at: extra.x)
            defer { expected.wipe() }
            let agrees = try expected.withKeyPointer { a in
                try extra.value.withKeyPointer { b in sodium_memcmp(a, b, extra.length) == 0 }
            }
            guard agrees else {
                secret.wipe()
                throw ShamirError.inconsistentShares(x: extra.x)
            }
        }
        return secret
    }

    /// The polynomials through `points` (distinct nonzero x, equal lengths) evaluated at `x`,
    /// by Lagrange interpolation: the sum of y_j · Π_{m≠j} (x − x_m) / (x_j − x_m).
    static func interpolate(_ points: [Share], at x: UInt8) throws -> SecureBytes {
        let length = points[0].length
        // The basis weights depend only on the x coordinates, which are public.
        let weights = points.indices.map { j in
            var numerator: UInt8 = 1
            var denominator: UInt8 = 1
            for m in points.indices where m != j {
                numerator = GF256.multiply(numerator, x ^ points[m].x)
                denominator = GF256.multiply(denominator, points[j].x ^ points[m].x)
            }
            return GF256.multiply(numerator, GF256.inverse(denominator))
        }
        return try SecureBytes.filled(count: length) { out in
            out.initialize(repeating: 0, count: length)
            for (j, point) in points.enumerated() {
                try point.value.withKeyPointer { y in
                    for i in 0..<length {
                        out[i] ^= GF256.multiply(weights[j], y[i])
                    }
                }
            }
        }
    }
}

/// Arithmetic in GF(256) with the AES polynomial x^8 + x^4 + x^3 + x + 1 (0x11B).
///
/// Threat: a multiplication through log/exp tables indexes memory with secret bytes, and the
/// cache lines it touches can be observed by other code on the machine. These routines use
/// only shifts, masks and xors, with no branch or index that depends on their operands.
enum GF256 {
    /// The product of `a` and `b` ("Russian peasant" multiplication, reducing by 0x11B).
    @inline(__always)
    static func multiply(_ a: UInt8, _ b: UInt8) -> UInt8 {
        var a = a
        var b = b
        var product: UInt8 = 0
        for _ in 0..<8 {
            product ^= a & (0 &- (b & 1))
            let carry = 0 &- (a >> 7)
            a = (a << 1) ^ (0x1B & carry)
            b >>= 1
        }
        return product
    }

    /// The multiplicative inverse of `a` (a^254, since a^255 = 1); 0 for 0.
    static func inverse(_ a: UInt8) -> UInt8 {
        var result: UInt8 = 1
        var power = a
        // 254 = 2 + 4 + ... + 128: square seven times, multiplying each square in.
        for _ in 0..<7 {
            power = multiply(power, power)
            result = multiply(result, power)
        }
        return result
    }
}

/// Why a split, a combination or a share's text was refused. Messages name the problem and
/// what to do; they never contain share or secret bytes.
public enum ShamirError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The secret to split is empty or longer than `Shamir.maximumSecretLength`.
    case invalidSecretLength(Int)
    /// The number of shares is outside 2...255.
    case invalidShareCount(Int)
    /// The threshold is below 2 or above the number of shares.
    case invalidThreshold(Int, shares: Int)
    /// No share was given.
    case noShares
    /// Shares from two different splits (split identifiers in hex: this share's, the first's).
    case differentSplits(String, String)
    /// Shares of secrets of different lengths (this share's, the first's).
    case mismatchedLengths(Int, Int)
    /// The same share was given twice.
    case duplicateShare(x: UInt8)
    /// Two different shares carry the same number.
    case conflictingShares(x: UInt8)
    /// Fewer shares than the threshold.
    case notEnoughShares(have: Int, need: Int)
    /// An extra share beyond the threshold does not agree with the others.
    case inconsistentShares(x: UInt8)
    /// A share whose fields no split produces (the text says which).
    case invalidShare(String)
    /// The text is not a share at all.
    case notAShare
    /// A share of a format version this build does not read.
    case unsupportedVersion(String)
    /// The text is shaped like a share but a field is missing or unreadable (the text says which).
    case malformed(String)
    /// A character that shares never contain, with its 1-based position in the text.
    case invalidCharacter(Character, position: Int)
    /// The checksum does not match: a character was mistyped, left out or added.
    case checksumMismatch

    /// What went wrong, for the person who typed the share.
    public var description: String {
        switch self {
        case .invalidSecretLength(let length):
            "a secret to split must be 1 to \(Shamir.maximumSecretLength) bytes long, not \(length)"
        case .invalidShareCount(let count):
            "the number of shares must be from \(Shamir.minimumThreshold) to \(Shamir.maximumShares), not \(count)"
        case .invalidThreshold(let threshold, let shares):
            "the threshold must be from \(Shamir.minimumThreshold) to the number of shares (\(shares)), not \(threshold)"
        case .noShares:
            "no share was given"
        case .differentSplits(let this, let first):
            "shares from different splits: this share belongs to split \(this), the first one to split \(first)"
        case .mismatchedLengths(let this, let first):
            "shares of different lengths: this share holds \(this) bytes, the first one \(first)"
        case .duplicateShare(let x):
            "share number \(x) was given twice; each share counts once"
        case .conflictingShares(let x):
            "two different shares both carry number \(x): one of them is damaged or forged"
        case .notEnoughShares(let have, let need):
            "\(have) of \(need) shares given: \(need - have) more needed"
        case .inconsistentShares(let x):
            "share number \(x) does not agree with the others: one of the shares is damaged or forged"
        case .invalidShare(let why):
            "not a valid share: \(why)"
        case .notAShare:
            "not an mlcred share: a share starts with mlcs1- followed by the threshold, the share number and groups of letters and digits"
        case .unsupportedVersion(let version):
            "unsupported version: this is a version \(version) share and this mlcred reads version \(ShareText.version)"
        case .malformed(let why):
            "malformed share: \(why)"
        case .invalidCharacter(let character, let position):
            "character \(position) ('\(character)') does not occur in shares: check it against the original"
        case .checksumMismatch:
            "checksum mismatch: a character was mistyped (or one is missing or extra); check the share against the original"
        }
    }
}
