import Glibc
import Synchronization
import TOMLKit

/// Parses TOML first in a child process, so input that crashes the parser crashes the child.
///
/// Threat (found by fuzzing, `docs/fuzzing.md`): toml++ 3, which TOMLKit bundles, checks some of
/// its parser's preconditions with `assert`, compiled in in every build: a policy file such as
/// `[*` or `a = [}` aborts the process. In the daemon that is a reload taking the service down
/// instead of keeping the last good set, on an admin's typo. So every document is first handed
/// to a fresh copy of the running binary (`BINARY --toml-canary`, answered by `serveIfAsked`
/// before anything else runs), which parses it and says "ok"; a document it does not survive is
/// reported as an error and never parsed in-process. The child gets the very bytes the parent
/// will parse (on its standard input), so nothing can change in between.
public enum TOMLCanary {
    /// The hidden argument both binaries answer.
    public static let argument = "--toml-canary"
    private static let enabled = Atomic<Bool>(false)
    /// The diagnostic for a document the parser does not survive.
    static let crashMessage = "TOML syntax: the parser cannot read this file (an unclosed or misplaced bracket, brace or quote, or a malformed date or time); check its syntax"

    /// Turns the canary on for this process (the binaries do; unit tests parse in-process).
    public static func enable() {
        enabled.store(true, ordering: .relaxed)
    }

    /// Runs the child's side and exits, when this process was started as a canary.
    public static func serveIfAsked(_ arguments: [String]) {
        guard arguments.count == 2, arguments[1] == argument else { return }
        // Framing on stdin: "<byte count>\n<bytes>" per document; answer "ok\n" after each.
        var input: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(0, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            input += chunk.prefix(n)
        }
        var offset = 0
        while let newline = input[offset...].firstIndex(of: 0x0A), let count = Int(String(decoding: input[offset..<newline], as: UTF8.self)),
              newline + 1 + count <= input.count {
            let text = String(decoding: input[(newline + 1)..<(newline + 1 + count)], as: UTF8.self)
            _ = try? TOMLTable(string: text)
            _ = write(1, "ok\n", 3)
            offset = newline + 1 + count
        }
        exit(0)
    }

    /// The indices of `documents` the parser does not survive (empty when the canary is off or
    /// cannot run: then parsing goes on in-process, as before).
    static func crashing(_ documents: [String]) -> Set<Int> {
        guard enabled.load(ordering: .relaxed), !documents.isEmpty else { return [] }
        var crashed: Set<Int> = []
        var start = 0
        while start < documents.count {
            guard let survived = run(Array(documents[start...])) else { return crashed }
            if survived == documents.count - start { break }
            crashed.insert(start + survived)
            start += survived + 1
        }
        return crashed
    }

    /// How many of `documents` a child parsed before it died (all of them: it did not); nil if no child could run.
    private static func run(_ documents: [String]) -> Int? {
        var toChild: [Int32] = [-1, -1]
        var fromChild: [Int32] = [-1, -1]
        guard pipe(&toChild) == 0 else { return nil }
        guard pipe(&fromChild) == 0 else {
            close(toChild[0]); close(toChild[1])
            return nil
        }
        defer { close(fromChild[0]) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        // The parser's own abort message would only confuse: the diagnostic names the file.
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addclose(&actions, toChild[1])
        posix_spawn_file_actions_addclose(&actions, fromChild[0])
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/proc/self/exe"), strdup(argument), nil]
        defer { for pointer in argv { free(pointer) } }
        let environment: [UnsafeMutablePointer<CChar>?] = [strdup("SWIFT_BACKTRACE=enable=no"), nil]
        defer { for pointer in environment { free(pointer) } }
        let spawned = posix_spawn(&pid, "/proc/self/exe", &actions, nil, argv, environment)
        close(toChild[0])
        close(fromChild[1])
        guard spawned == 0 else {
            close(toChild[1])
            return nil
        }
        // The answers are 3 bytes per document: the child never blocks on them before reading all input.
        var payload: [UInt8] = []
        for document in documents {
            let bytes = Array(document.utf8)
            payload += Array("\(bytes.count)\n".utf8) + bytes
        }
        var offset = 0
        while offset < payload.count {
            let n = payload[offset...].withUnsafeBytes { write(toChild[1], $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }  // the child died early: its answers say where
            offset += n
        }
        close(toChild[1])
        var answers: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fromChild[0], &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            answers += chunk.prefix(n)
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let parsed = answers.filter { $0 == 0x0A }.count
        let exitedNormally = status & 0x7F == 0 && (status >> 8) & 0xFF == 0
        return exitedNormally ? documents.count : min(parsed, documents.count)
    }
}
