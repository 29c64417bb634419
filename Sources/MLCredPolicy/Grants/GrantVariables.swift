import MLCredAPI

/// The variables a grant gives a job, where the policy alone decides them: one place for the
/// providers that set them and for the check that two grants of a role never set the same one
/// (SPEC §6; `policy validate`, the daemon's load and `run` agree because they share it).
public enum GrantVariables {
    /// A jwt grant's variable without an `env` table.
    public static let jwtDefault = "MLCRED_JWT"
    /// A postgres-role grant's variables without an `env` table: credential field → variable.
    public static let postgresDefaults: [(field: String, variable: String)] = [
        ("host", "PGHOST"), ("port", "PGPORT"), ("dbname", "PGDATABASE"), ("user", "PGUSER"), ("password", "PGPASSWORD"), ("sslmode", "PGSSLMODE"),
    ]

    /// The variables `grant` sets, or nil when they depend on the stored secret (a static grant
    /// without an env table: one variable per field, prefixed with the grant's name) or are the
    /// SDK's own (AWS grants, which `run` serves through one config file).
    public static func names(of grant: Grant) -> Set<String>? {
        if !grant.env.isEmpty { return Set(grant.env.keys) }
        switch grant.type.secretType {
        case .jwtSigner: return [jwtDefault]
        case .postgres: return Set(postgresDefaults.map(\.variable))
        case .aws, .static: return nil
        }
    }

    /// A variable two grants set.
    public struct Conflict: Equatable {
        public var variable: String
        /// The earlier grant setting it.
        public var other: String
        /// The later one.
        public var grant: Grant
    }

    /// Every variable set by two grants of `grants`, reported at the later grant, each once.
    public static func conflicts(in grants: [Grant]) -> [Conflict] {
        var setBy: [String: String] = [:]
        var out: [Conflict] = []
        for grant in grants {
            guard let names = names(of: grant) else { continue }
            for variable in names.sorted() {
                if let other = setBy[variable], other != grant.name {
                    out.append(Conflict(variable: variable, other: other, grant: grant))
                } else {
                    setBy[variable] = grant.name
                }
            }
        }
        return out
    }
}
