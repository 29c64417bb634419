#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc
import MLCredAPI
import MLCredTOML

/// Loads and validates a policy directory: one role per TOML file at any depth (`tests/` and
/// hidden entries excluded). Reports every problem of every file at once.
public enum PolicyLoader {
    /// Default `ttl` when a role sets none.
    public static let defaultTTLSeconds = 3600
    /// Keys a role file may hold.
    static let roleKeys: Set<String> = ["name", "description", "phi", "emergency", "environments", "principals", "ttl", "max_ttl", "grant"]
    /// Keys every grant may hold; each type adds its own (its `GrantSchema`).
    static let commonGrantKeys: Set<String> = ["name", "secret", "type", "environments", "env"]

    /// Loads `directory`. Throws `PolicyLoadError` with every diagnostic if anything is wrong.
    /// With `trustedOwners` (what the daemon passes), every directory and file must belong to one
    /// of those uids and be writable by nobody else, as sshd's StrictModes.
    /// `judgeModes` (what `policy validate` passes) refuses group- or other-writable files as the
    /// daemon would, without judging owners (a reviewer's checkout is the reviewer's).
    public static func load(directory: String, trustedOwners: Set<UInt32>? = nil, judgeModes: Bool = false) throws -> PolicySet {
        let policyDirectory = PolicyDirectory(path: directory, trustedOwners: trustedOwners, judgeModes: judgeModes)
        var (files, diagnostics) = try policyDirectory.roleFiles()
        var roles: [Role] = []
        var sources: [(file: String, source: String)] = []
        var digestInput: [UInt8] = []
        var read: [(file: String, source: String)] = []
        for file in files {
            switch policyDirectory.read(file) {
            case .success(let text):
                read.append((file, text))
            case .failure(let refusal):
                diagnostics.append(PolicyDiagnostic(file: file, line: 1, message: refusal.message))
            }
        }
        for (file, source) in read {
            digestInput += Array(file.utf8) + [0] + Array(source.utf8) + [0]
            sources.append((file, source))
            let (role, problems) = parseRole(source: source, file: file, directory: policyDirectory)
            diagnostics += problems
            if let role { roles.append(role) }
        }
        diagnostics += duplicateNames(sources)
        guard diagnostics.isEmpty else { throw PolicyLoadError(diagnostics: diagnostics.sorted()) }
        var byName: [String: Role] = [:]
        for role in roles { byName[role.name] = role }
        return PolicySet(roles: byName, digest: Digest.fnv1a64Hex(digestInput))
    }

    /// A file read whole by path (policy test cases, which grant nothing): at most 1 MiB of UTF-8,
    /// opened without blocking on a FIFO and only if it is a regular file.
    static func readFile(_ path: String) -> String? {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        return try? PolicyDirectory(path: directory.isEmpty ? "/" : directory).read(name).get()
    }

