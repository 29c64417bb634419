import ArgumentParser
import CLinux
import Glibc
import MLCredAPI
import MLCredClient
import MLCredPolicy

/// The policy directory to use offline: the one given, else ./policies, else /etc/mlcred/policies.
func resolvePolicyDirectory(_ given: String?) -> String {
    if let given { return given }
    var info = stat()
    return stat("policies", &info) == 0 ? "policies" : "/etc/mlcred/policies"
}

/// Refuses, in words, a policy directory argument that is missing or is a file (the loader
/// would report it as a directory it cannot read).
func requirePolicyDirectory(_ path: String, verb: String) throws {
    var info = stat()
    guard stat(path, &info) == 0 else {
        let reason = String(cString: strerror(errno))
        throw CLIError("cannot use policy directory \(path): \(reason)",
                       hint: "give the directory that holds the role files (*.toml), e.g. 'mlcred policy \(verb) policies'")
    }
    if info.st_mode & S_IFMT == S_IFREG {
        let slash = path.lastIndex(of: "/")
        let parent = slash.map { path[..<$0].isEmpty ? "/" : String(path[..<$0]) } ?? "."
        throw CLIError("\(path) is a file: 'policy \(verb)' takes the whole policy directory (role names and references are checked across its files)",
                       hint: "give its directory: 'mlcred policy \(verb) \(parent)'")
    }
}

struct PolicyValidate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a policy directory offline; every error as FILE:LINE: message (exit 1 on any).",
        discussion: """
            Checks schema, durations, principals, grant fields per type, referenced files,
            phi rules, ttl <= max_ttl and duplicate names. --against-daemon also checks
            that every referenced secret exists in the running daemon with the right type
            and phi label (admin).

            Example (CI of a policy repository):
              mlcred policy validate policies && mlcred policy test policies
            """)

    @Argument(help: "The policy directory (default ./policies, else /etc/mlcred/policies).")
    var directory: String?
    @Flag(help: "Also check referenced secrets against the running daemon (admin).")
    var againstDaemon = false
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var ok: Bool
        var roles: Int
        var errors: [Problem]
    }

    struct Problem: Encodable {
        var file: String
        var line: Int
        var column: Int?
        var message: String

        enum CodingKeys: String, CodingKey { case file, line, column, message }

        /// `column` is always present (null when the error has no column), so tools can rely on it.
        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(file, forKey: .file)
            try container.encode(line, forKey: .line)
            try container.encode(column, forKey: .column)
            try container.encode(message, forKey: .message)
        }
    }

    func run() throws {
        let path = resolvePolicyDirectory(directory)
        try requirePolicyDirectory(path, verb: "validate")
        var diagnostics: [PolicyDiagnostic] = []
        var roleCount = 0
        do {
            // Modes as the daemon judges them (not owners: a reviewer's checkout is the reviewer's).
            let set = try PolicyLoader.load(directory: path, judgeModes: true)
            roleCount = set.roles.count
            if againstDaemon {
                let secrets: SecretListResponse = try connection.client().call("GET", "/v1/secrets")
                diagnostics += PolicyChecks.secretReferences(set, secrets: secrets.secrets)
            }
        } catch let error as PolicyLoadError {
            diagnostics = error.diagnostics
        }
        if output.json {
            try Terminal.printJSON(Report(ok: diagnostics.isEmpty, roles: roleCount,
                                          errors: diagnostics.map { Problem(file: $0.file, line: $0.line, column: $0.column, message: $0.message) }))
        } else {
            for diagnostic in diagnostics { Terminal.err(diagnostic.description + "\n") }
            if diagnostics.isEmpty { Terminal.out("\(path): \(roleCount) role\(roleCount == 1 ? "" : "s") valid\n") }
        }
        if !diagnostics.isEmpty {
            if output.json { throw ExitCode(1) }
            throw CLIError("\(diagnostics.count) error\(diagnostics.count == 1 ? "" : "s") in \(path)", hint: "fix each FILE:LINE above")
        }
    }
}

