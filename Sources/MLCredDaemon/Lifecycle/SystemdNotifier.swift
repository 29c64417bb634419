import Glibc

/// Sends sd_notify messages when the daemon runs under systemd (NOTIFY_SOCKET set).
public final class SystemdNotifier: Sendable {
    private let path: String?
    /// Half of WATCHDOG_USEC, when systemd asked this process for watchdog pings.
    public let watchdogInterval: Double?

    public init() {
        path = SystemdActivation.environment("NOTIFY_SOCKET")
        if let usec = SystemdActivation.environment("WATCHDOG_USEC").flatMap(Double.init),
           SystemdActivation.environment("WATCHDOG_PID").map({ Int32($0) == getpid() }) ?? true {
            watchdogInterval = usec / 2 / 1_000_000
        } else {
            watchdogInterval = nil
        }
        unsetenv("NOTIFY_SOCKET")
        unsetenv("WATCHDOG_USEC")
        unsetenv("WATCHDOG_PID")
    }

    /// Whether a notify socket was given.
    public var isActive: Bool { path != nil }

    /// Sends `state` (e.g. "READY=1\nSTATUS=...") as one datagram.
    public func notify(_ state: String) {
        guard let path else { return }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }  // abstract namespace
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes.first == 0 ? 0 : 1))
        _ = state.withCString { text in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, text, strlen(text), Int32(MSG_NOSIGNAL), $0, length) }
            }
        }
    }

    /// Pings the watchdog every `watchdogInterval` while the cooperative pool is responsive.
    public func runWatchdog() async {
        guard let interval = watchdogInterval else { return }
        while !Task.isCancelled {
            notify("WATCHDOG=1")
            try? await Task.sleep(nanoseconds: UInt64(interval * 1e9))
        }
    }
}
