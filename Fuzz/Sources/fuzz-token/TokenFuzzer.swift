import FuzzSupport
@testable import MLCredBroker

/// The token parser (TokenFormat, SPEC §7). Properties, on every input:
/// - `isWellFormed` never traps, whatever the text (the daemon runs it on every
///   `Authorization: Bearer` value before anything else);
/// - a text it accepts is exactly `mlc_` + 43 base62 characters + the checksum of those 43;
/// - base62 of any 32 bytes fits the 43 characters a token has (else a fresh token would be
///   refused) and reads back as the same number;
/// - a token built from the input's body is accepted, and every single-character change of it
///   (another base62 character at any position) is refused: the checksum catches typos.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzToken(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var input = FuzzInput(data, size)
    let bytes = input.bytes

    // 1. The text as the daemon sees it after "Bearer ".
    let text = String(decoding: bytes, as: UTF8.self)
    if TokenFormat.isWellFormed(text) {
        let utf8 = Array(text.utf8)
        guard utf8.count == 4 + TokenFormat.bodyLength + TokenFormat.checkLength, text.hasPrefix("mlc_") else {
            propertyFailed("accepted a token of the wrong shape: \(text.debugDescription)")
        }
        let body = String(decoding: utf8[4..<(4 + TokenFormat.bodyLength)], as: UTF8.self)
        guard text == "mlc_" + body + TokenFormat.check(body) else {
            propertyFailed("accepted a token whose checksum does not match: \(text.debugDescription)")
        }
    }

    // 2. base62 of 32 bytes taken from the input: width and value.
    let number = input.take(32) + Array(repeating: 0, count: max(0, 32 - bytes.count))
    let digits = TokenFormat.base62(number, width: TokenFormat.bodyLength)
    guard digits.utf8.count == TokenFormat.bodyLength else {
        propertyFailed("base62 of \(number) is \(digits.utf8.count) characters, not \(TokenFormat.bodyLength)")
    }
    guard decodeBase62(Array(digits.utf8), byteCount: 32) == number else {
        propertyFailed("base62 of \(number) reads back as another number: \(digits)")
    }

    // 3. A token from that body, and each of its typos.
    let token = "mlc_" + digits + TokenFormat.check(digits)
    guard TokenFormat.isWellFormed(token) else { propertyFailed("a generated token is refused: \(token)") }
    var typo = Array(token.utf8)
    let position = 4 + input.number(in: 0...(TokenFormat.bodyLength + TokenFormat.checkLength - 1))
    let original = typo[position]
    let replacement = TokenFormat.alphabet[Int(input.byte()) % TokenFormat.alphabet.count]
    if replacement != original {
        typo[position] = replacement
        let changed = String(decoding: typo, as: UTF8.self)
        if TokenFormat.isWellFormed(changed) {
            propertyFailed("a one-character typo passes the checksum: \(token) -> \(changed)")
        }
    }
    return 0
}

/// The big-endian bytes `digits` (base62, TokenFormat's alphabet) stand for, or nil if they do
/// not fit `byteCount` bytes. The reference the encoder is checked against.
func decodeBase62(_ digits: [UInt8], byteCount: Int) -> [UInt8]? {
    var value = [UInt8](repeating: 0, count: byteCount)
    for digit in digits {
        guard let digitValue = TokenFormat.alphabet.firstIndex(of: digit) else { return nil }
        var carry = digitValue
        for index in stride(from: byteCount - 1, through: 0, by: -1) {
            let product = Int(value[index]) * 62 + carry
            value[index] = UInt8(product & 0xFF)
            carry = product >> 8
        }
        guard carry == 0 else { return nil }
    }
    return value
}
