import Glibc
import MLCredAPI

/// The caller of one connection, attested by the kernel when it was accepted.
public struct PeerIdentity: Sendable {
    /// uid, gid, pid (SO_PEERCRED), groups (SO_PEERGROUPS), user name, systemd unit.
    public let principal: Principal
    /// A pidfd of the peer process taken at accept time (SO_PEERPIDFD), or -1 if the kernel has none.
    /// Owned by the connection; closed when it closes.
    public let pidfd: Int32
    /// Whether the peer connected with the run group as its effective gid (SO_PEERCRED): the
    /// installed `mlcred run`. `principal.gid` is then its real gid, read from /proc.
    public let connectedWithRunGroup: Bool

    public init(principal: Principal, pidfd: Int32, connectedWithRunGroup: Bool = false) {
        self.principal = principal
        self.pidfd = pidfd
        self.connectedWithRunGroup = connectedWithRunGroup
    }

    /// Whether this caller is an admin: uid 0, the daemon's own uid, or a member of the admin group.
    public func isAdmin(adminGroup: UInt32?) -> Bool {
        if principal.uid == 0 || principal.uid == getuid() { return true }
        guard let adminGroup else { return false }
        return principal.gid == adminGroup || principal.groups.contains(adminGroup)
    }
}
