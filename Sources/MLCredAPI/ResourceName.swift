/// The one rule for names that travel in a URL path segment: secret names (which policies also
/// reference), token accessors and lease ids. 1 to `maxLength` bytes of ASCII letters, digits,
/// `.`, `_` and `-`, not starting with `.` or `-`.
///
/// Threat: a `/`, `?`, `#`, `%` or space in a name would let a request act on another name than
/// the one typed. The vault refuses such secret names; the CLI refuses any such name before sending.
public enum ResourceName {
    /// The longest name, in bytes: room for descriptive names (`prod.warehouse.readonly`) while
    /// a path, a log line and an audit record stay short.
    public static let maxLength = 128

    /// What a valid name looks like, phrased to follow "invalid NAME: " in an error message.
    public static let requirement = "use 1-\(maxLength) letters, digits, '.', '_' or '-', not starting with '.' or '-'"

    /// Whether `name` follows the rule.
    public static func isValid(_ name: String) -> Bool {
        let bytes = name.utf8
        guard let first = bytes.first, bytes.count <= maxLength, first != UInt8(ascii: "."), first != UInt8(ascii: "-") else {
            return false
        }
        return bytes.allSatisfy(isAllowed)
    }

    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default:
            false
        }
    }
}
