/// The text form of one Shamir share, for an admin to copy, print, file away or type back:
///
///     mlcs1-2-1-vtpv-xvym-xcbk-evr     (threshold 2, share 1 of a 1-byte secret)
///     mlcs1-3-2-0410-6100-...-3yv5-zcb4  (a 32-byte secret: 16 groups)
///
/// `mlcs1` (format version 1), the threshold K, the share number x, then the body in groups
/// of four: Crockford base32 (digits and lower-case letters without i, l, o, u) of the split
/// identifier (4 bytes, so all shares of one split begin alike), the share value, and a
/// CRC-32 (4 bytes, big-endian) over the version, K, x, the split identifier and the value.
///
/// Reading ignores case, spaces, line breaks and dashes (any run of them separates the
/// first three fields; inside the body they are ignored), reads o as 0 and i or l as 1, and
/// says precisely what is wrong. CRC-32 detects every change of one character, and of two
/// adjacent ones, that leaves the length alone: all of them change at most 10 consecutive
/// bits of what it covers. It is a check against typos, not against forgery; the share's
/// value is what no one else can produce.
public enum ShareText {
    /// The text form's version, the digit after `mlcs`.
    public static let version = 1
    /// What every share starts with, before the version.
    public static let prefix = "mlcs"
    /// Body characters per dash-separated group: short enough to read aloud and compare.
    public static let groupLength = 4
    /// Length of the checksum in bytes (CRC-32).
    static let checksumLength = 4

    /// Crockford's base32 alphabet, lower case: no i, l, o or u, which read like 1, 1, 0 and v.
    private static let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz".utf8)
    /// Letters people type for the digits they resemble, read as those digits.
    private static let aliases: [(letter: UInt8, value: UInt8)] = [
        (UInt8(ascii: "o"), 0), (UInt8(ascii: "i"), 1), (UInt8(ascii: "l"), 1),
    ]

    /// The text form of `share`. Throws `CryptoError.keyWiped` if the share was wiped.
    public static func encode(_ share: Shamir.Share) throws -> String {
        var value = try share.value.withUnsafeBytes { Array($0) }
        defer { Sodium.wipe(&value) }
        return encode(version: version, threshold: share.threshold, x: Int(share.x),
                      splitID: share.splitID, value: value)
    }

    /// The text form of arbitrary fields (tests build malformed shares with it).
    static func encode(version: Int, threshold: Int, x: Int, splitID: [UInt8], value: [UInt8]) -> String {
        // Capacity reserved up front so that no growth leaves an unwiped copy behind.
        var body: [UInt8] = []
        body.reserveCapacity(splitID.count + value.count + checksumLength)
        body += splitID
        body += value
        defer { Sodium.wipe(&body) }
        var covered = [UInt8(truncatingIfNeeded: version), UInt8(truncatingIfNeeded: threshold),
                       UInt8(truncatingIfNeeded: x)] + body
        defer { Sodium.wipe(&covered) }
        let checksum = crc32(covered)
        body += [UInt8(truncatingIfNeeded: checksum >> 24), UInt8(truncatingIfNeeded: checksum >> 16),
                 UInt8(truncatingIfNeeded: checksum >> 8), UInt8(truncatingIfNeeded: checksum)]
        var characters = base32(body)
        defer { Sodium.wipe(&characters) }
        var text = Array("\(prefix)\(version)-\(threshold)-\(x)".utf8)
        for (index, character) in characters.enumerated() {
            if index % groupLength == 0 { text.append(UInt8(ascii: "-")) }
            text.append(character)
        }
        defer { Sodium.wipe(&text) }
        return String(decoding: text, as: UTF8.self)
    }