/// Checks that need the daemon's secret list.
enum PolicyChecks {
    static func secretReferences(_ set: PolicySet, secrets: [SecretMetadata]) -> [PolicyDiagnostic] {
        let byName = Dictionary(secrets.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var out: [PolicyDiagnostic] = []
        for role in set.roles.values {
            for grant in role.grants {
                guard let secret = byName[grant.secret] else {
                    out.append(PolicyDiagnostic(file: role.file, line: grant.line, message: "grant '\(grant.name)' names secret '\(grant.secret)', which the daemon does not have"))
                    continue
                }
                if secret.type != grant.type.secretType.rawValue {
                    out.append(PolicyDiagnostic(file: role.file, line: grant.line,
                                                message: "grant '\(grant.name)' (\(grant.type.rawValue)) needs a secret of type \(grant.type.secretType), but '\(grant.secret)' is of type \(secret.type)"))
                }
                if secret.phi && !role.phi {
                    out.append(PolicyDiagnostic(file: role.file, line: grant.line,
                                                message: "grant '\(grant.name)' uses phi-labelled secret '\(grant.secret)' in non-phi role '\(role.name)'"))
                }
            }
        }
        return out.sorted()
    }
}

struct PolicyTest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Run DIR/tests/*.toml offline; print 'N passed, N failed' (exit 1 on any failure, also with --json).",
        discussion: """
            A test file holds cases:
              [[case]]
              user = "bob"            # or uid = 1001
              groups = ["ml"]
              role = "train-phi"
              environment = "prod"    # default dev
              phi = true              # simulate a --phi daemon
              expect = "deny"         # or "allow"
            """)

    @Argument(help: "The policy directory (default ./policies, else /etc/mlcred/policies).")
    var directory: String?
    @OptionGroup var output: OutputOptions

    /// `--json`: the counts, each failing case with the evaluator's reasons, and load errors.
    struct Report: Encodable {
        var ok: Bool
        var passed: Int
        var failed: Int
        var failures: [Failure]
        var errors: [PolicyValidate.Problem]
    }

    struct Failure: Encodable {
        var file: String
        var line: Int
        var testCase: String
        var expected: String
        var got: String
        var reasons: [String]

        enum CodingKeys: String, CodingKey {
            case file, line, expected, got, reasons
            case testCase = "case"
        }
    }

    func run() throws {
        let path = resolvePolicyDirectory(directory)
        try requirePolicyDirectory(path, verb: "test")
        let report: PolicyTestReport
        do {
            report = try PolicyTestSuite.run(directory: path)
        } catch let error as PolicyLoadError {
            if output.json {
                let problems = error.diagnostics.map { PolicyValidate.Problem(file: $0.file, line: $0.line, column: $0.column, message: $0.message) }
                try Terminal.printJSON(Report(ok: false, passed: 0, failed: 0, failures: [], errors: problems))
                throw ExitCode(ExitStatus.error.rawValue)
            }
            for diagnostic in error.diagnostics { Terminal.err(diagnostic.description + "\n") }
            let count = error.diagnostics.count
            throw CLIError("cannot run the policy tests: \(count) error\(count == 1 ? "" : "s") in \(path)", hint: "fix each FILE:LINE above")
        }
        if output.json {
            let failures = report.failures.map {
                Failure(file: $0.testCase.file, line: $0.testCase.line, testCase: $0.testCase.label,
                        expected: $0.testCase.expectAllow ? "allow" : "deny", got: $0.decision.allowed ? "allow" : "deny",
                        reasons: $0.decision.reasons)
            }
            try Terminal.printJSON(Report(ok: failures.isEmpty, passed: report.passed, failed: failures.count, failures: failures, errors: []))
        } else {
            for failure in report.failures { Terminal.out("FAIL " + failure.description + "\n") }
            Terminal.out("\(report.passed) passed, \(report.failures.count) failed\n")
        }
        if report.passed == 0, report.failures.isEmpty {
            // Not an error (a new repository has none yet), but not to be read as a passing suite.
            Terminal.err("mlcred: no policy test cases found: they go in \(path)/tests/*.toml (docs/policy-repo.md)\n")
        }
        if !report.failures.isEmpty { throw ExitCode(ExitStatus.error.rawValue) }
    }
}

struct PolicyExplain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Explain whether a caller may assume a role, and why: offline from DIR, or by the daemon's loaded set.",
        discussion: """
            Uses the same evaluator the daemon issues with. With --user and no --group,
            the user's groups on this host are used.

            Examples:
              mlcred policy explain policies --role train-phi --user bob --group ml --environment prod --phi
              mlcred policy explain --role train --uid 1001          # the running daemon's view (admin)
            """)

    @Argument(help: "A policy directory; omit to ask the running daemon.")
    var directory: String?
    @Option(help: "The role.")
    var role: String
    @Option(help: "The caller's user name.")
    var user: String?
    @Option(help: "The caller's uid.")
    var uid: UInt32?
    @Option(help: "A group of the caller (repeatable).")
    var group: [String] = []
    @Option(help: "The environment (offline default dev; the daemon's own otherwise).")
    var environment: String?
    @Flag(help: "Simulate a --phi daemon.")
    var phi = false
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard (user == nil) != (uid == nil) else { throw ValidationError("give exactly one of --user and --uid") }
    }

    func run() throws {
        var groups = group
        var resolvedUID = uid
        var notes: [String] = []
        if let user, group.isEmpty, let host = HostGroups.lookup(user: user) {
            groups = host.groups
            resolvedUID = resolvedUID ?? host.uid
            notes.append("groups of \(user) on this host: \(groups.isEmpty ? "none" : groups.joined(separator: ", "))")
        }
        let answer: ExplainResponse
        if let directory {
            let set: PolicySet
            try requirePolicyDirectory(directory, verb: "explain")
            do {
                set = try PolicyLoader.load(directory: directory)
            } catch let error as PolicyLoadError {
                for diagnostic in error.diagnostics { Terminal.err(diagnostic.description + "\n") }
                throw CLIError("\(directory) is invalid", hint: "run 'mlcred policy validate \(directory)'")
            }
            let subject = PolicySubject(uid: resolvedUID ?? UInt32.max - 1, user: user, gid: UInt32.max - 1,
                                        groups: groups.map { (UInt32.max - 1, $0) }, unit: nil)
            let decision = PolicyEvaluator.decide(role: role, in: set, subject: subject, environment: environment ?? "dev", phiDaemon: phi,
                                                  context: .simulation)
            var reasons = notes + decision.reasons
            if decision.allowed, set.roles[role]?.emergency == true {
                reasons.append("emergency role '\(role)': usable only while two admins have an emergency open, which only the daemon knows ('mlcred policy explain --role \(role)' without a directory asks it)")
            }
            let grants = decision.allowed ? GrantExplanation.lines(role: role, in: set, environment: environment ?? "dev") : []
            answer = ExplainResponse(allowed: decision.allowed, reasons: reasons + grants)
        } else {
            let request = ExplainRequest(role: role, user: user, uid: resolvedUID, groups: groups, environment: environment, phi: phi ? true : nil)
            var remote: ExplainResponse = try connection.client().call("POST", "/v1/policies/explain", body: request)
            remote.reasons = notes + remote.reasons
            answer = remote
        }
        if output.json {
            try Terminal.printJSON(answer)
        } else {
            Terminal.out((answer.allowed ? "allow" : "deny") + "\n")
            for reason in answer.reasons { Terminal.out("  - \(VisibleText.escaped(reason))\n") }
        }
        // A deny exits 3 in both forms: scripts test the exit code, not the text.
        if !answer.allowed { throw ExitCode(3) }
    }
}

/// A user's uid and group names on this host (NSS).
enum HostGroups {
    static func lookup(user: String) -> (uid: UInt32, groups: [String])? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwnam_r(user, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        var count: Int32 = 64
        var gids = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(user, entry.pw_gid, &gids, &count) < 0 {
            gids = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(user, entry.pw_gid, &gids, &count)
        }
        let names = gids.prefix(Int(count)).compactMap { gid -> String? in
            guard let group = getgrgid(gid), let name = group.pointee.gr_name else { return nil }
            return String(cString: name)
        }
        return (entry.pw_uid, names)
    }
}

struct PolicyDiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "The change in effective access between two policy sets, as Markdown for a pull request (or --json).",
        discussion: """
            OLD and NEW are directories, or git revisions of one directory: REV (the
            directory 'policies' of the repository here) or REV:PATH.

            Examples:
              mlcred policy diff /etc/mlcred/policies ./policies
              mlcred policy diff origin/main HEAD
              mlcred policy diff origin/main:ops/policies HEAD:ops/policies --json
            """)

    @Argument(help: "The old set: a directory or a git revision.")
    var old: String
    @Argument(help: "The new set: a directory or a git revision.")
    var new: String
    @OptionGroup var output: OutputOptions
    /// Checkouts of git revisions, removed when the command ends.
    private final class Temporary { var paths: [String] = [] }
    private let scratch = Temporary()
    private var temporary: [String] { scratch.paths }

    enum CodingKeys: CodingKey { case old, new, output }

    func run() throws {
        defer { for directory in temporary { GitCheckout.remove(directory) } }
        let before = try load(old)
        let after = try load(new)
        let changes = PolicyDiff.compare(old: before, new: after)
        if output.json { return try Terminal.printJSON(changes) }
        Terminal.out(PolicyDiff.markdown(changes))
    }

    private func load(_ spec: String) throws -> PolicySet {
        var info = stat()
        var directory = spec
        if stat(spec, &info) != 0 {
            let checkout = try GitCheckout.extract(spec)
            scratch.paths.append(checkout.root)
            directory = checkout.policies
        }
        do {
            return try PolicyLoader.load(directory: directory)
        } catch let error as PolicyLoadError {
            for diagnostic in error.diagnostics { Terminal.err(diagnostic.description + "\n") }
            throw CLIError("\(spec) is not a valid policy set", hint: "run 'mlcred policy validate' on it")
        }
    }
}

/// Extracts `REV[:PATH]` of the git repository in the working directory into a temporary directory.
enum GitCheckout {
    static func extract(_ spec: String) throws -> (root: String, policies: String) {
        let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
        let revision = parts[0]
        let path = parts.count > 1 ? parts[1] : "policies"
        guard !revision.hasPrefix("-"), !path.hasPrefix("-") else { throw CLIError("bad revision '\(spec)'", status: .usage) }
        var template = Array("/tmp/mlcred-policy-diff-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw CLIError("cannot create a temporary directory") }
        let target = String(cString: made)
        // git archive writes the tree of REV:PATH; tar unpacks it. Arguments pass as argv, not a shell line.
        let command = ["/bin/sh", "-c", "git archive --format=tar \"$1\" -- \"$2\" 2>/dev/null | tar -x -C \"$3\" 2>/dev/null", "sh", revision, path, target]
        var execErrno: Int32 = 0
        let pid = withCStrings(command) { argv in
            withCStrings(currentEnvironment().map { "\($0.key)=\($0.value)" }) { envp in
                mlc_spawn("/bin/sh", argv, envp, -1, -1, -1, &execErrno)
            }
        }
        var status: Int32 = 0
        guard pid > 0, waitpid(pid, &status, 0) == pid, status == 0 else {
            remove(target)
            throw CLIError("'\(spec)' is neither a directory nor a git revision with a '\(path)' directory here",
                           hint: "run inside the policy repository, e.g. mlcred policy diff origin/main HEAD")
        }
        return (target, target + "/" + path)
    }

    /// Removes a checkout made by `extract`.
    static func remove(_ directory: String) {
        guard directory.hasPrefix("/tmp/mlcred-policy-diff-") else { return }
        let command = ["/bin/rm", "-rf", "--", directory]
        var execErrno: Int32 = 0
        let pid = withCStrings(command) { argv in withCStrings([]) { envp in mlc_spawn("/bin/rm", argv, envp, -1, -1, -1, &execErrno) } }
        var status: Int32 = 0
        if pid > 0 { waitpid(pid, &status, 0) }
    }
}
