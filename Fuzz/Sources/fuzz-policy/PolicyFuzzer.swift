import FuzzSupport
@testable import MLCredPolicy
import MLCredTOML

#if canImport(Glibc)
import Glibc
#endif

/// The policy loader on one role file. The input is the file's bytes; as `PolicyLoader.load`
/// does for each file it finds, bytes that are not UTF-8 are refused and the rest goes to
/// `parseRole` (TOML through `MLCredTOML`, then every check of the role and its grants), in a policy
/// directory that holds session-policy files, so `session_policy_file` can succeed. A role that
/// validates then goes through the evaluator and the diff. Properties:
/// - nothing traps, whatever the file (errors are expected: they are diagnostics);
/// - TOML: every key's line is one of the file's; a document that parses, written back out as
///   TOML (`TOMLWriter`), parses to the same value (strings, escapes, numbers, dates, tables);
/// - either a role or at least one diagnostic, never both, every diagnostic naming this file
///   and a line from 1 to the file's last line (FILE:LINE is what admins act on);
/// - a role that validates has a valid name, ttl <= max_ttl, grant names unique within it;
/// - a policy set compared with itself has no change.
let directoryPath: String = {
    let path = temporaryDirectory(prefix: "mlcred-fuzz-policy")
    mkdir(path + "/aws", 0o700)
    // The session policies the repository's roles name (policies/aws/, abridged), and one not JSON.
    let policy = #"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::ml-datasets/*"}]}"#
    write(path + "/aws/train-read.json", policy)
    write(path + "/aws/phi-read-only.json", policy)
    write(path + "/aws/broken.json", "not json")
    return path
}()

/// The directory as the loader reads it (through descriptors, `PolicyDirectory`).
let directory = PolicyDirectory(path: directoryPath)

func write(_ path: String, _ text: String) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { fatalError("cannot write \(path)") }
    let bytes = Array(text.utf8)
    _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    close(fd)
}

let subject = PolicySubject(uid: 1000, user: "alice", gid: 1000, groups: [(gid: 1000, name: "ml-engineers")], unit: nil)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPolicy(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    // PolicyLoader.readFile: larger than 1 MiB or not UTF-8 is "cannot read the file".
    guard input.bytes.count <= 1 << 20, let source = String(validating: input.bytes, as: UTF8.self) else { return 0 }
    // Lines as TOML counts them: "\r\n" is one Character to Swift, so count the bytes.
    let lineCount = 1 + input.bytes.lazy.filter { $0 == 0x0A }.count
    checkTOML(source, lineCount: lineCount)

    let file = "fuzz.toml"
    let (role, problems) = PolicyLoader.parseRole(source: source, file: file, directory: directory)
    guard (role == nil) != problems.isEmpty else {
        propertyFailed("role \(role?.name ?? "nil") with \(problems.count) diagnostics")
    }
    for problem in problems {
        guard problem.file == file, (1...max(1, lineCount)).contains(problem.line) else {
            propertyFailed("diagnostic at \(problem.file):\(problem.line) in a file of \(lineCount) lines: \(problem)")
        }
    }
    guard let role else { return 0 }

    guard Names.isValidRoleName(role.name) else { propertyFailed("a role named \(role.name.debugDescription) validated") }
    guard role.ttlSeconds <= role.maxTTLSeconds else { propertyFailed("ttl \(role.ttlSeconds) > max_ttl \(role.maxTTLSeconds)") }
    guard Set(role.grants.map(\.name)).count == role.grants.count else { propertyFailed("duplicate grant names in \(role.grants.map(\.name))") }

    let set = PolicySet(roles: [role.name: role], digest: "fuzz")
    for environment in ["dev", "prod"] {
        for phiDaemon in [false, true] {
            _ = PolicyEvaluator.decide(role: role.name, in: set, subject: subject, environment: environment, phiDaemon: phiDaemon)
            _ = PolicyEvaluator.assumableRoles(in: set, subject: subject, environment: environment, phiDaemon: phiDaemon)
        }
    }
    _ = PolicyDiff.markdown(PolicyDiff.compare(old: .empty, new: set))
    let unchanged = PolicyDiff.compare(old: set, new: set)
    guard unchanged.isEmpty else { propertyFailed("a policy set differs from itself: \(unchanged)") }
    return 0
}

/// The TOML properties: lines in range, and a parsed document written out parses to itself.
func checkTOML(_ source: String, lineCount: Int) {
    let table: TOMLTable
    do {
        table = try TOML.parse(source)
    } catch {
        guard (1...lineCount).contains(error.line), error.column >= 1 else { propertyFailed("syntax error outside the file: \(error)") }
        return
    }
    checkLines(table, lineCount: lineCount)
    let written = TOMLWriter.document(table)
    do {
        let again = try TOML.parse(written)
        guard TOMLWriter.same(.table(table), .table(again)) else {
            propertyFailed("written out and read back, the document changed:\n\(written)")
        }
    } catch {
        // Written as nested inline tables, a deep document may pass the nesting limit; nothing else may fail.
        guard error.message.hasPrefix("nested deeper") else { propertyFailed("written out, the document is refused: \(error)\n\(written)") }
    }
}

func checkLines(_ table: TOMLTable, lineCount: Int) {
    guard (1...lineCount).contains(table.line) else { propertyFailed("a table at line \(table.line) of \(lineCount)") }
    for key in table.keys {
        guard let line = table.line(of: key), (1...lineCount).contains(line), let value = table[key] else {
            propertyFailed("key \(key.debugDescription) without a line in the file")
        }
        checkLines(value, lineCount: lineCount)
    }
}

func checkLines(_ value: TOMLValue, lineCount: Int) {
    switch value {
    case .table(let table): checkLines(table, lineCount: lineCount)
    case .array(let elements): for element in elements { checkLines(element, lineCount: lineCount) }
    default: break
    }
}

/// Writes a parsed document back out as TOML: every table inline, every key quoted, every
/// string escaped, floats in Swift's shortest round-trip form.
enum TOMLWriter {
    static func document(_ table: TOMLTable) -> String {
        table.keys.map { "\(key($0)) = \(value(table[$0]!))\n" }.joined()
    }

    static func value(_ value: TOMLValue) -> String {
        switch value {
        case .string(let text): return key(text)
        case .integer(let number): return String(number)
        case .float(let number):
            if number.isNaN { return "nan" }
            if number.isInfinite { return number < 0 ? "-inf" : "inf" }
            return number.description
        case .boolean(let flag): return String(flag)
        case .dateTime(let date): return date.text
        case .array(let elements): return "[" + elements.map(Self.value).joined(separator: ", ") + "]"
        case .table(let table): return "{" + table.keys.map { "\(key($0)) = \(Self.value(table[$0]!))" }.joined(separator: ", ") + "}"
        }
    }

    /// A basic string: quotes, backslashes and control characters escaped.
    static func key(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let digits = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// Equal values, nan equal to nan, key order ignored.
    static func same(_ a: TOMLValue, _ b: TOMLValue) -> Bool {
        switch (a, b) {
        case (.float(let x), .float(let y)): return x == y || (x.isNaN && y.isNaN)
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
        case (.table(let x), .table(let y)):
            return Set(x.keys) == Set(y.keys) && x.keys.allSatisfy { same(x[$0]!, y[$0]!) }
        default: return a == b
        }
    }
}
