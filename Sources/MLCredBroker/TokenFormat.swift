import MLCredCrypto
import MLCredVault

/// Token text (SPEC §7): `mlc_` + base62 of 32 random bytes (43 characters) + a 6-character
/// base62 CRC32 of that part, so secret scanners can recognise a token and typos fail fast.
public enum TokenFormat {
    static let prefix = "mlc_"
    static let bodyLength = 43
    static let checkLength = 6
    static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    /// A fresh random token.
    public static func generate() -> String {
        let body = base62(Sodium.randomBytes(32), width: bodyLength)
        return prefix + body + check(body)
    }

    /// Whether `text` has the shape and checksum of a token (says nothing about validity).
    /// Byte by byte, with no string made: this runs on every `Authorization: Bearer`.
    public static func isWellFormed(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        let prefixBytes = prefix.utf8
        guard bytes.count == prefixBytes.count + bodyLength + checkLength, bytes.starts(with: prefixBytes) else { return false }
        let body = bytes[prefixBytes.count..<(prefixBytes.count + bodyLength)]
        let given = bytes[(prefixBytes.count + bodyLength)...]
        guard body.allSatisfy({ isDigit[Int($0)] }), given.allSatisfy({ isDigit[Int($0)] }) else { return false }
        return given.elementsEqual(checkDigits(body))
    }

    static func check(_ body: String) -> String {
        String(decoding: checkDigits(Array(body.utf8)), as: UTF8.self)
    }

    /// The checksum's characters: base62 of the body's CRC-32, big-endian, 6 wide.
    static func checkDigits(_ body: some Collection<UInt8>) -> [UInt8] {
        let crc = CRC32.checksum(body)
        return digits([UInt8(crc >> 24), UInt8((crc >> 16) & 0xFF), UInt8((crc >> 8) & 0xFF), UInt8(crc & 0xFF)], width: checkLength)
    }

    /// Whether a byte is one of `alphabet`'s, by value.
    static let isDigit: [Bool] = (0..<256).map { byte in alphabet.contains(UInt8(byte)) }

    /// Big-endian bytes as base62, left-padded with '0' to `width`.
    static func base62(_ bytes: [UInt8], width: Int) -> String {
        String(decoding: digits(bytes, width: width), as: UTF8.self)
    }

    /// 62⁵, the most base62 digits one 32-bit limb's remainder holds.
    private static let fiveDigits: UInt64 = 916_132_832

    /// `base62`'s characters. Long division in place on 32-bit limbs by 62⁵, five digits per
    /// pass (this runs for every token issued and checked: a byte and a digit per step took 43
    /// passes over 32 bytes).
    static func digits(_ bytes: [UInt8], width: Int) -> [UInt8] {
        // Big-endian 32-bit limbs, the first one padded with leading zero bytes.
        var limbs = [UInt32](repeating: 0, count: (bytes.count + 3) / 4)
        let offset = limbs.count * 4 - bytes.count
        for (index, byte) in bytes.enumerated() {
            let position = index + offset
            limbs[position / 4] |= UInt32(byte) << (8 * (3 - position % 4))
        }
        var start = 0  // limbs[..<start] is zero
        while start < limbs.count, limbs[start] == 0 { start += 1 }
        var digits: [UInt8] = []
        digits.reserveCapacity(max(width, bytes.count * 2))
        while start < limbs.count {
            var remainder: UInt64 = 0
            for index in start..<limbs.count {
                let value = remainder << 32 | UInt64(limbs[index])
                limbs[index] = UInt32(value / fiveDigits)
                remainder = value % fiveDigits
            }
            while start < limbs.count, limbs[start] == 0 { start += 1 }
            if start < limbs.count {
                // More digits follow: all five of this chunk, zeros included.
                for _ in 0..<5 {
                    digits.append(alphabet[Int(remainder % 62)])
                    remainder /= 62
                }
            } else {
                // The most significant chunk: no leading zeros (the padding below adds them).
                while remainder > 0 {
                    digits.append(alphabet[Int(remainder % 62)])
                    remainder /= 62
                }
            }
        }
        while digits.count < width { digits.append(alphabet[0]) }
        digits.reverse()
        return digits
    }

    /// A non-secret identifier (accessors, lease ids): 24 hex characters, the milliseconds since
    /// the epoch (48 bits, big-endian) then 48 random bits. Time-ordered on purpose: the
    /// accessor and lease-id indexes then grow at their right edge, so a group commit writes a
    /// few index pages instead of one random page per row (with random ids the WAL carried
    /// ~270 KB per commit under load). The time it reveals is the issue time, which `token list`
    /// shows anyway; these are names, not credentials.
    public static func identifier(now: Double = WallClock.now()) -> String {
        let milliseconds = UInt64(max(0, now * 1000))
        var bytes = (0..<6).map { UInt8(truncatingIfNeeded: milliseconds >> (8 * (5 - $0))) }
        bytes += Sodium.randomBytes(6)
        return Hex.encode(bytes)
    }
}

/// CRC-32 (IEEE 802.3), as zlib computes it.
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
        return value
    }

    static func checksum(_ bytes: some Collection<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
