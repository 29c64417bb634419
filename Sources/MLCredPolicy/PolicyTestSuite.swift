import Glibc
import MLCredTOML

/// One case of a policy test file (`tests/*.toml`): a simulated caller, a role, an expectation.
public struct PolicyTestCase: Sendable, Equatable {
    public var file: String
    public var line: Int
    public var user: String?
    public var uid: UInt32?
    public var groups: [String]
    public var gids: [UInt32]
    public var unit: String?
    public var role: String
    public var environment: String
    public var phi: Bool
    public var expectAllow: Bool

    /// The caller this case simulates. A case without `uid` gets one no real principal uses.
    public var subject: PolicySubject {
        let id = uid ?? PolicyTestSuite.unknownID
        return PolicySubject(uid: id, user: user, gid: PolicyTestSuite.unknownID,
                             groups: groups.map { (PolicyTestSuite.unknownID, $0) } + gids.map { ($0, nil) }, unit: unit)
    }

    /// `user alice (groups ml) asking for train in prod on a phi daemon`.
    public var label: String {
        var text = "\(user.map { "user \($0)" } ?? "uid \(uid.map(String.init) ?? "?")")"
        if !groups.isEmpty { text += " (groups \(groups.joined(separator: ", ")))" }
        return text + " asking for '\(role)' in \(environment)\(phi ? " on a --phi daemon" : "")"
    }
}

/// The outcome of `policy test`.
public struct PolicyTestReport: Sendable {
    public struct Failure: Sendable {
        public var testCase: PolicyTestCase
        public var decision: PolicyDecision

        /// `FILE:LINE: expected allow, got deny: REASON`.
        public var description: String {
            "\(testCase.file):\(testCase.line): \(testCase.label): expected \(testCase.expectAllow ? "allow" : "deny"), got "
                + "\(decision.allowed ? "allow" : "deny"): \(decision.summary)"
        }
    }

    public var passed: Int
    public var failures: [Failure]
}

/// Runs `DIR/tests/*.toml` against the roles of `DIR`, with the daemon's own evaluator.
public enum PolicyTestSuite {
    static let unknownID = UInt32.max - 1
    static let caseKeys: Set<String> = ["user", "uid", "groups", "gids", "unit", "role", "environment", "phi", "expect"]

    /// Loads the roles and the cases; throws `PolicyLoadError` for invalid roles or test files.
    public static func run(directory: String) throws -> PolicyTestReport {
        let set = try PolicyLoader.load(directory: directory)
        let cases = try loadCases(directory: directory)
        // A case about a role that does not exist tests nothing: it is a mistake, not a pass.
        let unknown = cases.filter { set.roles[$0.role] == nil }.map {
            PolicyDiagnostic(file: $0.file, line: $0.line, message: "the case names role '\($0.role)', which no policy defines")
        }
        if !unknown.isEmpty { throw PolicyLoadError(diagnostics: unknown) }
        var passed = 0
        var failures: [PolicyTestReport.Failure] = []
        for testCase in cases {
            let decision = PolicyEvaluator.decide(role: testCase.role, in: set, subject: testCase.subject,
                                                  environment: testCase.environment, phiDaemon: testCase.phi, context: .simulation)
            if decision.allowed == testCase.expectAllow { passed += 1 } else { failures.append(.init(testCase: testCase, decision: decision)) }
        }
        return PolicyTestReport(passed: passed, failures: failures)
    }

    static func loadCases(directory: String) throws -> [PolicyTestCase] {
        let testsDirectory = directory + "/tests"
        var names: [String] = []
        if let dir = opendir(testsDirectory) {
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name.hasSuffix(".toml"), !name.hasPrefix(".") { names.append(name) }
            }
            closedir(dir)
        }
        var cases: [PolicyTestCase] = []
        var problems: [PolicyDiagnostic] = []
        for name in names.sorted() {
            let file = "tests/" + name
            guard let source = PolicyLoader.readFile(testsDirectory + "/" + name) else {
                problems.append(PolicyDiagnostic(file: file, line: 1, message: "cannot read the file"))
                continue
            }
            let table: TOMLTable
            do {
                table = try TOML.parse(source)
            } catch {
                problems.append(PolicyDiagnostic(file: file, line: error.line, column: error.column, message: "TOML syntax: \(error.message)"))
                continue
            }
            guard let array = table["case"]?.array else {
                problems.append(PolicyDiagnostic(file: file, line: 1, message: "a policy test file holds [[case]] tables"))
                continue
            }
            for element in array {
                let line = element.table?.line ?? table.line(of: "case") ?? 1
                func problem(_ message: String) { problems.append(PolicyDiagnostic(file: file, line: line, message: message)) }
                guard let entry = element.table else { problem("each [[case]] must be a table"); continue }
                for key in entry.keys where !caseKeys.contains(key) { problem("unknown key '\(key)' in a case") }
                guard let role = entry["role"]?.string else { problem("a case needs 'role'"); continue }
                guard let expect = entry["expect"]?.string, expect == "allow" || expect == "deny" else {
                    problem("a case needs expect = \"allow\" or \"deny\"")
                    continue
                }
                let user = entry["user"]?.string
                let uid = entry["uid"]?.int.flatMap { UInt32(exactly: $0) }
                if user == nil && uid == nil { problem("a case needs 'user' or 'uid'"); continue }
                let groups = entry["groups"]?.array.map { $0.compactMap(\.string) } ?? []
                let gids = entry["gids"]?.array.map { $0.compactMap { $0.int.flatMap { UInt32(exactly: $0) } } } ?? []
                cases.append(PolicyTestCase(
                    file: file, line: line, user: user, uid: uid, groups: groups, gids: gids, unit: entry["unit"]?.string, role: role,
                    environment: entry["environment"]?.string ?? "dev", phi: entry["phi"]?.bool ?? false, expectAllow: expect == "allow"))
            }
        }
        guard problems.isEmpty else { throw PolicyLoadError(diagnostics: problems.sorted()) }
        return cases
    }
}
