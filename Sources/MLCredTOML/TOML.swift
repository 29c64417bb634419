/// Reads TOML 1.0.0 (https://toml.io/en/v1.0.0): every value type, every string form, dotted
/// keys, tables, inline tables and arrays of tables, with the spec's rules on what may be defined
/// twice. Checked against the toml-test suite's TOML 1.0.0 files (`Tests/MLCredTOMLTests`).
///
/// Threat: policy files are admin-owned, but a careless admin's typo (or a hostile pull request
/// that reaches review) must come out as a diagnostic, never as a crash or a hang: the parser has
/// no precondition that input can break, no recursion deeper than `maximumDepth`, and no step
/// worse than linear in the input (fuzzed by `Fuzz/Sources/fuzz-policy`).
public enum TOML {
    /// The deepest nesting a document may have: the parts of a header or dotted key, plus
    /// arrays and inline tables inside one another. Far beyond any policy; it bounds recursion.
    public static let maximumDepth = 128

    /// Parses a whole document into its root table.
    public static func parse(_ text: String) throws(TOMLSyntaxError) -> TOMLTable {
        var parser = TOMLParser(text)
        return try parser.parseDocument()
    }
}
