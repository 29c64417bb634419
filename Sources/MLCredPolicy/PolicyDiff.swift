#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One change in effective access between two policy sets.
public struct PolicyChange: Sendable, Equatable, Encodable {
    /// What kind of change: `role-added`, `role-removed`, `principal-added`, `principal-removed`,
    /// `environment-added`, `environment-removed`, `phi-on`, `phi-off`, `ttl-raised`, `ttl-lowered`,
    /// `max-ttl-raised`, `max-ttl-lowered`, `grant-added`, `grant-removed`, `grant-changed`.
    public var kind: String
    public var role: String
    public var grant: String?
    /// Plain words for a reviewer.
    public var summary: String
    /// Whether the change widens access (who, where, how long, what).
    public var widens: Bool
}

/// The change in *effective* access between two policy sets: who gains or loses which role,
/// where, for how long, with which grants. Formatting, key order and comments never show.
public enum PolicyDiff {
    public static func compare(old: PolicySet, new: PolicySet) -> [PolicyChange] {
        var changes: [PolicyChange] = []
        let names = Set(old.roles.keys).union(new.roles.keys).sorted()
        for name in names {
            switch (old.roles[name], new.roles[name]) {
            case (nil, let added?):
                changes.append(.init(kind: "role-added", role: name, grant: nil,
                                     summary: "new \(added.phi ? "phi " : "")role '\(name)' for \(list(added.principals.map(\.description)))"
                                         + " in \(added.environments.map(list) ?? "every environment"), grants \(list(added.grants.map(\.name)))",
                                     widens: true))
            case (let removed?, nil):
                let principals = removed.principals.map(\.description)
                changes.append(.init(kind: "role-removed", role: name, grant: nil,
                                     summary: principals.isEmpty ? "role '\(name)' removed (no principal could assume it)"
                                         : "role '\(name)' removed: \(list(principals)) can no longer assume it", widens: false))
            case (let before?, let after?):
                changes += compare(before, after)
            default:
                break
            }
        }
        return changes
    }

