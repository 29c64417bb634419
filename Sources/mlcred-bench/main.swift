// The benchmark driver of scripts/bench: measures the product against a running daemon and
// prints each figure beside its floor (a plain Unix-socket echo between two processes; one
// SQLite synchronous=FULL commit).
import Foundation
import Glibc
import MLCredAPI
import MLCredClient
import MLCredStore

func now() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

struct LoadResult {
    var operations: Int
    var seconds: Double
    var latencies: [Double]
    var errors: Int

    /// `LABEL: N/s p99 X ms`, the benchmark's closing form.
    func summary(_ label: String) -> String {
        let sorted = latencies.sorted()
        let p99 = sorted.isEmpty ? Double.nan : sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))] * 1000
        return String(format: "%@: %.0f/s p99 %.2f ms", label, Double(operations) / seconds, p99)
    }

    func line(_ label: String) -> String {
        let sorted = latencies.sorted()
        func p(_ q: Double) -> Double { sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))] * 1000 }
        return String(format: "  %@ %9.0f/s   p50 %7.3f ms   p99 %7.3f ms   errors %d",
                      label.padding(toLength: 36, withPad: " ", startingAt: 0), Double(operations) / seconds, p(0.5), p(0.99), errors)
    }
}

/// A per-thread worker: set up once, then time one operation per call.
protocol Worker: AnyObject {
    func operate() throws
}

final class Collector: @unchecked Sendable {
    var latencies: [[Double]]
    var errors: [Int]
    /// The first error each client met, said once per client (a count alone tells nothing).
    var firstErrors: [String?]
    init(_ count: Int) {
        latencies = Array(repeating: [], count: count)
        errors = Array(repeating: 0, count: count)
        firstErrors = Array(repeating: nil, count: count)
    }
}

/// Runs `clients` threads for `seconds`, each with its own worker.
func load(clients: Int, seconds: Double, makeWorker: @escaping @Sendable () throws -> Worker) -> LoadResult {
    let collector = Collector(clients)
    let group = DispatchGroup()
    let start = now()
    let deadline = start + seconds
    for index in 0..<clients {
        group.enter()
        Thread.detachNewThread {
            defer { group.leave() }
            let worker: Worker
            do {
                worker = try makeWorker()
            } catch {
                collector.errors[index] += 1
                collector.firstErrors[index] = "connect: \(error)"
                return
            }
            var local: [Double] = []
            local.reserveCapacity(200_000)
            while now() < deadline {
                let t0 = now()
                do {
                    try worker.operate()
                    local.append(now() - t0)
                } catch {
                    collector.errors[index] += 1
                    if collector.firstErrors[index] == nil { collector.firstErrors[index] = "\(error)" }
                }
            }
            collector.latencies[index] = local
        }
    }
    group.wait()
    // The distinct first errors, on stderr: the result line stays the one the scripts parse.
    var said = Set<String>()
    for case let message? in collector.firstErrors where said.insert(message).inserted {
        FileHandle.standardError.write(Data("  error: \(message)\n".utf8))
    }
    let all = collector.latencies.flatMap { $0 }
    return LoadResult(operations: all.count, seconds: now() - start, latencies: all, errors: collector.errors.reduce(0, +))
}

struct BenchError: Error { let message: String }

/// Token issue, and (unless `fetch` is false) a jwt credential fetch, on one keep-alive connection.
final class IssueAndFetch: Worker {
    let connection: HTTPConnection
    let request: [UInt8]
    let fetch: Bool

    init(socket: String, role: String, fetch: Bool = true) throws {
        connection = try HTTPConnection(path: socket)
        request = JSONWriter.encode(TokenRequest(role: role, ttl: nil, bind: nil))
        self.fetch = fetch
    }

