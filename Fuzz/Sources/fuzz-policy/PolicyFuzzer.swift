import FuzzSupport
@testable import MLCredPolicy

#if canImport(Glibc)
import Glibc
#endif

/// The policy loader on one role file. The input is the file's bytes; as `PolicyLoader.load`
/// does for each file it finds, bytes that are not UTF-8 are refused and the rest goes to
/// `parseRole` (TOML through TOMLKit, then every check of the role and its grants), in a policy
/// directory that holds session-policy files, so `session_policy_file` can succeed. A role that
/// validates then goes through the evaluator and the diff. Properties:
/// - nothing traps, whatever the file (errors are expected: they are diagnostics);
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
    if skipsKnownCrashes && (abortsTOMLTableHeader(source) || abortsTOMLArrayValue(source) || abortsTOMLDateTime(source)
                              || abortsTOMLMalformedDate(source)) { return 0 }
    let file = "fuzz.toml"
    let (role, problems) = PolicyLoader.parseRole(source: source, file: file, directory: directory)

    // Lines as TOML counts them: "\r\n" is one Character to Swift, so count the bytes.
    let lineCount = 1 + input.bytes.lazy.filter { $0 == 0x0A }.count
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

/// Known crash (docs/fuzzing.md; Fuzz/Corpus/policy/known-abort-date-time): toml++ asserts in
/// parse_time() when a date's `T` (or blank) is followed by something else than a digit, as in
/// `t=1979-05-27T:`. True for a source with four digits, `-`, two digits, `-`, two digits, `T`,
/// `t` or a blank, then anything but a digit (wider than the trigger).
func abortsTOMLDateTime(_ source: String) -> Bool {
    let bytes = Array(source.utf8)
    let shape: [UInt8?] = [nil, nil, nil, nil, UInt8(ascii: "-"), nil, nil, UInt8(ascii: "-"), nil, nil]  // nil: a digit
    guard bytes.count > shape.count + 1 else { return false }
    for start in 0..<(bytes.count - shape.count - 1) {
        let matches = shape.indices.allSatisfy { offset in
            let byte = bytes[start + offset]
            return shape[offset].map { byte == $0 } ?? (0x30...0x39).contains(byte)
        }
        let separator = bytes[start + shape.count]
        if matches, separator == UInt8(ascii: "T") || separator == UInt8(ascii: "t") || separator == 0x20,
           !(0x30...0x39).contains(bytes[start + shape.count + 1]) {
            return true
        }
    }
    return false
}

/// Known crash (docs/fuzzing.md; Fuzz/Corpus/policy/known-abort-date-malformed-*): toml++ asserts
/// as well when a date's month or day is cut short, as in `a=0000-06--e` or `a=[0000-01-1i`
/// (found by a 10 M-run policy fuzz). True for four digits and `-` not followed by two digits,
/// `-` and two digits (wider than the trigger).
func abortsTOMLMalformedDate(_ source: String) -> Bool {
    let bytes = Array(source.utf8)
    func digit(_ index: Int) -> Bool { index < bytes.count && (0x30...0x39).contains(bytes[index]) }
    func dash(_ index: Int) -> Bool { index < bytes.count && bytes[index] == UInt8(ascii: "-") }
    guard bytes.count >= 5 else { return false }
    for start in 0...(bytes.count - 5) where digit(start) && digit(start + 1) && digit(start + 2) && digit(start + 3) && dash(start + 4) {
        if start > 0 && digit(start - 1) { continue }  // not the start of a year
        let month = start + 5
        if !(digit(month) && digit(month + 1) && dash(month + 2) && digit(month + 3) && digit(month + 4)) { return true }
    }
    return false
}

/// Known crash (docs/fuzzing.md; Fuzz/Corpus/policy/known-abort-array-value): toml++ asserts in
/// parse_value() when an array's next value starts with a value terminator, as in `a = [}` or
/// `create = ["...",}`. True for a source with `[` or `,`, then blanks, line breaks and comments
/// only, then `}` (wider than the trigger: inside strings too).
func abortsTOMLArrayValue(_ source: String) -> Bool {
    let bytes = Array(source.utf8)
    var index = 0
    while index < bytes.count {
        defer { index += 1 }
        guard bytes[index] == UInt8(ascii: "[") || bytes[index] == UInt8(ascii: ",") else { continue }
        var next = index + 1
        while next < bytes.count {
            switch bytes[next] {
            case 0x20, 0x09, 0x0A, 0x0D: next += 1
            case UInt8(ascii: "#"): while next < bytes.count, bytes[next] != 0x0A { next += 1 }
            default: if bytes[next] == UInt8(ascii: "}") { return true }; next = bytes.count
            }
        }
    }
    return false
}

/// Known crash (docs/fuzzing.md; Fuzz/Corpus/policy/known-abort-table-header): toml++ 3 (inside
/// TOMLKit) asserts, and aborts the process, on a table header whose key starts with a character
/// that cannot start a key, e.g. the two bytes `[*`: its parse_key() assumes the caller checked.
/// SwiftPM builds C++ without NDEBUG, so the assertion is live in release builds too. True for a
/// source with a line that starts (after blanks) with `[` or `[[`, blanks, then anything but a
/// bare-key character, a quote, `]` or the end of the source: a little wider than the trigger.
func abortsTOMLTableHeader(_ source: String) -> Bool {
    // Split on the byte: to Swift "\r\n" is one Character, which a split on "\n" does not see.
    var bytes = Array(source.utf8)
    if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }  // toml++ skips a byte-order mark
    let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
    for (number, line) in lines.enumerated() {
        var rest = line.drop { $0 == 0x20 || $0 == 0x09 }
        guard rest.first == UInt8(ascii: "[") else { continue }
        rest = rest.dropFirst()
        if rest.first == UInt8(ascii: "[") { rest = rest.dropFirst() }
        rest = rest.drop { $0 == 0x20 || $0 == 0x09 }
        guard let next = rest.first else {
            if number < lines.count - 1 { return true }  // the newline follows
            continue
        }
        let startsKey = (0x41...0x5A).contains(next) || (0x61...0x7A).contains(next) || (0x30...0x39).contains(next)
            || next == UInt8(ascii: "_") || next == UInt8(ascii: "-") || next == UInt8(ascii: "\"") || next == UInt8(ascii: "'")
            || next == UInt8(ascii: "]")
        if !startsKey { return true }
    }
    return false
}
