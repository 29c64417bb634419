import Logging
import MLCredVault
import Synchronization

/// Logs refused connections at most once per uid per window, then how many more there were.
/// Threat: a user at their connection cap connecting in a loop wrote one warning per attempt
/// (6,500 lines a second), filling the journal and pushing out the daemon's other messages.
final class RefusalLog: Sendable {
    /// The window, as for merged denials in the audit (SPEC §3).
    static let windowSeconds = 10.0
    /// Windows kept at most; older ones are dropped first when more uids than this refuse.
    static let maximumWindows = 1024

    private struct Window {
        var start: Double
        var suppressed: Int
    }

    private let windows = Mutex([UInt32: Window]())
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    /// Windows held now (tests).
    var windowCount: Int { windows.withLock { $0.count } }

    /// Records one refusal of `uid` (`message`, e.g. "connection limit reached"); logs it if it
    /// opens a window, and the count of the previous window's others when there were any.
    func refused(uid: UInt32, _ message: Logger.Message, now: Double = WallClock.now()) {
        enum Action { case log(previous: Int), count }
        let action = windows.withLock { windows -> Action in
            if var window = windows[uid], now - window.start < Self.windowSeconds {
                window.suppressed += 1
                windows[uid] = window
                return .count
            }
            let previous = windows[uid]?.suppressed ?? 0
            if windows.count >= Self.maximumWindows, windows[uid] == nil {
                // Windows that ended say nothing more; the oldest goes first.
                if let oldest = windows.min(by: { $0.value.start < $1.value.start })?.key { windows[oldest] = nil }
            }
            windows[uid] = Window(start: now, suppressed: 0)
            return .log(previous: previous)
        }
        guard case .log(let previous) = action else { return }
        if previous > 0 {
            logger.warning("\(previous) more refused connection\(previous == 1 ? "" : "s") in the last window",
                           metadata: ["uid": "\(uid)", "window_seconds": "\(Int(Self.windowSeconds))"])
        }
        logger.warning(message, metadata: ["uid": "\(uid)", "merged": "further refusals of this uid within \(Int(Self.windowSeconds)) s are counted, not logged"])
    }
}
