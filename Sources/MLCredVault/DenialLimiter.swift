import MLCredAPI
import MLCredStore
import Synchronization

/// SPEC §3: a uid's denials beyond the first `allowed` in `windowSeconds` are merged into one
/// record ("N more denials from uid U in 10 s"), written when the window ends.
///
/// Threat: any local user who can reach the socket can be denied as fast as the daemon answers;
/// each denial written durably is disk and fsync time taken from everyone else. Merged, a flood
/// costs one record per uid per window. Nothing is hidden: the merged record counts them.
final class DenialLimiter: Sendable {
    static let windowSeconds = 10.0
    static let allowed = 10
    /// How long a denial past the allowance waits before it is answered: a flooding uid's
    /// connections each get a few answers a second (and at most `Limits.maxConnectionsPerUID`
    /// connections), so its flood cannot take the daemon's CPU from other users.
    static let mergedAnswerDelayNanoseconds: UInt64 = 200_000_000

    struct Window {
        var start: Double
        var written = 0
        var merged = 0
        /// The last merged denial: its principal and action head the summary.
        var last: AuditEvent?
    }

    private let windows = Mutex<[UInt32: Window]>([:])

    /// What to write for `event`, a denial at `now`: itself unless merged, preceded by the summary
    /// of the uid's previous window when that has just ended. `mergeAll` merges every denial
    /// (the store is below its free-space reserve).
    func admit(_ event: AuditEvent, now: Double, mergeAll: Bool) -> [AuditEvent] {
        admitting(event, now: now, mergeAll: mergeAll).events
    }

    /// `admit`, and whether `event` itself was merged (its uid is past its allowance).
    func admitting(_ event: AuditEvent, now: Double, mergeAll: Bool) -> (events: [AuditEvent], merged: Bool) {
        let uid = event.principal.uid
        return windows.withLock { windows in
            var out: [AuditEvent] = []
            var window = windows[uid] ?? Window(start: now)
            if now - window.start >= Self.windowSeconds || now < window.start {
                if let summary = Self.summary(of: window, uid: uid) { out.append(summary) }
                window = Window(start: now)
            }
            let merged = mergeAll || window.written >= Self.allowed
            if merged {
                window.merged += 1
                window.last = event
            } else {
                window.written += 1
                out.append(event)
            }
            windows[uid] = window
            return (out, merged)
        }
    }

    /// Summaries of every window that has ended by `now` (every window when `all`), which are forgotten.
    func drain(now: Double, all: Bool = false) -> [AuditEvent] {
        windows.withLock { windows in
            var out: [AuditEvent] = []
            for (uid, window) in windows where all || now - window.start >= Self.windowSeconds || now < window.start {
                if let summary = Self.summary(of: window, uid: uid) { out.append(summary) }
                windows[uid] = nil
            }
            return out
        }
    }

    static func summary(of window: Window, uid: UInt32) -> AuditEvent? {
        guard window.merged > 0, let last = window.last else { return nil }
        let seconds = Int(windowSeconds)
        let detail = last.reason.map { ": " + $0 } ?? ""
        return AuditEvent(principal: last.principal, action: last.action, role: last.role, grant: last.grant, result: .denied,
                          reason: "\(window.merged) more denial\(window.merged == 1 ? "" : "s") from uid \(uid) in \(seconds) s (last: \(last.action.activity)\(detail))")
    }
}
