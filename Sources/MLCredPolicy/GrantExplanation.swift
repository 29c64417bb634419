/// For `policy explain`: which of an allowed role's grants a job receives in an environment.
/// A grant narrowed to other environments gives nothing there, which is otherwise silent (a
/// newcomer's copy of the docs' example on a `dev` daemon received a token and no JWT).
public enum GrantExplanation {
    /// One line per grant of `role` in `set`, in the role's order; none for an unknown role.
    public static func lines(role name: String, in set: PolicySet, environment: String) -> [String] {
        guard let role = set.roles[name] else { return [] }
        if role.grants.isEmpty { return ["role '\(name)' has no grants: its jobs receive a token and nothing else"] }
        return role.grants.map { grant in
            if let only = grant.environments, !only.contains(environment) {
                return "grant '\(grant.name)' (\(grant.type.rawValue)) is not given in environment '\(environment)': only in \(only.joined(separator: ", "))"
            }
            return "grant '\(grant.name)' (\(grant.type.rawValue)) is given"
        }
    }
}
