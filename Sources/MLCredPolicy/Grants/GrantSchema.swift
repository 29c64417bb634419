import MLCredTOML

/// One grant type's keys and checks (Vault's `path_roles.go` habit: each engine validates its
/// own fields). `PolicyLoader` reads the keys every grant shares, then hands the table to the
/// schema of its type. Schemas live here, beside `PostgresStatementRules`, and not in
/// MLCredProviders, so `mlcred policy validate` checks them offline without linking the
/// providers' network clients; each provider's file points at its schema.
protocol GrantSchema {
    /// The grant types this schema reads.
    static var types: [GrantType] { get }
    /// Keys a grant of these types may have beyond `PolicyLoader.commonGrantKeys`.
    static func keys(for type: GrantType) -> Set<String>
    /// Whether an `env` table may rename the variables a job gets (false: fixed names SDKs read).
    static var acceptsEnvTable: Bool { get }
    /// Reads the type's own keys of `table` into `grant`; problems go to `context`.
    static func read(_ table: TOMLTable, into grant: inout Grant, context: inout GrantContext)
    /// Why `grant` may not stand in a phi role, or nil.
    static func phiProblem(_ grant: Grant) -> String?
}

extension GrantSchema {
    static var acceptsEnvTable: Bool { true }
    static func phiProblem(_ grant: Grant) -> String? { nil }
}

/// Where a grant is in its file, and the problems found reading it.
struct GrantContext {
    /// The grant's table, which knows the line of each of its keys.
    let table: TOMLTable
    /// The policy directory (session policy files are read relative to it).
    let directory: PolicyDirectory
    private(set) var problems: [(line: Int, message: String)] = []

    init(table: TOMLTable, directory: PolicyDirectory) {
        self.table = table
        self.directory = directory
    }

    /// The line of the grant's `[[grant]]` header.
    var header: Int { table.line }

    /// The line of `key` in the grant (its header when the key is absent).
    func line(_ key: String) -> Int { table.line(of: key) ?? header }

    /// The line of `key` when the table has it, else the header (for "needs 'key'" problems).
    func line(_ key: String, in table: TOMLTable) -> Int { table[key] == nil ? header : line(key) }

    mutating func fail(_ line: Int, _ message: String) {
        problems.append((line, message))
    }
}

/// Every grant type's schema, by type.
enum GrantSchemas {
    static let all: [any GrantSchema.Type] = [JWTGrantSchema.self, AWSGrantSchema.self, PostgresGrantSchema.self, StaticGrantSchema.self]

    static func schema(for type: GrantType) -> any GrantSchema.Type {
        // Every GrantType has exactly one schema (a unit test holds this).
        all.first { $0.types.contains(type) } ?? StaticGrantSchema.self
    }
}
