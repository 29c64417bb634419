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
    public static func isWellFormed(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == prefix.utf8.count + bodyLength + checkLength, text.hasPrefix(prefix) else { return false }
        let rest = bytes.dropFirst(prefix.utf8.count)
        guard rest.allSatisfy({ alphabet.contains($0) }) else { return false }
        let body = String(decoding: rest.prefix(bodyLength), as: UTF8.self)
        return String(decoding: rest.suffix(checkLength), as: UTF8.self) == check(body)
    }

    static func check(_ body: String) -> String {
        let crc = CRC32.checksum(Array(body.utf8))
        return base62([UInt8(crc >> 24), UInt8((crc >> 16) & 0xFF), UInt8((crc >> 8) & 0xFF), UInt8(crc & 0xFF)], width: checkLength)
    }

    /// Big-endian bytes as base62, left-padded with '0' to `width`. Long division in place, one
    /// pass per digit, with no array made per pass (this runs for every token issued).
    static func base62(_ bytes: [UInt8], width: Int) -> String {
        var number = bytes
        var start = 0  // number[..<start] is zero
        while start < number.count, number[start] == 0 { start += 1 }
        var digits: [UInt8] = []
        digits.reserveCapacity(max(width, bytes.count * 2))
        while start < number.count {
            var remainder = 0
            for index in start..<number.count {
                let value = remainder * 256 + Int(number[index])
                number[index] = UInt8(value / 62)
                remainder = value % 62
            }
            digits.append(alphabet[remainder])
            while start < number.count, number[start] == 0 { start += 1 }
        }
        while digits.count < width { digits.append(alphabet[0]) }
        digits.reverse()
        return String(decoding: digits, as: UTF8.self)
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

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
