import MLCredTOML

/// `jwt` grants (provider: MLCredProviders/JWTProvider.swift): `audience`, and `claims` that may
/// not set what mlcred sets.
enum JWTGrantSchema: GrantSchema {
    static let types: [GrantType] = [.jwt]
    /// Claims mlcred sets on every JWT; a grant may not override them.
    static let reservedClaims: Set<String> = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"]

    static func keys(for type: GrantType) -> Set<String> { ["audience", "claims"] }

    static func read(_ table: TOMLTable, into grant: inout Grant, context: inout GrantContext) {
        if let audience = table["audience"]?.string, !audience.isEmpty {
            grant.audience = audience
        } else {
            context.fail(context.line("audience", in: table), "jwt grant needs 'audience'")
        }
        guard let claims = table["claims"] else { return }
        guard let claimTable = claims.table else {
            context.fail(context.line("claims"), "'claims' must be a table")
            return
        }
        for key in claimTable.keys {
            if reservedClaims.contains(key) {
                context.fail(context.line("claims"), "claim '\(key)' is set by mlcred and may not be overridden (reserved: \(reservedClaims.sorted().joined(separator: ", ")))")
            } else if let value = claimTable[key].flatMap(PolicyLoader.policyValue) {
                grant.claims[key] = value
            } else {
                context.fail(context.line("claims"), "claim '\(key)' has a value JSON cannot hold (no inf, nan or TOML date)")
            }
        }
    }
}