    /// Parses and validates one role file.
    static func parseRole(source: String, file: String, directory: PolicyDirectory) -> (Role?, [PolicyDiagnostic]) {
        var problems: [PolicyDiagnostic] = []
        let table: TOMLTable
        do {
            table = try TOML.parse(source)
        } catch {
            return (nil, [PolicyDiagnostic(file: file, line: error.line, column: error.column, message: "TOML syntax: \(error.message)")])
        }
        func problem(_ line: Int, _ message: String) {
            problems.append(PolicyDiagnostic(file: file, line: line, message: message))
        }
        func top(_ key: String) -> Int { table.line(of: key) ?? 1 }

        for key in table.keys where !roleKeys.contains(key) {
            problem(top(key), "unknown key '\(key)' (allowed: \(roleKeys.sorted().joined(separator: ", ")))")
        }
        var name = ""
        if let value = table["name"] {
            if let text = value.string, Names.isValidRoleName(text) {
                name = text
            } else {
                problem(top("name"), "'name' must be a string of lower-case letters, digits, '.', '_' or '-'")
            }
        } else {
            problem(1, "missing 'name'")
        }
        var description: String?
        if let value = table["description"] {
            if let text = value.string { description = text } else { problem(top("description"), "'description' must be a string") }
        }
        var phi = false
        if let value = table["phi"] {
            if let flag = value.bool { phi = flag } else { problem(top("phi"), "'phi' must be true or false") }
        }
        var emergency = false
        if let value = table["emergency"] {
            if let flag = value.bool { emergency = flag } else { problem(top("emergency"), "'emergency' must be true or false") }
        }
        let environments = stringList(table["environments"], key: "environments", line: top("environments"), problem: problem)
        if let environments, environments.isEmpty { problem(top("environments"), "'environments' is empty: omit it to mean every environment") }
        var principals: [PrincipalPattern] = []
        if let list = stringList(table["principals"], key: "principals", line: top("principals"), problem: problem) {
            for entry in list {
                if let pattern = PrincipalPattern.parse(entry) {
                    principals.append(pattern)
                } else {
                    problem(top("principals"), "bad principal '\(entry)': use user:NAME, uid:N, group:NAME, gid:N or unit:NAME.service")
                }
            }
        } else if table["principals"] == nil {
            problem(1, "missing 'principals': a role with no principals admits nobody")
        }
        let ttl = duration(table["ttl"], key: "ttl", line: top("ttl"), problem: problem) ?? defaultTTLSeconds
        let maxTTL = duration(table["max_ttl"], key: "max_ttl", line: top("max_ttl"), problem: problem) ?? ttl
        if ttl > maxTTL {
            problem(top("ttl"), "ttl (\(PolicyDuration.format(ttl))) is greater than max_ttl (\(PolicyDuration.format(maxTTL)))")
        }

        var grants: [Grant] = []
        var grantTables: [TOMLTable] = []
        if let value = table["grant"] {
            if let array = value.array {
                for element in array {
                    guard let grantTable = element.table else {
                        problem(top("grant"), "each [[grant]] must be a table")
                        continue
                    }
                    if let grant = parseGrant(grantTable, directory: directory, problem: problem) {
                        grants.append(grant)
                        grantTables.append(grantTable)
                    }
                }
            } else {
                problem(top("grant"), "'grant' must be an array of tables: write [[grant]]")
            }
        }
        var seen: [String: Int] = [:]
        for (grant, grantTable) in zip(grants, grantTables) {
            if let first = seen[grant.name] {
                problem(grant.line, "duplicate grant name '\(grant.name)' (first at line \(first)); set 'name' to tell them apart")
            }
            seen[grant.name] = seen[grant.name] ?? grant.line
            if phi, let refusal = GrantSchemas.schema(for: grant.type).phiProblem(grant) {
                problem(grant.line, refusal)
            }
            if let narrowed = grant.environments, let roleEnvironments = environments {
                for environment in narrowed where !roleEnvironments.contains(environment) {
                    problem(grantTable.line(of: "environments") ?? grant.line,
                            "grant '\(grant.name)' names environment '\(environment)', which the role does not allow")
                }
            }
        }
        for conflict in GrantVariables.conflicts(in: grants) {
            problem(conflict.grant.line, "grants '\(conflict.other)' and '\(conflict.grant.name)' both set \(conflict.variable): give one an env table naming other variables")
        }
        guard problems.isEmpty else { return (nil, problems) }
        return (Role(name: name, description: description, phi: phi, environments: environments, principals: principals,
                     ttlSeconds: ttl, maxTTLSeconds: maxTTL, grants: grants, file: file, emergency: emergency), [])
    }