    func operate() throws {
        let (status, body) = try connection.send(method: "POST", path: "/v1/tokens", body: request)
        guard status == 200 else { throw BenchError(message: "token: HTTP \(status)") }
        guard fetch else { return }
        // Read as `mlcred run` reads it (no Foundation decoder): the client shares the two cores.
        let token = try JSONObjectReader.decode(TokenResponse.self, from: body)
        let (fetched, _) = try connection.send(method: "POST", path: "/v1/credentials", body: Array("{}".utf8), bearer: token.token)
        guard fetched == 200 else { throw BenchError(message: "credentials: HTTP \(fetched)") }
    }
}

/// A hostile caller (issue 13): token requests for roles that do not exist, with names of the
/// longest valid length, as fast as the daemon answers. Every one is a denial to audit.
final class Flooder: Worker {
    let connection: HTTPConnection
    var counter = 0
    let prefix = String(Int.random(in: 0..<1_000_000))

    init(socket: String) throws {
        connection = try HTTPConnection(path: socket)
    }

    func operate() throws {
        counter += 1
        let name = String(("flood-\(prefix)-\(counter)-" + String(repeating: "x", count: 128)).prefix(128))
        let (status, _) = try connection.send(method: "POST", path: "/v1/tokens", body: JSONWriter.encode(TokenRequest(role: name, ttl: nil, bind: nil)))
        guard status == 403 else { throw BenchError(message: "flood: HTTP \(status)") }
    }
}

/// A request/response round trip of the same size over a plain Unix socket: the floor.
final class EchoClient: Worker {
    let fd: Int32
    let message = [UInt8](repeating: 65, count: 300)
    var buffer = [UInt8](repeating: 0, count: 4096)

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = unixAddress(path)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else { throw BenchError(message: "echo connect failed") }
    }

    func operate() throws {
        guard write(fd, message, message.count) == message.count else { throw BenchError(message: "echo write") }
        var received = 0
        while received < message.count {
            let n = read(fd, &buffer, buffer.count)
            guard n > 0 else { throw BenchError(message: "echo read") }
            received += n
        }
    }
}

func unixAddress(_ path: String) -> sockaddr_un {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
    }
    return address
}

func echoServer(path: String) -> Never {
    unlink(path)
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var address = unixAddress(path)
    _ = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    listen(fd, 128)
    while true {
        let client = accept(fd, nil, nil)
        if client < 0 { continue }
        Thread.detachNewThread {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = read(client, &buffer, buffer.count)
                if n <= 0 { break }
                _ = write(client, buffer, n)
            }
            close(client)
        }
    }
}

/// Anonymous and file-backed resident memory of `pid`, from /proc/PID/smaps_rollup.
func memoryBreakdown(pid: Int32) -> String {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/smaps_rollup", encoding: .utf8) else { return "  (no smaps_rollup)" }
    var fields: [String: Double] = [:]
    for line in text.split(separator: "\n") {
        let parts = line.split(separator: " ", omittingEmptySubsequences: true)
        if parts.count >= 2, let kib = Double(parts[1]) { fields[String(parts[0].dropLast())] = kib }
    }
    func mib(_ key: String) -> String { String(format: "%.1f", (fields[key] ?? 0) / 1024) }
    return "  breakdown (smaps_rollup, MiB): anonymous \(mib("Anonymous")), file-backed \(String(format: "%.1f", ((fields["Rss"] ?? 0) - (fields["Anonymous"] ?? 0)) / 1024)) (shared \(mib("Shared_Clean")) clean, private \(mib("Private_Clean")) clean / \(mib("Private_Dirty")) dirty), Pss \(mib("Pss"))"
}

/// CPU time (user + system, ms) that children reaped while `body` ran used.
func childCPUMilliseconds(_ body: () -> Void) -> Double {
    var before = rusage()
    getrusage(RUSAGE_CHILDREN.rawValue, &before)
    body()
    var after = rusage()
    getrusage(RUSAGE_CHILDREN.rawValue, &after)
    func ms(_ t: timeval) -> Double { Double(t.tv_sec) * 1000 + Double(t.tv_usec) / 1000 }
    return (ms(after.ru_utime) + ms(after.ru_stime)) - (ms(before.ru_utime) + ms(before.ru_stime))
}

