import MLCredAPI
import MLCredPolicy

/// `static` grants: a stored value handed out as it is (an API key that has no short-lived
/// form). Refused in phi roles. Variables come from the grant's `env` table
/// (`{ HF_TOKEN = "token" }`); without one, every field as `GRANT_FIELD`.
public struct StaticProvider: CredentialProvider {
    public let grantTypes: [GrantType] = [.static]

    public init() {}

    public func issue(secret: OpenedSecret, context: IssuanceContext) async throws -> IssuedCredential {
        var env: [String: String] = [:]
        if context.grant.env.isEmpty {
            for (field, value) in secret.fields { env[EnvironmentNames.defaultName(grant: context.grant.name, field: field)] = value }
        } else {
            for (variable, field) in context.grant.env {
                guard let value = secret.fields[field] else {
                    throw APIError(.grantEnvInvalid, "grant '\(context.grant.name)' maps \(variable) to field '\(field)', which secret '\(secret.name)' does not have")
                }
                env[variable] = value
            }
        }
        return IssuedCredential(env: env, providerID: "static:\(secret.name)", expiresAt: context.expiresAt)
    }

}
