import Glibc
import MLCredAPI
import Synchronization

/// The free-space reserve of the state file system (SPEC §3 `--min-free`). Below it the daemon
/// refuses what makes the store grow at a caller's will (new tokens, new secrets) with 507
/// `store_full`, while what must still happen keeps room to write: revocations, renewals, seal,
/// audit of admin actions. It lifts by itself when space returns: every check looks again.
///
/// Threat: a local user who fills the disk (through us or otherwise) must not leave the daemon
/// unable to record that a credential ended.
public final class FreeSpaceReserve: Sendable {
    /// How the reserve is sized.
    public enum Size: Sendable, Equatable {
        /// The smaller of 64 MiB and 5% of the file system (the default).
        case automatic
        /// A fixed number of bytes (0 turns the reserve off).
        case bytes(UInt64)
    }

    /// The automatic reserve's cap.
    public static let automaticCap: UInt64 = 64 << 20

    /// How long one look at the file system is trusted: `statvfs` is a system call, and hot
    /// paths ask on every token.
    static let recheckNanoseconds: UInt64 = 200_000_000

    private let directory: String
    private let size: Size
    private let last = Mutex<Reading?>(nil)

    /// What one `statvfs` said.
    public struct Reading: Sendable, Equatable {
        /// Bytes an unprivileged writer may still use.
        public var available: UInt64
        /// The reserve for this file system, in bytes.
        public var reserve: UInt64
        var takenAt: UInt64

        public var isBelow: Bool { available < reserve }
    }

    public init(directory: String, size: Size) {
        self.directory = directory
        self.size = size
    }

    /// The current reading, at most `recheckNanoseconds` old; nil when the file system cannot be
    /// read (then nothing is refused: the write itself reports a real failure).
    public func reading() -> Reading? {
        let now = Self.monotonicNanoseconds()
        if let cached = last.withLock({ $0 }), now &- cached.takenAt < Self.recheckNanoseconds { return cached }
        var info = statvfs()
        guard statvfs(directory, &info) == 0 else { return nil }
        let blockSize = UInt64(info.f_frsize)
        let total = UInt64(info.f_blocks) * blockSize
        let reserve: UInt64 = switch size {
        case .automatic: min(Self.automaticCap, total / 20)
        case .bytes(let bytes): bytes
        }
        let reading = Reading(available: UInt64(info.f_bavail) * blockSize, reserve: reserve, takenAt: now)
        last.withLock { $0 = reading }
        return reading
    }

    /// Whether the file system is below the reserve now.
    public var isBelow: Bool { reading()?.isBelow ?? false }

    /// Throws 507 `store_full` when below the reserve; `what` names what was refused ("new tokens").
    public func check(refusing what: String) throws {
        guard let reading = reading(), reading.isBelow else { return }
        throw APIError(.storeFull, """
            the state file system is below its free-space reserve (\(Self.mebibytes(reading.available)) free, \
            reserve \(Self.mebibytes(reading.reserve))): \(what) are refused until space is freed; \
            revocations and renewals still work
            """)
    }

    static func mebibytes(_ bytes: UInt64) -> String {
        bytes >= 1 << 20 ? "\(bytes >> 20) MiB" : "\(bytes >> 10) KiB"
    }

    static func monotonicNanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    /// Parses `--min-free`: `auto`, or a size such as `64M`, `64MiB`, `1G`, `512K`, `0` (bytes
    /// without a suffix; powers of 1024).
    public static func parse(_ text: String) -> Size? {
        var rest = Substring(text.lowercased())
        if rest == "auto" { return .automatic }
        if rest.hasSuffix("b") { rest = rest.dropLast() }
        if rest.hasSuffix("i") { rest = rest.dropLast() }
        var unit: UInt64 = 1
        switch rest.last {
        case "k": unit = 1 << 10
        case "m": unit = 1 << 20
        case "g": unit = 1 << 30
        default: break
        }
        if unit != 1 { rest = rest.dropLast() }
        guard !rest.isEmpty, rest.allSatisfy(\.isASCII), let value = UInt64(rest), value <= UInt64.max / unit else { return nil }
        return .bytes(value * unit)
    }
}
