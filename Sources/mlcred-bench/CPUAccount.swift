import Glibc
import MLCredClient

/// Where the CPU of one load run went, per operation: the daemon's threads by kind (from
/// `/proc/PID/task/*/stat`) and this process's client threads (`getrusage`). On a machine that
/// is bound by CPU, the sum caps the rate: `cores / (CPU per operation)`, whatever the disk.
struct CPUAccount {
    /// CPU seconds by thread kind of the daemon, and of this process.
    struct Reading {
        var daemon: [ThreadKind: Double]
        var client: Double
    }

    /// The daemon's threads by what they do (their names, `/proc/.../comm`).
    enum ThreadKind: String, CaseIterable {
        case eventLoops = "event loops"
        case writer
        case other = "other daemon threads"

        init(comm: String) {
            if comm.hasPrefix("NIO-ELT") {
                self = .eventLoops
            } else if comm == "mlcred-writer" {
                self = .writer
            } else {
                self = .other
            }
        }
    }

    let daemonPID: Int32

    func read() -> Reading {
        var daemon: [ThreadKind: Double] = [:]
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        if let tasks = opendir("/proc/\(daemonPID)/task") {
            defer { closedir(tasks) }
            while let entry = readdir(tasks) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard let tid = Int(name), let stat = Self.contents("/proc/\(daemonPID)/task/\(tid)/stat"),
                      let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { continue }
                let comm = String(stat[stat.index(after: open)..<close])
                // After the name: state (field 3), …, utime (14), stime (15).
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { continue }
                daemon[ThreadKind(comm: comm), default: 0] += (user + system) / ticks
            }
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let client = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        return Reading(daemon: daemon, client: client)
    }

    /// One line: microseconds of CPU per operation by kind, their sum, and the rate that sum
    /// allows on this machine's cores.
    static func line(from before: Reading, to after: Reading, operations: Int) -> String {
        guard operations > 0 else { return "  CPU per operation: no operations" }
        let perOperation = { (seconds: Double) in seconds * 1e6 / Double(operations) }
        var parts: [String] = []
        var total = 0.0
        for kind in ThreadKind.allCases {
            let used = perOperation((after.daemon[kind] ?? 0) - (before.daemon[kind] ?? 0))
            total += used
            parts.append(String(format: "%@ %.0f µs", kind.rawValue, used))
        }
        let client = perOperation(after.client - before.client)
        total += client
        parts.append(String(format: "this client %.0f µs", client))
        let cores = Double(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        return String(format: "  CPU per operation: %@; %.0f µs in all, so %.0f cores allow at most %.0f/s",
                      parts.joined(separator: ", "), total, cores, cores * 1e6 / total)
    }

    /// The floor's CPU per operation: it runs inside this process.
    static func floorLine(_ name: String = "group-commit floor", from before: Reading, to after: Reading, operations: Int) -> String {
        guard operations > 0 else { return "  \(name)'s CPU per operation: no operations" }
        let used = (after.client - before.client) * 1e6 / Double(operations)
        return String(format: "  %@'s CPU per operation (this process): %.0f µs", name, used)
    }

    /// The pid of the process listening on the Unix socket at `path` (SO_PEERCRED), or nil.
    static func listener(of path: String) -> Int32? {
        (try? HTTPConnection(path: path))?.peerPID()
    }

    private static func contents(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = fread(&buffer, 1, buffer.count, file)
        return String(decoding: buffer[0..<count], as: UTF8.self)
    }
}
