import Glibc

/// systemd socket activation (LISTEN_FDS) without libsystemd. `SystemdNotifier` speaks the
/// notify protocol (READY=1, RELOADING=1, STOPPING=1, WATCHDOG=1 over NOTIFY_SOCKET).
public enum SystemdActivation {
    /// The first descriptor systemd passes (SD_LISTEN_FDS_START).
    static let firstPassedDescriptor: Int32 = 3

    /// The listening socket systemd passed to this process, if any. Clears the variables so
    /// children do not inherit them.
    public static func passedSocket() throws -> Int32? {
        guard let pidText = environment("LISTEN_PID"), Int32(pidText) == getpid(),
              let countText = environment("LISTEN_FDS"), let count = Int(countText), count >= 1 else { return nil }
        unsetenv("LISTEN_PID")
        unsetenv("LISTEN_FDS")
        unsetenv("LISTEN_FDNAMES")
        let fd = firstPassedDescriptor
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        var accepting: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0, accepting == 1 else {
            throw StartupError("LISTEN_FDS is set but descriptor 3 is not a listening socket")
        }
        return fd
    }

    static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }
}