    static func parseGrant(_ table: TOMLTable, directory: PolicyDirectory, problem: (Int, String) -> Void) -> Grant? {
        let header = table.line
        func line(_ key: String) -> Int { table.line(of: key) ?? header }
        var failed = false
        func fail(_ lineNumber: Int, _ message: String) {
            failed = true
            problem(lineNumber, message)
        }
        guard let typeText = table["type"]?.string else {
            fail(table["type"] == nil ? header : line("type"), "grant needs 'type' (\(GrantType.allCases.map(\.rawValue).joined(separator: ", ")))")
            return nil
        }
        guard let type = GrantType(rawValue: typeText) else {
            fail(line("type"), "unknown grant type '\(typeText)' (expected \(GrantType.allCases.map(\.rawValue).joined(separator: ", ")))")
            return nil
        }
        let allowed = commonGrantKeys.union(GrantSchemas.schema(for: type).keys(for: type))
        for key in table.keys where !allowed.contains(key) {
            fail(line(key), "unknown key '\(key)' for grant type \(type.rawValue) (allowed: \(allowed.sorted().joined(separator: ", ")))")
        }
        guard let secret = table["secret"]?.string, Names.isValidSecretName(secret) else {
            fail(table["secret"] == nil ? header : line("secret"), "grant needs 'secret': the name of a stored secret")
            return nil
        }
        var name = secret
        if let value = table["name"] {
            if let text = value.string, Names.isValidRoleName(text) { name = text } else { fail(line("name"), "grant 'name' must be a simple name") }
        }
        var grant = Grant(name: name, secret: secret, type: type, line: header)
        grant.environments = stringList(table["environments"], key: "environments", line: line("environments"), problem: fail)
        if let envTable = table["env"] {
            if !GrantSchemas.schema(for: type).acceptsEnvTable {
                // SDKs read the standard AWS_* names, and under `run` they refresh through credential_process.
                fail(line("env"), "aws grants take no 'env' table: jobs get the standard AWS variables (under 'mlcred run', an AWS config with credential_process)")
            } else if let envTable = envTable.table {
                for key in envTable.keys {
                    guard Names.isValidEnvironmentVariable(key), let field = envTable[key]?.string, !field.isEmpty else {
                        fail(line("env"), "env entries map a variable name (A-Z, 0-9, _) to a credential field name, e.g. { HF_TOKEN = \"token\" }")
                        continue
                    }
                    grant.env[key] = field
                }
            } else {
                fail(line("env"), "'env' must be a table, e.g. { HF_TOKEN = \"token\" }")
            }
        }
        let schema = GrantSchemas.schema(for: type)
        var context = GrantContext(table: table, directory: directory)
        schema.read(table, into: &grant, context: &context)
        for found in context.problems { fail(found.line, found.message) }
        return failed ? nil : grant
    }

    static func stringList(_ value: TOMLValue?, key: String, line: Int, problem: (Int, String) -> Void) -> [String]? {
        guard let value else { return nil }
        guard let array = value.array else {
            problem(line, "'\(key)' must be an array of strings")
            return nil
        }
        var out: [String] = []
        for element in array {
            guard let text = element.string else {
                problem(line, "'\(key)' must be an array of strings")
                return nil
            }
            out.append(text)
        }
        return out
    }

    static func duration(_ value: TOMLValue?, key: String, line: Int, problem: (Int, String) -> Void) -> Int? {
        guard let value else { return nil }
        guard let text = value.string, let seconds = PolicyDuration.parse(text) else {
            problem(line, "bad duration for '\(key)': use e.g. \"90s\", \"30m\", \"1h\", \"1h30m\", \"2d\"")
            return nil
        }
        return seconds
    }

    static func policyValue(_ value: TOMLValue) -> PolicyValue? {
        if let text = value.string { return .string(text) }
        if let number = value.int { return .integer(number) }
        // JSON has no inf or nan: such a claim would pass here and fail at every mint.
        if let number = value.double { return number.isFinite ? .double(number) : nil }
        if let flag = value.bool { return .bool(flag) }
        if let array = value.array {
            var out: [PolicyValue] = []
            for element in array {
                guard let converted = policyValue(element) else { return nil }
                out.append(converted)
            }
            return .array(out)
        }
        if let table = value.table {
            var out: [String: PolicyValue] = [:]
            for key in table.keys {
                guard let converted = table[key].flatMap(policyValue) else { return nil }
                out[key] = converted
            }
            return .table(out)
        }
        return nil
    }

