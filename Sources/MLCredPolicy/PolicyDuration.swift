/// Durations in policies: `90s`, `30m`, `1h`, `1h30m`, `2d`. Whole seconds.
public enum PolicyDuration {
    /// Longest duration written anywhere (100 years): beyond it, a value is a mistake or an attack.
    public static let maximumSeconds = 100 * 366 * 86400

    /// Seconds in `text`, or nil if it is not a positive duration.
    public static func parse(_ text: String) -> Int? {
        var total = 0
        var number: Int?
        var sawUnit = false
        for character in text {
            if let digit = character.wholeNumberValue, character.isASCII {
                let (scaled, overflow1) = (number ?? 0).multipliedReportingOverflow(by: 10)
                let (next, overflow2) = scaled.addingReportingOverflow(digit)
                guard !overflow1, !overflow2 else { return nil }
                number = next
                continue
            }
            guard let value = number else { return nil }
            let unit: Int
            switch character {
            case "s": unit = 1
            case "m": unit = 60
            case "h": unit = 3600
            case "d": unit = 86400
            default: return nil
            }
            let (product, overflow) = value.multipliedReportingOverflow(by: unit)
            let (sum, overflowSum) = total.addingReportingOverflow(product)
            guard !overflow, !overflowSum, sum <= maximumSeconds else { return nil }
            total = sum
            number = nil
            sawUnit = true
        }
        guard number == nil, sawUnit, total > 0 else { return nil }
        return total
    }

    /// `seconds` written the way policies write it (`1h30m`).
    public static func format(_ seconds: Int) -> String {
        var rest = seconds
        var out = ""
        for (unit, suffix) in [(86400, "d"), (3600, "h"), (60, "m"), (1, "s")] where rest >= unit {
            out += "\(rest / unit)\(suffix)"
            rest %= unit
        }
        return out.isEmpty ? "0s" : out
    }
}
