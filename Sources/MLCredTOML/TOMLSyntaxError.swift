/// Why a document is not TOML, and where: the first problem found (parsing stops there).
public struct TOMLSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    /// 1-based line of the problem.
    public let line: Int
    /// 1-based column of the problem, in characters.
    public let column: Int
    /// What is wrong, for a person: names the key or character and says what was expected.
    public let message: String

    public var description: String { "line \(line), column \(column): \(message)" }
}
