/// Unicode's stream-safe text format (UAX #15): no more than 30 combining marks in a row.
///
/// Threat: Swift compares and hashes a `String` after normalizing it, and normalizing a long run
/// of combining marks of mixed classes takes time quadratic in the run. Measured on the release
/// daemon: one 60 KB request body whose JSON key was `e` and 15,000 pairs of U+0301 U+0316 cost
/// 0.7 s of an event loop's CPU before any check could answer; a few such requests a second from
/// any local user would hold the daemon. No real text has more than 30 marks in a row, so
/// `JSONParser`, which every request body goes through first, refuses such a string (raw or
/// escaped) before anything hashes it; NIO's parser refuses non-ASCII in a request target.
public enum StreamSafeText {
    /// The most combining marks (scalars of a non-zero canonical combining class) in a row.
    public static let maximumCombiningMarks = 30

    /// Whether `utf8` never has more than `maximumCombiningMarks` combining marks in a row
    /// (bytes that are not UTF-8 end a run; ASCII is checked in one pass without decoding).
    public static func check<C: Collection>(_ utf8: C) -> Bool where C.Element == UInt8 {
        guard utf8.contains(where: { $0 >= 0x80 }) else { return true }
        var run = 0
        var bytes = utf8.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&bytes) {
            case .scalarValue(let scalar):
                run = scalar.properties.canonicalCombiningClass == .notReordered ? 0 : run + 1
                if run > maximumCombiningMarks { return false }
            case .error:
                run = 0
            case .emptyInput:
                return true
            }
        }
    }
}
