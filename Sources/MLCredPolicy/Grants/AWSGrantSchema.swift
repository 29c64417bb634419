import MLCredTOML

/// `aws-assume-role`, `aws-session-token` and `aws-federation-token` grants (provider:
/// MLCredProviders/AWS/AWSProvider.swift): a role ARN, a session length, session policies that
/// STS will take, no `env` table (SDKs read the standard AWS variables).
enum AWSGrantSchema: GrantSchema {
    static let types: [GrantType] = [.awsAssumeRole, .awsSessionToken, .awsFederationToken]
    /// STS's bounds on a session's length.
    static let durationRange = 900...43200

    static func keys(for type: GrantType) -> Set<String> {
        switch type {
        case .awsAssumeRole: ["role_arn", "session_policy", "session_policy_file", "duration", "external_id", "session_tags"]
        case .awsFederationToken: ["session_policy", "session_policy_file", "duration"]
        default: ["duration"]
        }
    }

    static var acceptsEnvTable: Bool { false }

    static func phiProblem(_ grant: Grant) -> String? {
        guard grant.type == .awsSessionToken else { return nil }
        return "aws-session-token grant '\(grant.name)' in phi role: GetSessionToken credentials carry every right of the vault's IAM user; use aws-assume-role with a session policy"
    }

    static func read(_ table: TOMLTable, into grant: inout Grant, context: inout GrantContext) {
        if grant.type == .awsAssumeRole {
            if let arn = table["role_arn"]?.string, arn.hasPrefix("arn:"), arn.contains(":role/") {
                grant.roleARN = arn
            } else if table["role_arn"] == nil {
                context.fail(context.header, "aws-assume-role grant needs 'role_arn' (arn:aws:iam::ACCOUNT:role/NAME)")
            } else {
                context.fail(context.line("role_arn"), "'role_arn' must be a role ARN such as arn:aws:iam::ACCOUNT:role/NAME")
            }
            grant.externalID = table["external_id"]?.string
            if let tags = table["session_tags"]?.table {
                for key in tags.keys { grant.sessionTags[key] = tags[key]?.string }
            }
        }
        if let value = table["duration"] {
            if let text = value.string, let seconds = PolicyDuration.parse(text), durationRange.contains(seconds) {
                grant.durationSeconds = seconds
            } else {
                context.fail(context.line("duration"), "'duration' must be a duration from 15m to 12h")
            }
        }
        if let inline = table["session_policy"] {
            if let text = inline.string, JSONCheck.isObject(text) {
                grant.sessionPolicy = sessionPolicy(text, key: "session_policy", context: &context)
            } else {
                context.fail(context.line("session_policy"), "'session_policy' must be a JSON IAM policy document")
            }
        }
        if let fileValue = table["session_policy_file"] {
            if let relative = fileValue.string, !relative.hasPrefix("/"), !relative.split(separator: "/").contains("..") {
                switch context.directory.read(relative) {
                case .success(let text) where JSONCheck.isObject(text):
                    grant.sessionPolicyFile = relative
                    grant.sessionPolicy = sessionPolicy(text, key: "session_policy_file", context: &context)
                case .success:
                    context.fail(context.line("session_policy_file"), "session_policy_file '\(relative)' is not a JSON IAM policy document")
                case .failure(let refusal):
                    context.fail(context.line("session_policy_file"), "session_policy_file '\(relative)' \(refusal.message)")
                }
            } else {
                context.fail(context.line("session_policy_file"), "'session_policy_file' must be a path inside the policy directory")
            }
        }
        if grant.type == .awsFederationToken && grant.sessionPolicy == nil {
            context.fail(context.header, "aws-federation-token grant needs 'session_policy' or 'session_policy_file': without one AWS gives the session no permissions")
        }
    }

    /// What STS takes: at most 2,048 characters from U+0020-U+00FF (and tab, LF, CR).
    /// Whitespace between tokens counts, so it is dropped; the rest is sent as written.
    static func sessionPolicy(_ text: String, key: String, context: inout GrantContext) -> String? {
        let packed = SessionPolicyText.minified(text)
        if let bad = packed.unicodeScalars.first(where: { $0.value < 0x20 || $0.value > 0xFF }) {
            context.fail(context.line(key), "session policy has the character U+\(String(bad.value, radix: 16, uppercase: true)), which AWS STS refuses (only U+0020-U+00FF)")
            return nil
        }
        if packed.count > SessionPolicyText.maximumCharacters {
            context.fail(context.line(key), "session policy is \(packed.count) characters without whitespace; AWS STS accepts at most \(SessionPolicyText.maximumCharacters)")
            return nil
        }
        return packed
    }
}