    /// Reads a share's text form; throws `ShamirError` saying what is wrong with it.
    public static func decode(_ text: String) throws -> Shamir.Share {
        // Split on separators, keeping each character's 1-based position for messages.
        var fields: [[UInt8]] = []
        var positions: [[Int]] = []
        var current: [UInt8] = []
        var currentPositions: [Int] = []
        var firstInvalid: (character: Character, position: Int)?
        defer {
            Sodium.wipe(&current)
            for index in fields.indices { Sodium.wipe(&fields[index]) }
        }
        for (offset, character) in text.enumerated() {
            if character.isWhitespace || isDash(character) {
                if !current.isEmpty {
                    fields.append(current)
                    positions.append(currentPositions)
                    current = []
                    currentPositions = []
                }
                continue
            }
            if let ascii = character.asciiValue, ascii > 0x20, ascii < 0x7F {
                // ASCII lower-casing by arithmetic: no branch on which letter was typed.
                let isUpper = lessThanMask(ascii &- UInt8(ascii: "A"), 26)
                current.append(ascii | (isUpper & 0x20))
            } else {
                // Reported once the text is known to be meant as a share.
                if firstInvalid == nil { firstInvalid = (character, offset + 1) }
                current.append(0)
            }
            currentPositions.append(offset + 1)
        }
        if !current.isEmpty {
            fields.append(current)
            positions.append(currentPositions)
        }

        guard let head = fields.first, head.starts(with: Array(prefix.utf8)) else { throw ShamirError.notAShare }
        let versionDigits = head.dropFirst(prefix.utf8.count)
        guard !versionDigits.isEmpty, versionDigits.allSatisfy(isDigit) else { throw ShamirError.notAShare }
        let versionText = String(decoding: versionDigits, as: UTF8.self)
        guard versionText == String(version) else { throw ShamirError.unsupportedVersion(versionText) }
        if let invalid = firstInvalid {
            throw ShamirError.invalidCharacter(invalid.character, position: invalid.position)
        }
        guard fields.count >= 4 else {
            throw ShamirError.malformed("it ends early: after \(prefix)\(version)- come the threshold, the share number and groups of letters and digits")
        }
        let threshold = try byteField(fields[1], named: "the threshold (the number after \(prefix)\(version)-)")
        let x = try byteField(fields[2], named: "the share number (the number after the threshold)")

        var bodyCharacters: [UInt8] = []
        defer { Sodium.wipe(&bodyCharacters) }
        for index in 3..<fields.count {
            bodyCharacters += fields[index]
        }
        let bodyPositions = positions[3...].flatMap { $0 }
        var body = try decodeBase32(bodyCharacters, positions: bodyPositions)
        defer { Sodium.wipe(&body) }

        let splitIDLength = Shamir.Share.splitIDLength
        let shortest = splitIDLength + 1 + checksumLength
        let longest = splitIDLength + Shamir.maximumSecretLength + checksumLength
        guard body.count >= shortest else {
            throw ShamirError.malformed("it is too short: \(bodyCharacters.count) letters and digits after the share number, at least \(base32Length(shortest)) expected")
        }
        guard body.count <= longest else {
            throw ShamirError.malformed("it is too long: \(bodyCharacters.count) letters and digits after the share number, at most \(base32Length(longest)) expected")
        }
        var covered = [UInt8(version), UInt8(threshold), UInt8(x)] + body.dropLast(checksumLength)
        defer { Sodium.wipe(&covered) }
        let expected = crc32(covered)
        let stored = body.suffix(checksumLength).reduce(UInt32(0)) { ($0 << 8) | UInt32($1) }
        guard expected == stored else { throw ShamirError.checksumMismatch }

        let splitID = Array(body.prefix(splitIDLength))
        let valueLength = body.count - splitIDLength - checksumLength
        let value = try SecureBytes.filled(count: valueLength) { out in
            for i in 0..<valueLength { out[i] = body[splitIDLength + i] }
        }
        return try Shamir.Share(splitID: splitID, threshold: threshold, x: UInt8(x), value: value)
    }

