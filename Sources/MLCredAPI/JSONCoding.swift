#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The one JSON configuration used on the wire: sorted keys, no key conversion (secret
/// field names are data and must pass through untouched).
public enum APIJSON {
    /// One encoder for every call: JSONEncoder is thread-safe once configured, and making one
    /// per call showed in the daemon's profile (several encodes per request).
    private static let compact: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// Encodes `value` to compact JSON with sorted keys.
    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        Array(try compact.encode(value))
    }

    /// Encodes `value` to indented JSON for people.
    public static func encodePretty<T: Encodable>(_ value: T) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }

    /// Decodes `T` from JSON bytes.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try JSONDecoder().decode(type, from: Data(bytes))
    }
}

/// JSON text written by hand where JSONEncoder costs too much.
public enum JSONText {
    /// `text` as a JSON string literal, or `null`.
    public static func literal(_ text: String?) -> String {
        guard let text else { return "null" }
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// Timestamps on the wire: RFC 3339, UTC, millisecond precision.
public enum Timestamp {
    /// The fields of a timestamp, as `format` writes them.
    typealias Fields = (year: Int64, month: Int64, day: Int64, hour: Int64, minute: Int64, second: Int64, millis: Int64)

    /// `epochSeconds` as `2026-11-26T17:03:04.123Z`.
    public static func format(epochSeconds: Double) -> String {
        let time = fields(epochSeconds)
        guard (0...9999).contains(time.year), (0...999).contains(time.millis) else { return interpolated(time) }
        // Written into the string's own storage: interpolation and padding made seven strings per
        // timestamp, and every answer and audit record carries some.
        return String(unsafeUninitializedCapacity: 24) { text in
            func put(_ value: Int64, _ width: Int, at start: Int) {
                var rest = value
                for index in stride(from: start + width - 1, through: start, by: -1) {
                    text[index] = UInt8(ascii: "0") + UInt8(rest % 10)
                    rest /= 10
                }
            }
            put(time.year, 4, at: 0)
            text[4] = UInt8(ascii: "-")
            put(time.month, 2, at: 5)
            text[7] = UInt8(ascii: "-")
            put(time.day, 2, at: 8)
            text[10] = UInt8(ascii: "T")
            put(time.hour, 2, at: 11)
            text[13] = UInt8(ascii: ":")
            put(time.minute, 2, at: 14)
            text[16] = UInt8(ascii: ":")
            put(time.second, 2, at: 17)
            text[19] = UInt8(ascii: ".")
            put(time.millis, 3, at: 20)
            text[23] = UInt8(ascii: "Z")
            return 24
        }
    }

    /// The general form (any year, any sign), which `format`'s fast path must equal.
    static func interpolated(_ time: Fields) -> String {
        "\(pad(time.year, 4))-\(pad(time.month, 2))-\(pad(time.day, 2))T\(pad(time.hour, 2)):\(pad(time.minute, 2)):\(pad(time.second, 2)).\(pad(time.millis, 3))Z"
    }

    /// The fields of `epochSeconds`: the civil date and time in UTC, milliseconds truncated.
    static func fields(_ epochSeconds: Double) -> Fields {
        let whole = Int64(epochSeconds.rounded(.down))
        let millis = Int64((epochSeconds - Double(whole)) * 1000)
        let (days, secondsOfDay) = floorDivide(whole, 86_400)
        let (year, month, day) = civilFromDays(days)
        return (year, month, day, secondsOfDay / 3600, (secondsOfDay % 3600) / 60, secondsOfDay % 60, millis)
    }

    /// Fraction digits read (nanoseconds); more is not a timestamp any peer writes.
    static let maxFractionDigits = 9

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z` (or a bare date) into epoch seconds.
    public static func parse(_ text: String) -> Double? {
        let chars = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int64? {
            guard range.upperBound <= chars.count else { return nil }
            var value: Int64 = 0
            for c in chars[range] {
                guard c >= 48, c <= 57 else { return nil }
                value = value * 10 + Int64(c - 48)
            }
            return value
        }
        guard chars.count >= 10, chars[4] == 45, chars[7] == 45,
              let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              (1...12).contains(month), (1...31).contains(day) else { return nil }
        var seconds = Double(daysFromCivil(year, month, day) * 86_400)
        if chars.count == 10 { return seconds }
        guard chars.count >= 20, chars[10] == 84 || chars[10] == 32, chars[13] == 58, chars[16] == 58,
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
              hour < 24, minute < 60, second < 61, chars.last == 90 else { return nil }
        seconds += Double(hour * 3600 + minute * 60 + second)
        if chars[19] == 46, chars.count > 21, chars.count - 21 <= maxFractionDigits, let fraction = number(20..<(chars.count - 1)) {
            let digits = chars.count - 21
            var scale = 1.0
            for _ in 0..<digits { scale *= 10 }
            seconds += Double(fraction) / scale
        } else if chars.count != 20 {
            return nil
        }
        return seconds
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }

    private static func floorDivide(_ a: Int64, _ b: Int64) -> (Int64, Int64) {
        let q = a >= 0 ? a / b : (a - b + 1) / b
        return (q, a - q * b)
    }

    // Howard Hinnant's civil-from-days algorithms.
    private static func civilFromDays(_ z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    private static func daysFromCivil(_ y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
