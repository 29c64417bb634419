import Glibc

/// Who may listen on the daemon's socket before the CLI sends it a passphrase, a Shamir share
/// or a secret value: root, the caller's own uid (a `--dev` daemon), or the daemon user, named
/// by `$MLCRED_DAEMON_USER`, else `daemon_user = NAME` in `/etc/mlcred/client.conf`, else `mlcred`.
///
/// Threat (issue 13 finding 9): a user who pre-created the socket's directory, or won a race for
/// its path, listens in the daemon's place and receives an admin's unseal passphrase. The kernel
/// says who listens (SO_PEERCRED); a name on a path does not.
public struct DaemonTrust: Sendable {
    /// The uids trusted, and how to name them in a message.
    public let uids: Set<UInt32>
    public let description: String

    /// The default trust for this process: root, the caller, the configured daemon user.
    public static func forCaller(environment: (String) -> String? = { getenv($0).map { String(cString: $0) } },
                                 clientConfig: String = "/etc/mlcred/client.conf") -> DaemonTrust {
        let name = environment("MLCRED_DAEMON_USER").flatMap { $0.isEmpty ? nil : $0 }
            ?? configuredDaemonUser(path: clientConfig) ?? "mlcred"
        var uids: Set<UInt32> = [0, getuid()]
        var named = "root, your uid \(getuid())"
        if let user = getpwnam(name) {
            uids.insert(user.pointee.pw_uid)
            named += " or the daemon user '\(name)' (uid \(user.pointee.pw_uid))"
        } else {
            named += " (no daemon user '\(name)' exists here; set MLCRED_DAEMON_USER or daemon_user in /etc/mlcred/client.conf)"
        }
        return DaemonTrust(uids: uids, description: named)
    }

    public init(uids: Set<UInt32>, description: String) {
        self.uids = uids
        self.description = description
    }

    /// Throws `ClientError.untrustedDaemon` unless the process listening on `connection` runs as a trusted uid.
    public func check(_ connection: HTTPConnection) throws {
        guard let uid = connection.peerUID() else {
            throw ClientError.unreachable(path: connection.path, reason: "the kernel does not say who listens on this socket", errno: nil)
        }
        guard uids.contains(uid) else {
            throw ClientError.untrustedDaemon(path: connection.path, uid: uid, trusted: description)
        }
    }

    /// `daemon_user = NAME` from the client configuration (one `key = value` per line, `#` comments).
    static func configuredDaemonUser(path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0, let line {
            let text = String(cString: line)
            let content = text.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let parts = content.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: Set(" \t\r\n\"")) }
            if parts.count == 2, parts[0] == "daemon_user", !parts[1].isEmpty { return parts[1] }
        }
        return nil
    }
}