func rss(pid: Int32) -> String {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kib = line.split(separator: " ").dropFirst().first.flatMap({ Double($0) }) else { return "?" }
    return String(format: "%.1f MiB", kib / 1024)
}

/// Runs the command `runs` times; the median wall time and the median CPU time (user + system
/// of the command and its children), in ms. Medians: a neighbour's burst moves one sample, not
/// the figure.
func timeCommand(_ arguments: [String], environment: [String: String], runs: Int) -> (wall: Double, cpu: Double) {
    var walls: [Double] = []
    var cpus: [Double] = []
    for _ in 0..<runs {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        process.environment = environment
        process.standardOutput = FileHandle.nullDevice
        var wall = 0.0
        let cpu = childCPUMilliseconds {
            let t0 = now()
            try? process.run()
            process.waitUntilExit()
            wall = now() - t0
        }
        walls.append(wall * 1000)
        cpus.append(cpu)
    }
    walls.sort()
    cpus.sort()
    return (walls[walls.count / 2], cpus[cpus.count / 2])
}

/// One GET of a fixed path per operation, any status accepted: what the HTTP layer alone costs
/// (a path no route names is answered without a task; `/v1/status` runs on the event loop's task
/// executor and reads the vault's state).
final class PlainGet: Worker {
    let connection: HTTPConnection
    let path: String

    init(socket: String, path: String) throws {
        connection = try HTTPConnection(path: socket)
        self.path = path
    }

    func operate() throws {
        _ = try connection.send(method: "GET", path: path, body: [])
    }
}

// MARK: main

