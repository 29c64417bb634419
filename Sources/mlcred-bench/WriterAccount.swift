import Glibc
import MLCredClient

/// What the daemon's store writer and the disk under it did during one load run: the writer's
/// counters from `/v1/metrics` (its busy time against the wall clock says whether it is the
/// bottleneck) and the block device's counters from `/proc/diskstats` (bytes and writes per
/// operation, and how long the device took per write).
struct WriterAccount {
    struct Reading {
        var transactions = 0.0
        var writes = 0.0
        var busySeconds = 0.0
        var commitSeconds = 0.0
        /// Of the device holding the state directory: writes completed, sectors written, and
        /// milliseconds spent writing.
        var deviceWrites = 0.0
        var deviceSectors = 0.0
        var deviceMilliseconds = 0.0
        var time = 0.0
    }

    let socket: String
    /// `major:minor` of the device holding the daemon's state (nil when unknown).
    let device: (major: UInt32, minor: UInt32)?

    init(socket: String, stateDirectory: String) {
        self.socket = socket
        var info = stat()
        if stat(stateDirectory, &info) == 0 {
            // glibc's gnu_dev_major / gnu_dev_minor, which are macros Swift does not see.
            let dev = UInt64(info.st_dev)
            device = (UInt32(truncatingIfNeeded: ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff))),
                      UInt32(truncatingIfNeeded: (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff))))
        } else {
            device = nil
        }
    }

    func read() -> Reading {
        var reading = Reading()
        reading.time = now()
        if let connection = try? HTTPConnection(path: socket),
           let (status, body) = try? connection.send(method: "GET", path: "/v1/metrics"), status == 200 {
            for line in String(decoding: body, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
                let parts = line.split(separator: " ")
                guard parts.count == 2, let value = Double(parts[1]) else { continue }
                switch parts[0] {
                case "mlcred_store_transactions_total": reading.transactions = value
                case "mlcred_store_writes_total": reading.writes = value
                case "mlcred_store_writer_busy_seconds_total": reading.busySeconds = value
                case "mlcred_store_commit_seconds_total": reading.commitSeconds = value
                default: break
                }
            }
        }
        if let device, let file = fopen("/proc/diskstats", "r") {
            defer { fclose(file) }
            var line = [CChar](repeating: 0, count: 512)
            while fgets(&line, Int32(line.count), file) != nil {
                let fields = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).split(separator: " ")
                // major minor name reads … (3-6), writes completed (7), merged (8), sectors (9), ms (10)
                guard fields.count > 10, UInt32(fields[0]) == device.major, UInt32(fields[1]) == device.minor else { continue }
                reading.deviceWrites = Double(fields[7]) ?? 0
                reading.deviceSectors = Double(fields[9]) ?? 0
                reading.deviceMilliseconds = Double(fields[10]) ?? 0
            }
        }
        return reading
    }

    /// Two lines: the writer's share of the wall time, its group size and time per group; the
    /// device's bytes and writes per operation and its time per write.
    static func lines(from before: Reading, to after: Reading, operations: Int) -> String {
        let wall = after.time - before.time
        let groups = after.transactions - before.transactions
        let writes = after.writes - before.writes
        guard operations > 0, groups > 0, wall > 0 else { return "  store writer: no commits counted" }
        let busy = after.busySeconds - before.busySeconds
        let commit = after.commitSeconds - before.commitSeconds
        var text = String(format: "  store writer: busy %.0f %% of the time; %.1f writes per group commit; per group %.0f µs, of which %.0f µs committing (WAL writes and fsync)",
                          busy / wall * 100, writes / groups, busy / groups * 1e6, commit / groups * 1e6)
        let deviceWrites = after.deviceWrites - before.deviceWrites
        if deviceWrites > 0 {
            text += String(format: "\n  disk under the state directory: %.1f KB and %.1f writes per operation, %.0f µs per write",
                           (after.deviceSectors - before.deviceSectors) * 512 / 1000 / Double(operations),
                           deviceWrites / Double(operations), (after.deviceMilliseconds - before.deviceMilliseconds) * 1000 / deviceWrites)
        }
        return text
    }
}
