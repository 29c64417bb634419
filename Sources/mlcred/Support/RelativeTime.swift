import Glibc
import MLCredAPI

/// `--since` values: an RFC 3339 UTC time, or one relative to now as people say it (`1h`,
/// `30m`, `2d`, `yesterday`, `today`). Relative forms are resolved here, on the caller's clock
/// and time zone, and sent as RFC 3339 UTC: the daemon's API keeps one time format.
enum RelativeTime {
    /// What `--help` and errors say is accepted.
    static let accepted = "an RFC 3339 UTC time (2026-11-26T17:00:00Z; no other offset), a UTC date (2026-11-26, from its UTC midnight), a duration back from now (90s, 30m, 1h, 2d, 1w), 'today' or 'yesterday' (from local midnight)"

    /// Seconds per unit letter.
    static let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800]

    /// Epoch seconds for `text`, or nil when it is none of the accepted forms. `now` is epoch
    /// seconds; `localMidnight` gives the epoch seconds of the local midnight that starts the day
    /// holding an instant (a parameter so tests need no time zone).
    static func resolve(_ text: String, now: Double, localMidnight: (Double) -> Double = RelativeTime.localMidnight) -> Double? {
        switch text {
        case "today": return localMidnight(now)
        // The midnight before today's: one second before today's midnight is in yesterday, so
        // a 23- or 25-hour day (daylight saving) still starts at its own midnight.
        case "yesterday": return localMidnight(localMidnight(now) - 1)
        default: break
        }
        if let absolute = Timestamp.parse(text) { return absolute }
        guard let unit = text.last, let scale = units[unit] else { return nil }
        let digits = text.dropLast()
        // Digits only, at most 9 of them: no sign, no fraction, no overflow.
        guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber),
              let amount = Double(String(digits)) else { return nil }
        return now - amount * scale
    }

    /// The local midnight that starts the day holding `instant` (epoch seconds).
    static func localMidnight(_ instant: Double) -> Double {
        var seconds = time_t(instant.rounded(.down))
        var parts = tm()
        guard localtime_r(&seconds, &parts) != nil else { return instant }
        parts.tm_hour = 0
        parts.tm_min = 0
        parts.tm_sec = 0
        parts.tm_isdst = -1  // let mktime decide whether midnight was in daylight saving time
        let midnight = mktime(&parts)
        return midnight == -1 ? instant : Double(midnight)
    }

    /// Now, in epoch seconds with milliseconds.
    static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec / 1_000_000) / 1000
    }
}
