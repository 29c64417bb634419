/// Counts in messages and audit reasons: "1 role", "2 roles".
public enum Plural {
    /// `count` and `noun`, with an `s` unless the count is one (nouns here take a plain `s`).
    public static func count(_ count: Int, _ noun: String) -> String {
        "\(count) \(noun)\(count == 1 ? "" : "s")"
    }
}
