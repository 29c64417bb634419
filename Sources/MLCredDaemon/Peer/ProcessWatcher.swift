import CLinux
import Glibc
import Synchronization

/// One process, watched through a pidfd that this watcher owns and closes exactly once: on
/// `stop()` or when the watcher is released, whichever comes first.
///
/// Threat: a pid can be reused by another process once the first exits; a pidfd names one
/// process for good, so a token bound to a `mlcred run` process ends with that process, not with
/// whoever holds its pid later. Owning the descriptor here means no raw number is handed around
/// to be closed twice (which could close an unrelated descriptor that reused the number) or never.
public final class ProcessWatcher: Sendable {
    /// The pidfd, or -1 once stopped. Checked and closed under the lock, so a check never polls a
    /// number that `stop()` has just freed for reuse.
    private let descriptor: Mutex<Int32>

    private init(owning descriptor: Int32) {
        self.descriptor = Mutex(descriptor)
    }

    /// Watches the process on the other end of a connection, through a duplicate of the pidfd the
    /// kernel gave at accept time (the connection keeps, and closes, its own). Nil when the kernel
    /// gave none or it cannot be duplicated.
    public convenience init?(peer: PeerIdentity) {
        guard peer.pidfd >= 0 else { return nil }
        let duplicate = fcntl(peer.pidfd, F_DUPFD_CLOEXEC, 0)
        guard duplicate >= 0 else { return nil }
        self.init(owning: duplicate)
    }

    /// Watches the process that holds `pid` now, if it started at `startTime` (the start time
    /// recorded when a token was bound, so a reused pid is not mistaken for it). Nil otherwise.
    public convenience init?(pid: Int32, startTime: UInt64) {
        let fd = mlc_pidfd_open(pid)
        guard fd >= 0 else { return nil }
        // Checked after opening: if the start time matches now, the pidfd holds that process.
        guard PeerAttestation.startTime(pid: pid) == startTime else {
            close(fd)
            return nil
        }
        self.init(owning: fd)
    }

    deinit { stop() }

    /// Whether the watched process has exited. A stopped watcher vouches for nothing: true.
    public var hasExited: Bool {
        descriptor.withLock { fd in fd < 0 || PeerAttestation.hasExited(pidfd: fd) }
    }

    /// Stops watching and closes the pidfd; later calls do nothing.
    public func stop() {
        descriptor.withLock { fd in
            guard fd >= 0 else { return }
            close(fd)
            fd = -1
        }
    }
}