    /// A decimal field of one to three digits worth at most 255 (range checks come after the
    /// checksum, so that a mistyped digit is reported as a typo).
    private static func byteField(_ field: [UInt8], named name: String) throws -> Int {
        let text = String(decoding: field, as: UTF8.self)
        guard (1...3).contains(field.count), field.allSatisfy(isDigit), let number = Int(text), number <= 255 else {
            throw ShamirError.malformed("\(name) reads '\(text)', not a number from 0 to 255: a character was mistyped or a dash left out")
        }
        return number
    }

    private static func isDigit(_ ascii: UInt8) -> Bool {
        ascii >= UInt8(ascii: "0") && ascii <= UInt8(ascii: "9")
    }

    /// ASCII hyphen and the Unicode dashes a word processor or a printout may turn it into.
    private static func isDash(_ character: Character) -> Bool {
        switch character {
        case "-", "\u{2010}", "\u{2011}", "\u{2012}", "\u{2013}", "\u{2014}", "\u{2015}", "\u{2212}": true
        default: false
        }
    }

    /// Number of base32 characters for `count` bytes.
    static func base32Length(_ count: Int) -> Int { (count * 8 + 4) / 5 }

    /// 0xFF when `a == b`, else 0, without a branch.
    @inline(__always)
    private static func equalMask(_ a: UInt8, _ b: UInt8) -> UInt8 {
        UInt8(truncatingIfNeeded: (UInt16(a ^ b) &- 1) >> 8)
    }

    /// 0xFF when `a < b`, else 0, without a branch.
    @inline(__always)
    private static func lessThanMask(_ a: UInt8, _ b: UInt8) -> UInt8 {
        UInt8(truncatingIfNeeded: (UInt16(a) &- UInt16(b)) >> 8)
    }

    /// Crockford base32 of `bytes`, five bits per character, most significant first, the last
    /// character padded with zero bits.
    ///
    /// Threat: the bytes are share values; characters are chosen by masks over the whole
    /// alphabet, not by indexing it with secret bits.
    private static func base32(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(base32Length(bytes.count))
        var buffer: UInt32 = 0
        var bits = 0
        func emit(_ value: UInt8) {
            var character: UInt8 = 0
            for (index, symbol) in alphabet.enumerated() {
                character |= equalMask(value, UInt8(index)) & symbol
            }
            out.append(character)
        }
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                bits -= 5
                emit(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)) & 0x1F)
            }
        }
        if bits > 0 {
            emit(UInt8(truncatingIfNeeded: buffer << UInt32(5 - bits)) & 0x1F)
        }
        buffer = 0
        return out
    }

    /// The bytes `characters` encode. A character outside the alphabet (and its aliases) is
    /// reported with its position; a length no encoder produces, or nonzero padding bits, is
    /// a checksum mismatch (a character was left out, added or mistyped).
    private static func decodeBase32(_ characters: [UInt8], positions: [Int]) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(characters.count * 5 / 8)
        var buffer: UInt32 = 0
        var bits = 0
        for (index, character) in characters.enumerated() {
            var value: UInt8 = 0
            var found: UInt8 = 0
            for (symbolValue, symbol) in alphabet.enumerated() {
                let mask = equalMask(character, symbol)
                value |= mask & UInt8(symbolValue)
                found |= mask
            }
            for alias in aliases {
                let mask = equalMask(character, alias.letter)
                value |= mask & alias.value
                found |= mask
            }
            guard found != 0 else {
                Sodium.wipe(&out)
                throw ShamirError.invalidCharacter(Character(Unicode.Scalar(character)), position: positions[index])
            }
            buffer = (buffer << 5) | UInt32(value)
            bits += 5
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
            }
        }
        let padding = buffer & ((1 << UInt32(bits)) - 1)
        buffer = 0
        guard bits < 5, padding == 0 else {
            Sodium.wipe(&out)
            throw ShamirError.checksumMismatch
        }
        return out
    }

    /// CRC-32 (IEEE 802.3, reflected, as zlib and PNG compute it), bit by bit with masks:
    /// the input holds share values, so no table is indexed with it.
    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 {
                crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1)))
            }
        }
        return ~crc
    }
}
