import CLinux
import Glibc
import MLCredAPI

/// Reads who is on the other end of a Unix socket from the kernel. This file and
/// `NameDirectory` are the only places that call `getsockopt` on peers or read `/proc`.
///
/// Threat: a caller that claims an identity. Nothing here trusts the caller: uid, gid and pid
/// come from SO_PEERCRED, groups from SO_PEERGROUPS (both snapshots taken by the kernel at
/// connect time), and anything read from /proc/PID is trusted only if the pidfd taken from the
/// socket (SO_PEERPIDFD) shows the same process still alive afterwards, so a recycled pid cannot
/// lend its /proc entry to someone else.
public enum PeerAttestation {
    // Linux socket option numbers (asm-generic/socket.h); older libc headers lack some.
    static let soPeerGroups: Int32 = 59
    static let soPeerPidfd: Int32 = 77

    /// Errors while attesting a connection.
    public enum Failure: Error, CustomStringConvertible {
        case getsockopt(option: String, errno: Int32)

        public var description: String {
            switch self {
            case .getsockopt(let option, let code): "getsockopt(\(option)) failed: \(String(cString: strerror(code)))"
            }
        }
    }

    /// Attests the peer of the connected socket `fd`.
    /// `runGroup`: the gid the installed `mlcred` is setgid to. A peer whose effective gid is
    /// that group is recorded with its real gid (policies and the audit see the user's own
    /// group), and marked as having connected with the run group.
    public static func attest(fd: Int32, names: NameDirectory, runGroup: UInt32? = nil) throws -> PeerIdentity {
        var uid: uid_t = 0, gid: gid_t = 0, pid: pid_t = 0
        guard mlc_peer_credentials(fd, &uid, &gid, &pid) == 0 else {
            throw Failure.getsockopt(option: "SO_PEERCRED", errno: errno)
        }
        let groups = try peerGroups(fd: fd)
        var pidfd: Int32 = -1
        var pidfdLength = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, SOL_SOCKET, soPeerPidfd, &pidfd, &pidfdLength) != 0 {
            pidfd = -1
        } else {
            _ = fcntl(pidfd, F_SETFD, FD_CLOEXEC)
        }
        var unit = systemUnit(pid: pid)
        if unit != nil, !processAlive(pidfd: pidfd, pid: pid) {
            // The process is gone: its pid may already name another process's /proc entry.
            unit = nil
        }
        var recordedGID = gid
        let withRunGroup = runGroup != nil && gid == runGroup
        if withRunGroup, let real = realGID(pid: pid), processAlive(pidfd: pidfd, pid: pid) {
            recordedGID = real
        }
        let principal = Principal(
            uid: uid, gid: recordedGID, user: names.userName(uid: uid),
            pid: pid, groups: groups, unit: unit)
        return PeerIdentity(principal: principal, pidfd: pidfd, connectedWithRunGroup: withRunGroup)
    }

    /// SO_PEERGROUPS: the supplementary groups the peer had when it connected.
    static func peerGroups(fd: Int32) throws -> [UInt32] {
        var capacity = 64
        while true {
            var buffer = [gid_t](repeating: 0, count: capacity)
            var length = socklen_t(capacity * MemoryLayout<gid_t>.size)
            if getsockopt(fd, SOL_SOCKET, soPeerGroups, &buffer, &length) == 0 {
                return Array(buffer.prefix(Int(length) / MemoryLayout<gid_t>.size))
            }
            // ERANGE: the kernel wrote the size it needs into `length`.
            guard errno == ERANGE, Int(length) > capacity * MemoryLayout<gid_t>.size else {
                throw Failure.getsockopt(option: "SO_PEERGROUPS", errno: errno)
            }
            capacity = Int(length) / MemoryLayout<gid_t>.size
        }
    }

    /// Whether the process the pidfd refers to is still running. Without a pidfd (kernels before
    /// 6.5), the pid's existence is the best available answer.
    static func processAlive(pidfd: Int32, pid: Int32) -> Bool {
        if pidfd >= 0 {
            // A pidfd becomes readable when its process exits.
            var entry = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
            return poll(&entry, 1, 0) == 0
        }
        return kill(pid, 0) == 0 || errno == EPERM
    }

    /// The systemd system unit of `pid`, from its cgroup path, only under `system.slice`: the
    /// names of user-manager units (`user@.service/...`) are chosen by the user and prove nothing.
    static func systemUnit(pid: Int32) -> String? {
        readSmallFile("/proc/\(pid)/cgroup").flatMap(systemUnit(cgroup:))
    }

    /// The unit named by a cgroup v2 membership line, only under `system.slice`.
    static func systemUnit(cgroup text: String) -> String? {
        for line in text.split(separator: "\n") where line.hasPrefix("0::") {
            let path = line.dropFirst(3).split(separator: "/")
            guard path.count >= 2, path[0] == "system.slice" else { return nil }
            let unit = String(path[1])
            return unit.hasSuffix(".service") || unit.hasSuffix(".scope") ? unit : nil
        }
        return nil
    }

    /// The start time of `pid` (clock ticks after boot, field 22 of /proc/PID/stat): with the
    /// pid, it names one process for good, across pid reuse.
    public static func startTime(pid: Int32) -> UInt64? {
        guard let text = readSmallFile("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return nil }
        // Fields after the command name (which may hold spaces and parentheses) start at field 3.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }

    /// Whether the process behind `pidfd` has exited. Internal: callers outside hold a
    /// `ProcessWatcher`, never a raw pidfd.
    static func hasExited(pidfd: Int32) -> Bool {
        var entry = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) != 0
    }

    /// The start time of the peer process, if it is still the process the kernel attested (its
    /// pidfd is open and alive after /proc was read).
    public static func boundStartTime(of peer: PeerIdentity) -> UInt64? {
        guard peer.pidfd >= 0, let start = startTime(pid: peer.principal.pid), !hasExited(pidfd: peer.pidfd) else { return nil }
        return start
    }

    /// Whether the peer is `mlcred run` as installed (SPEC §3): it connected with the run group
    /// as its effective gid (SO_PEERCRED's gid: the installed `mlcred` is setgid to that group,
    /// so the kernel's secure-exec refuses LD_PRELOAD and same-uid ptrace attach), and no
    /// process traces it now (`TracerPid` 0, read while its pidfd shows it alive).
    /// A guard against accidents and casual misuse, not against a user who controls their own job.
    public static func isRunClient(_ peer: PeerIdentity) -> Bool {
        guard peer.connectedWithRunGroup else { return false }
        guard let status = readSmallFile("/proc/\(peer.principal.pid)/status"),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("TracerPid:") }),
              line.dropFirst("TracerPid:".count).trimmingPrefix(while: { $0 == " " || $0 == "\t" }) == "0" else { return false }
        return processAlive(pidfd: peer.pidfd, pid: peer.principal.pid)
    }

    /// The real gid of `pid` (first field of `Gid:` in /proc/PID/status).
    static func realGID(pid: Int32) -> UInt32? {
        guard let status = readSmallFile("/proc/\(pid)/status"),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Gid:") }) else { return nil }
        return line.dropFirst("Gid:".count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap { UInt32($0) }
    }

    static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = read(fd, &buffer, buffer.count)
        guard count > 0 else { return nil }
        return String(decoding: buffer.prefix(count), as: UTF8.self)
    }
}
