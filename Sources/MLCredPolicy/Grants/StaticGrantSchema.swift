import MLCredTOML

/// `static` grants (provider: MLCredProviders/StaticProvider.swift): no keys of their own; never
/// in a phi role.
enum StaticGrantSchema: GrantSchema {
    static let types: [GrantType] = [.static]

    static func keys(for type: GrantType) -> Set<String> { [] }

    static func read(_ table: TOMLTable, into grant: inout Grant, context: inout GrantContext) {}

    static func phiProblem(_ grant: Grant) -> String? {
        "static grant '\(grant.name)' in phi role: static grants hand out a stored value as it is and are refused in phi roles"
    }
}