    static func compare(_ before: Role, _ after: Role) -> [PolicyChange] {
        let name = after.name
        var out: [PolicyChange] = []
        func add(_ kind: String, _ summary: String, widens: Bool, grant: String? = nil) {
            out.append(PolicyChange(kind: kind, role: name, grant: grant, summary: summary, widens: widens))
        }
        let phiNote = after.phi ? " (phi role)" : ""
        let oldPrincipals = Set(before.principals.map(\.description))
        let newPrincipals = Set(after.principals.map(\.description))
        for principal in newPrincipals.subtracting(oldPrincipals).sorted() {
            add("principal-added", "`\(principal)` gains role '\(name)'\(phiNote)", widens: true)
        }
        for principal in oldPrincipals.subtracting(newPrincipals).sorted() {
            add("principal-removed", "`\(principal)` loses role '\(name)'", widens: false)
        }
        switch (before.environments, after.environments) {
        case (let old?, nil):
            add("environment-added", "role '\(name)' now applies in every environment (was \(list(old)))", widens: true)
        case (nil, let new?):
            add("environment-removed", "role '\(name)' now applies only in \(list(new)) (was every environment)", widens: false)
        case (let old?, let new?):
            for environment in Set(new).subtracting(old).sorted() { add("environment-added", "role '\(name)' now applies in '\(environment)'", widens: true) }
            for environment in Set(old).subtracting(new).sorted() { add("environment-removed", "role '\(name)' no longer applies in '\(environment)'", widens: false) }
        case (nil, nil):
            break
        }
        if before.phi != after.phi {
            add(after.phi ? "phi-on" : "phi-off",
                after.phi ? "role '\(name)' becomes a phi role (enclave only, masked, no env/token)"
                    : "role '\(name)' is no longer a phi role: it can be issued outside the PHI enclave", widens: !after.phi)
        }
        if before.ttlSeconds != after.ttlSeconds {
            let raised = after.ttlSeconds > before.ttlSeconds
            add(raised ? "ttl-raised" : "ttl-lowered",
                "role '\(name)' ttl \(raised ? "raised" : "lowered") from \(PolicyDuration.format(before.ttlSeconds)) to \(PolicyDuration.format(after.ttlSeconds))",
                widens: raised)
        }
        if before.maxTTLSeconds != after.maxTTLSeconds {
            let raised = after.maxTTLSeconds > before.maxTTLSeconds
            add(raised ? "max-ttl-raised" : "max-ttl-lowered",
                "role '\(name)' max_ttl \(raised ? "raised" : "lowered") from \(PolicyDuration.format(before.maxTTLSeconds)) to \(PolicyDuration.format(after.maxTTLSeconds))",
                widens: raised)
        }
        let oldGrants = Dictionary(before.grants.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let newGrants = Dictionary(after.grants.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for grant in Set(newGrants.keys).subtracting(oldGrants.keys).sorted() {
            let detail = newGrants[grant].map { "\($0.type.rawValue) on secret '\($0.secret)'" } ?? ""
            add("grant-added", "role '\(name)' gains grant '\(grant)' (\(detail))", widens: true, grant: grant)
        }
        for grant in Set(oldGrants.keys).subtracting(newGrants.keys).sorted() {
            add("grant-removed", "role '\(name)' loses grant '\(grant)'", widens: false, grant: grant)
        }
        for grant in Set(oldGrants.keys).intersection(newGrants.keys).sorted() {
            guard let old = oldGrants[grant], let new = newGrants[grant] else { continue }
            for difference in grantDifferences(old, new) {
                add("grant-changed", "role '\(name)' grant '\(grant)': \(difference)", widens: true, grant: grant)
            }
        }
        return out
    }

    /// Plain-words differences of two versions of one grant.
    static func grantDifferences(_ old: Grant, _ new: Grant) -> [String] {
        var out: [String] = []
        if old.type != new.type { out.append("type \(old.type.rawValue) → \(new.type.rawValue)") }
        if old.secret != new.secret { out.append("secret '\(old.secret)' → '\(new.secret)'") }
        if old.environments != new.environments {
            out.append("environments \(old.environments.map(list) ?? "the role's") → \(new.environments.map(list) ?? "the role's")")
        }
        if old.audience != new.audience { out.append("audience '\(old.audience ?? "")' → '\(new.audience ?? "")'") }
        if old.claims != new.claims { out.append("JWT claims changed") }
        if old.env != new.env { out.append("variable names changed") }
        if old.roleARN != new.roleARN { out.append("role_arn \(old.roleARN ?? "-") → \(new.roleARN ?? "-")") }
        if canonicalJSON(old.sessionPolicy) != canonicalJSON(new.sessionPolicy) {
            out.append("session policy changed" + (new.sessionPolicyFile.map { " (\($0))" } ?? "") + ": review the document")
        }
        if old.durationSeconds != new.durationSeconds { out.append("session duration changed") }
        if old.externalID != new.externalID || old.sessionTags != new.sessionTags { out.append("external id or session tags changed") }
        if old.create != new.create { out.append("PostgreSQL `create` statements changed: review them as code") }
        if old.revoke != new.revoke { out.append("PostgreSQL `revoke` statements changed") }
        return out
    }

    /// A JSON document with sorted keys and no whitespace, so reformatting is not a change.
    static func canonicalJSON(_ text: String?) -> String? {
        guard let text, let data = text.data(using: .utf8), let value = try? JSONDecoder().decode(JSONValue.self, from: data) else { return text }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? text
    }

    static func list(_ items: [String]) -> String {
        items.isEmpty ? "nobody" : items.joined(separator: ", ")
    }

    /// Markdown for a pull-request comment.
    public static func markdown(_ changes: [PolicyChange]) -> String {
        guard !changes.isEmpty else { return "**mlcred policy diff:** no change in effective access.\n" }
        let widening = changes.filter(\.widens)
        var out = "### mlcred policy diff: \(changes.count) change\(changes.count == 1 ? "" : "s") in effective access"
        out += widening.isEmpty ? "\n\n" : " (\(widening.count) widen\(widening.count == 1 ? "s" : "") access)\n\n"
        for role in Set(changes.map(\.role)).sorted() {
            out += "**\(role)**\n"
            for change in changes where change.role == role {
                out += "- \(change.widens ? "⚠️ " : "")\(change.summary)\n"
            }
            out += "\n"
        }
        return out
    }
}

/// Any JSON value, re-encodable with sorted keys.
enum JSONValue: Codable, Equatable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}