    /// Every file whose role name another file also uses, reported in each of them.
    static func duplicateNames(_ sources: [(file: String, source: String)]) -> [PolicyDiagnostic] {
        // Names of files that failed validation still count.
        var byName: [String: [(file: String, line: Int)]] = [:]
        for (file, source) in sources {
            guard let table = try? TOML.parse(source), let name = table["name"]?.string else { continue }
            byName[name, default: []].append((file, table.line(of: "name") ?? 1))
        }
        var out: [PolicyDiagnostic] = []
        for (name, places) in byName where places.count > 1 {
            for place in places {
                let others = places.filter { $0.file != place.file }.map(\.file).joined(separator: ", ")
                out.append(PolicyDiagnostic(file: place.file, line: place.line, message: "duplicate role name '\(name)' (also in \(others))"))
            }
        }
        return out
    }
}

/// Name rules shared by roles, grants and variables.
public enum Names {
    /// What a valid role or grant name looks like, phrased to follow "invalid role name: ".
    public static let roleNameRequirement = "use 1-128 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit"

    public static func isValidRoleName(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, bytes.count <= 128, (first >= 97 && first <= 122) || (first >= 48 && first <= 57) else { return false }
        return bytes.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 || $0 == 95 || $0 == 46 }
    }

    /// The vault's own rule for secret names (one rule, `ResourceName`).
    public static func isValidSecretName(_ text: String) -> Bool {
        ResourceName.isValid(text)
    }

    public static func isValidEnvironmentVariable(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, bytes.count <= 128, !(first >= 48 && first <= 57) else { return false }
        return bytes.allSatisfy { ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
    }
}

/// Session policy text as sent to STS.
public enum SessionPolicyText {
    /// AWS's limit on the plaintext of a session policy.
    public static let maximumCharacters = 2048

    /// `json` without the blanks between its tokens (inside strings nothing changes).
    public static func minified(_ json: String) -> String {
        var out = String.UnicodeScalarView()
        var inString = false
        var escaped = false
        for scalar in json.unicodeScalars {
            if inString {
                out.append(scalar)
                if escaped { escaped = false } else if scalar == "\\" { escaped = true } else if scalar == "\"" { inString = false }
            } else if scalar == " " || scalar == "\t" || scalar == "\n" || scalar == "\r" {
                continue
            } else {
                if scalar == "\"" { inString = true }
                out.append(scalar)
            }
        }
        return String(out)
    }
}

/// Minimal JSON checks for policy documents.
enum JSONCheck {
    static func isObject(_ text: String) -> Bool {
        guard let data = text.data(using: .utf8),
              let object = try? JSONDecoder().decode([String: JSONAny].self, from: data) else { return false }
        return !object.isEmpty
    }

    struct JSONAny: Decodable {
        init(from decoder: Decoder) throws {
            if var array = try? decoder.unkeyedContainer() {
                while !array.isAtEnd { _ = try array.decode(JSONAny.self) }
            } else if let object = try? decoder.container(keyedBy: AnyKey.self) {
                for key in object.allKeys { _ = try object.decode(JSONAny.self, forKey: key) }
            } else {
                let single = try decoder.singleValueContainer()
                if single.decodeNil() { return }
                if (try? single.decode(Bool.self)) != nil { return }
                if (try? single.decode(Double.self)) != nil { return }
                _ = try single.decode(String.self)
            }
        }
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int?
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { return nil }
    }
}

/// A non-cryptographic digest to name a loaded policy set in logs and the audit.
enum Digest {
    static func fnv1a64Hex(_ bytes: [UInt8]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let text = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - text.count) + text
    }
}
