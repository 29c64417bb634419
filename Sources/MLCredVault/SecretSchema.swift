import MLCredAPI

/// Validates secret names and field sets, and normalises field values to strings.
enum SecretSchema {
    /// Types stored with `secret put`; `jwt-signer` is only made by `secret generate`.
    static let puttable: [SecretType] = [.static, .aws, .postgres]

    static let sslModes = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

    /// Names are path segments and policy references: `ResourceName`'s rule.
    static func validateName(_ name: String) throws {
        guard ResourceName.isValid(name) else {
            throw APIError(.invalidName, "invalid secret name: \(ResourceName.requirement)")
        }
    }

    static func isRegion(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 32 && text.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 }
    }

    static func parseType(_ text: String, forPut: Bool) throws -> SecretType {
        guard let type = SecretType(rawValue: text) else {
            throw APIError(.invalidSecretType, "unknown secret type (expected static, aws, postgres or jwt-signer)")
        }
        if forPut, !puttable.contains(type) {
            throw APIError(.invalidSecretType, "a \(type.rawValue) secret is created with 'secret generate', not 'secret put'")
        }
        return type
    }

    /// Checks `fields` for `type` and returns them as strings.
    static func normalize(_ fields: [String: SecretFieldValue], type: SecretType) throws -> [String: String] {
        let required: [String]
        let optional: [String]
        switch type {
        case .aws:
            required = ["access_key_id", "secret_access_key"]
            optional = ["region", "endpoint_url"]
        case .postgres:
            required = ["host", "port", "dbname", "user", "password"]
            optional = ["sslmode"]
        case .static:
            guard !fields.isEmpty else { throw APIError(.invalidSecretFields, "a static secret needs at least one field") }
            required = []
            optional = []
        case .jwtSigner:
            throw APIError(.invalidSecretType, "a jwt-signer secret is created with 'secret generate'")
        }
        var out: [String: String] = [:]
        for (key, value) in fields {
            if type != .static, !required.contains(key), !optional.contains(key) {
                throw APIError(.invalidSecretFields, "unknown field '\(key)' for secret type \(type.rawValue) (allowed: \((required + optional).joined(separator: ", ")))")
            }
            if type == .static {
                guard !key.isEmpty, key.utf8.count <= 128 else { throw APIError(.invalidSecretFields, "static secret field names must be 1-128 bytes") }
            }
            switch value {
            case .string(let text):
                guard !text.isEmpty else { throw APIError(.invalidSecretFields, "field '\(key)' is empty") }
                out[key] = text
            case .number(let number):
                guard type == .postgres, key == "port" else {
                    throw APIError(.invalidSecretFields, "field '\(key)' must be a string")
                }
                out[key] = String(number)
            }
        }
        for key in required where out[key] == nil {
            throw APIError(.invalidSecretFields, "missing field '\(key)' for secret type \(type.rawValue) (required: \(required.joined(separator: ", ")))")
        }
        if let port = out["port"], type == .postgres {
            guard PortNumber.parse(port) != nil else {
                throw APIError(.invalidSecretFields, "field 'port' must be a number from 1 to 65535")
            }
        }
        if let mode = out["sslmode"], !sslModes.contains(mode) {
            throw APIError(.invalidSecretFields, "field 'sslmode' must be one of \(sslModes.joined(separator: ", "))")
        }
        // These reach jobs' AWS config files and environments: nothing that could add a line.
        if let region = out["region"], !isRegion(region) {
            throw APIError(.invalidSecretFields, "field 'region' must be an AWS region name such as us-east-1 (lower-case letters, digits, '-')")
        }
        if let url = out["endpoint_url"], EndpointURL.parse(url) == nil {
            throw APIError(.invalidSecretFields, "field 'endpoint_url' must be http(s)://HOST[:PORT] (port 1-65535; no user info, path or query), e.g. http://127.0.0.1:5000")
        }
        for (key, value) in out where type == .postgres && key != "password" && value.unicodeScalars.contains(where: { $0.value < 0x20 }) {
            throw APIError(.invalidSecretFields, "field '\(key)' must not contain control characters")
        }
        return out
    }
}
