import MLCredTOML

/// `postgres-role` grants (provider: MLCredProviders/Postgres/PostgresProvider.swift): `create`
/// statements that make `{{name}}` with an expiry, optional `revoke` statements, both checked by
/// `PostgresStatementRules`.
enum PostgresGrantSchema: GrantSchema {
    static let types: [GrantType] = [.postgresRole]

    static func keys(for type: GrantType) -> Set<String> { ["create", "revoke"] }

    static func read(_ table: TOMLTable, into grant: inout Grant, context: inout GrantContext) {
        var problems: [(Int, String)] = []
        let create = PolicyLoader.stringList(table["create"], key: "create", line: context.line("create")) { problems.append(($0, $1)) }
        if let list = create, !list.isEmpty {
            grant.create = list
            if !list.contains(where: PostgresStatementRules.createsRole) {
                problems.append((context.line("create"), "create statements must make the role {{name}} (e.g. CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}')"))
            }
            // Threat: a role without an expiry outlives its lease if the daemon dies before recording it.
            if !list.contains(where: PostgresStatementRules.setsExpiry) {
                problems.append((context.line("create"), "create statements must set VALID UNTIL '{{expiration}}': a role that cannot expire outlives a lost lease"))
            }
        } else if table["create"] != nil {
            problems.append((context.line("create"), "'create' must list at least one statement"))
        } else {
            problems.append((context.header, "postgres-role grant needs 'create' statements"))
        }
        grant.revoke = PolicyLoader.stringList(table["revoke"], key: "revoke", line: context.line("revoke")) { problems.append(($0, $1)) }
        for (key, statements, placeholders) in [("create", grant.create, PostgresStatementRules.createPlaceholders),
                                                ("revoke", grant.revoke ?? [], PostgresStatementRules.revokePlaceholders)] {
            for (index, statement) in statements.enumerated() {
                if let problem = PostgresStatementRules.problem(in: statement, placeholders: placeholders) {
                    problems.append((context.line(key), "\(key) statement \(index + 1): \(problem)"))
                }
            }
        }
        for (line, message) in problems { context.fail(line, message) }
    }
}
