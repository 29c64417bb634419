/// TOML's integer and float grammar, on one token (`1_000`, `0x2A`, `-3.5e-2`, `nan`).
enum TOMLNumber {
    enum Result {
        case value(TOMLValue)
        case outOfRange
        /// A finite literal too large for a 64-bit float (`1e400`); `inf` is written `inf`.
        case floatOutOfRange
        case malformed
    }

    static func parse(_ token: String) -> Result {
        switch token {
        case "inf", "+inf": return .value(.float(.infinity))
        case "-inf": return .value(.float(-.infinity))
        case "nan", "+nan", "-nan": return .value(.float(.nan))
        default: break
        }
        for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] where token.hasPrefix(prefix) {
            let body = token.dropFirst(2)
            guard isDigitGroups(body, radix: radix) else { return .malformed }
            guard let value = Int64(body.filter { $0 != "_" }, radix: radix) else { return .outOfRange }
            return .value(.integer(value))
        }
        var rest = Substring(token)
        if rest.first == "+" || rest.first == "-" { rest = rest.dropFirst() }
        let integerPart = rest.prefix { $0 != "." && $0 != "e" && $0 != "E" }
        // No leading zeros: 0, 7, 10 and 0.5 are numbers; 07 and 00.5 are not.
        guard isDigitGroups(integerPart, radix: 10), integerPart.first != "0" || integerPart.count == 1 else { return .malformed }
        rest = rest.dropFirst(integerPart.count)
        let cleaned = token.filter { $0 != "_" }
        if rest.isEmpty {
            guard let value = Int64(cleaned) else { return .outOfRange }
            return .value(.integer(value))
        }
        if rest.first == "." {
            rest = rest.dropFirst()
            let fraction = rest.prefix { $0 != "e" && $0 != "E" }
            guard isDigitGroups(fraction, radix: 10) else { return .malformed }
            rest = rest.dropFirst(fraction.count)
        }
        if rest.first == "e" || rest.first == "E" {
            rest = rest.dropFirst()
            if rest.first == "+" || rest.first == "-" { rest = rest.dropFirst() }
            guard isDigitGroups(rest, radix: 10) else { return .malformed }
            rest = rest.dropFirst(rest.count)
        }
        guard rest.isEmpty, let value = Double(cleaned) else { return .malformed }
        guard value.isFinite else { return .floatOutOfRange }
        return .value(.float(value))
    }

    /// Digits of `radix`, each underscore between two digits.
    static func isDigitGroups(_ text: Substring, radix: Int) -> Bool {
        guard let first = text.first, let last = text.last, first != "_", last != "_" else { return false }
        var previousWasUnderscore = false
        for character in text {
            if character == "_" {
                if previousWasUnderscore { return false }
                previousWasUnderscore = true
                continue
            }
            previousWasUnderscore = false
            guard let digit = character.hexDigitValue, digit < radix, character.isASCII else { return false }
        }
        return true
    }
}