let arguments = CommandLine.arguments
if arguments.count == 3, arguments[1] == "--echo-server" { echoServer(path: arguments[2]) }
// One load level alone, for profiling the daemon (perf record -p): --load SOCKET CLIENTS SECONDS [FETCH 1|0|/PATH].
// A path as the last argument GETs it instead (the HTTP layer's own cost per request).
if arguments.count >= 5, arguments[1] == "--load" {
    let mode = arguments.count < 6 ? "1" : arguments[5]
    let fetch = mode != "0"
    let account = CPUAccount.listener(of: arguments[2]).map { CPUAccount(daemonPID: $0) }
    let before = account?.read()
    let writer = WriterAccount(socket: arguments[2], stateDirectory: (arguments[2] as NSString).deletingLastPathComponent)
    let writerBefore = writer.read()
    let result = load(clients: Int(arguments[3]) ?? 32, seconds: Double(arguments[4]) ?? 5) {
        mode.hasPrefix("/") ? try PlainGet(socket: arguments[2], path: mode) as Worker : try IssueAndFetch(socket: arguments[2], role: "bench", fetch: fetch)
    }
    print(result.line("mlcred, \(arguments[3]) clients" + (mode.hasPrefix("/") ? ", GET \(mode)" : fetch ? "" : ", token issue only")))
    if let account, let before { print(CPUAccount.line(from: before, to: account.read(), operations: result.operations)) }
    print(WriterAccount.lines(from: writerBefore, to: writer.read(), operations: result.operations))
    exit(0)
}
// The same from CLIENTS connections driven by THREADS polling threads (pgbench -c 32 -j 2):
// --load-polled SOCKET CLIENTS SECONDS THREADS.
if arguments.count == 6, arguments[1] == "--load-polled" {
    let account = CPUAccount.listener(of: arguments[2]).map { CPUAccount(daemonPID: $0) }
    let before = account?.read()
    let result = MultiplexedLoad.run(socket: arguments[2], role: "bench", clients: Int(arguments[3]) ?? 32,
                                     threads: Int(arguments[5]) ?? 2, seconds: Double(arguments[4]) ?? 5)
    print(result.line("mlcred, \(arguments[3]) clients on \(arguments[5]) threads"))
    if let account, let before { print(CPUAccount.line(from: before, to: account.read(), operations: result.operations)) }
    exit(0)
}
// The group-commit floor alone, for comparing with one --load level: --floor DIRECTORY CLIENTS SECONDS.
if arguments.count == 5, arguments[1] == "--floor" {
    let floor = try GroupCommitFloor(path: arguments[2] + "/group-floor.db")
    let account = CPUAccount(daemonPID: getpid())
    let before = account.read()
    let result = load(clients: Int(arguments[3]) ?? 32, seconds: Double(arguments[4]) ?? 5) { [floor] in
        GroupCommitWorker(floor: floor, id: Int.random(in: 0..<Int.max))
    }
    floor.stop()
    print(result.line("group-commit floor, \(arguments[3]) writers") + (floor.committer.failures > 0 ? "   FAILED COMMITS \(floor.committer.failures)" : ""))
    print(floor.committer.line(seconds: result.seconds))
    print(CPUAccount.floorLine(from: before, to: account.read(), operations: result.operations))
    exit(0)
}
// The same-shape floor alone: --floor-shape DIRECTORY CLIENTS SECONDS.
if arguments.count == 5, arguments[1] == "--floor-shape" {
    let floor = try ShapedCommitFloor(path: arguments[2] + "/shaped-floor.db")
    let account = CPUAccount(daemonPID: getpid())
    let before = account.read()
    let result = load(clients: Int(arguments[3]) ?? 32, seconds: Double(arguments[4]) ?? 5) { [floor] in
        ShapedCommitWorker(floor: floor, id: Int.random(in: 0..<Int.max))
    }
    floor.stop()
    print(result.line("same-shape floor, \(arguments[3]) writers") + (floor.committer.failures > 0 ? "   FAILED COMMITS \(floor.committer.failures)" : ""))
    print(floor.committer.line(seconds: result.seconds))
    print(CPUAccount.floorLine("same-shape floor", from: before, to: account.read(), operations: result.operations))
    exit(0)
}
// The hostile side of `scripts/bench --flood`, run as another uid: --flood SOCKET CLIENTS SECONDS.
if arguments.count == 5, arguments[1] == "--flood" {
    let result = load(clients: Int(arguments[3]) ?? 16, seconds: Double(arguments[4]) ?? 10) { try Flooder(socket: arguments[2]) }
    print(result.line("flood of denied token requests, \(arguments[3]) clients"))
    exit(0)
}
guard arguments.count >= 6 else {
    print("usage: mlcred-bench SOCKET DAEMON_PID MLCRED_BINARY SCRATCH_DIR TOKENS [SECONDS]")
    exit(2)
}
let socketPath = arguments[1]
let daemonPID = Int32(arguments[2]) ?? 0
let mlcredBinary = arguments[3]
let scratch = arguments[4]
let bulkTokens = Int(arguments[5]) ?? 1_000_000
let seconds = arguments.count > 6 ? Double(arguments[6]) ?? 5 : 5
let role = "bench"

// The daemon trims itself after 5 s without a request (IdleTrim: free heap pages returned, the
// code it ran at start unmapped); both readings are printed, and what the trim costs the next
// request: its first issue + fetch, beside a warm one.
let settledRSS = rss(pid: daemonPID)
sleep(7)
print("idle RSS: \(rss(pid: daemonPID))   (target, SPEC §11: under 20 MiB; 1 s after start-up, before the idle trim: \(settledRSS))")
print(memoryBreakdown(pid: daemonPID))
do {
    let first = try IssueAndFetch(socket: socketPath, role: "bench")
    var started = DispatchTime.now().uptimeNanoseconds
    try first.operate()
    let cold = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6
    started = DispatchTime.now().uptimeNanoseconds
    try first.operate()
    let warm = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6
    print(String(format: "  first issue+fetch after the idle trim: %.2f ms (the next: %.2f ms)", cold, warm))
}

// Floors.
let echoPath = scratch + "/echo.sock"
let echo = Process()
echo.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
echo.arguments = ["--echo-server", echoPath]
try echo.run()
while access(echoPath, F_OK) != 0 { usleep(1000) }
var echoFloor: [Int: LoadResult] = [:]
for clients in [1, 8, 32] {
    echoFloor[clients] = load(clients: clients, seconds: seconds / 2) { try EchoClient(path: echoPath) }
}
echo.terminate()

let store = try Store(path: scratch + "/floor.db")
var commits: [Double] = []
for index in 0..<200 {
    let t0 = now()
    _ = try await store.write { try $0.setMeta("k\(index % 10)", String(index)) }
    commits.append(now() - t0)
}
commits.sort()
print(String(format: "floor: one SQLite synchronous=FULL commit (WAL): p50 %.3f ms, p99 %.3f ms",
             commits[commits.count / 2] * 1000, commits[commits.count * 99 / 100] * 1000))

// The group-commit floor: 32 writers sharing fsyncs, two commits per operation, on the same
// file system as the daemon's store, by the simplest loop (not mlcred's writer).
let groupFloor = try GroupCommitFloor(path: scratch + "/group-floor.db")
var commitFloor: [Int: LoadResult] = [:]
let account = CPUAccount(daemonPID: daemonPID)
var floorCPU = ""
for clients in [1, 8, 32] {
    let before = account.read()
    commitFloor[clients] = load(clients: clients, seconds: seconds / 2) { [groupFloor] in
        GroupCommitWorker(floor: groupFloor, id: Int.random(in: 0..<Int.max))
    }
    if clients == 32 { floorCPU = CPUAccount.floorLine(from: before, to: account.read(), operations: commitFloor[32]!.operations) }
}
groupFloor.stop()
// The same-shape floor: the rows and indexes of one issue + fetch, by the simplest loop.
let shapedFloor = try ShapedCommitFloor(path: scratch + "/shaped-floor.db")
let shaped = load(clients: 32, seconds: seconds / 2) { [shapedFloor] in ShapedCommitWorker(floor: shapedFloor, id: Int.random(in: 0..<Int.max)) }
shapedFloor.stop()
for (name, failures) in [("group-commit floor", groupFloor.committer.failures), ("same-shape floor", shapedFloor.committer.failures)] where failures > 0 {
    print("WARNING: the \(name) had \(failures) failed group commits: its figures do not count")
}

print("\ntoken issue + jwt credential fetch (durable), beside its floors: a plain Unix-socket echo (two round trips)")
print("and the group-commit floor (writers sharing fsyncs, two commits per operation):")
var results: [Int: LoadResult] = [:]
let writer = WriterAccount(socket: socketPath, stateDirectory: scratch)
var writerLines = ""
for clients in [1, 8, 32] {
    let before = account.read()
    let writerBefore = writer.read()
    let result = load(clients: clients, seconds: seconds) { try IssueAndFetch(socket: socketPath, role: role) }
    let after = account.read()
    if clients == 32 { writerLines = WriterAccount.lines(from: writerBefore, to: writer.read(), operations: result.operations) }
    results[clients] = result
    print(result.line("mlcred, \(clients) clients"))
    if let floor = echoFloor[clients] { print(floor.line("echo floor, \(clients) clients")) }
    if let floor = commitFloor[clients] { print(floor.line("group-commit floor, \(clients) clients")) }
    if clients == 32 {
        // Where the time went: on two cores under 32 clients the rate is bound by CPU, not the disk.
        print(CPUAccount.line(from: before, to: after, operations: result.operations))
        print(floorCPU)
        print(writerLines)
        print(shaped.line("same-shape floor, 32 writers"))
        // The same load from one thread polling the 32 connections (pgbench -c 32 -j 1): what
        // the client's own threads cost the rate.
        let polledBefore = account.read()
        let polled = MultiplexedLoad.run(socket: socketPath, role: role, clients: 32, threads: 1, seconds: seconds)
        print(polled.line("mlcred, 32 clients, 1 polling thread"))
        print(CPUAccount.line(from: polledBefore, to: account.read(), operations: polled.operations))
    }
}
print("  (target, SPEC §11: 20,000/s at 32 clients with p99 under 2 ms, or at least half the group-commit floor")
print("   with p99 under twice the floor's)")

print("\nmlcred run -- true, against true alone (median of 30):")
let trueAlone = timeCommand(["/bin/true"], environment: ["PATH": "/usr/bin:/bin"], runs: 30)
let run = timeCommand([mlcredBinary, "run", "--role", role, "--", "/bin/true"],
                      environment: ["PATH": "/usr/bin:/bin", "MLCRED_SOCKET": socketPath], runs: 30)
let viaRun = run.wall
// run's own: the CPU of `run -- true` less that of `true` alone, each the median of 30.
let runCPU = run.cpu - trueAlone.cpu
let commitP50 = commits[commits.count / 2] * 1000
print(String(format: "  true: %.2f ms   mlcred run -- true: %.2f ms   overhead %.2f ms, %.2f ms beyond its two commits (one commit p50 %.2f ms)",
             trueAlone.wall, viaRun, viaRun - trueAlone.wall, viaRun - trueAlone.wall - 2 * commitP50, commitP50))
print(String(format: "  run's own CPU (user+sys, median of 30, less true's %.2f ms): %.2f ms   (target: overhead under 10 ms beyond the two commits; CPU under 5 ms)",
             trueAlone.cpu, runCPU))

print("\nissuing \(bulkTokens) tokens (32 clients)...")
let bulkStart = now()
final class Counter: @unchecked Sendable { var value = 0; let lock = NSLock() }
let issued = Counter()
let perClient = bulkTokens / 32
let group = DispatchGroup()
for _ in 0..<32 {
    group.enter()
    Thread.detachNewThread {
        defer { group.leave() }
        guard let worker = try? IssueAndFetch(socket: socketPath, role: role, fetch: false) else { return }
        for _ in 0..<perClient where (try? worker.operate()) != nil {
            issued.lock.lock(); issued.value += 1; issued.lock.unlock()
        }
    }
}
group.wait()
print(String(format: "  issued %d tokens in %.1f s (%.0f/s); daemon RSS holding them: %@   (target: under 100 MiB)",
             issued.value, now() - bulkStart, Double(issued.value) / (now() - bulkStart), rss(pid: daemonPID)))
// What holding them costs an idle daemon: its sweeper looks every second for expired and
// process-bound tokens and leases, which must not mean walking every live one.
do {
    let before = account.read()
    sleep(5)
    let after = account.read()
    let used = after.daemon.values.reduce(0, +) - before.daemon.values.reduce(0, +)
    print(String(format: "  idle daemon CPU holding them: %.1f %% of a core (5 s)", used / 5 * 100))
}

if let floor = commitFloor[32], let ours = results[32] {
    print("")
    // Beside the two lines SPEC §11 names, the same-shape floor: what the daemon's rows and
    // indexes allow on this disk by the simplest loop (the rest of the gap is the daemon's path).
    print(shaped.summary("same-shape floor@32"))
    print(String(format: "ratios: issue+fetch@32 / floor@32 %.2f (target 0.5); / same-shape floor@32 %.2f; same-shape / floor %.2f",
                 Double(ours.operations) / ours.seconds / (Double(floor.operations) / floor.seconds),
                 Double(ours.operations) / ours.seconds / (Double(shaped.operations) / shaped.seconds),
                 Double(shaped.operations) / shaped.seconds / (Double(floor.operations) / floor.seconds)))
    print(floor.summary("floor@32"))
    print(ours.summary("issue+fetch@32"))
}
