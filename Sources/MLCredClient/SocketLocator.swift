import Glibc

/// Finds the daemon's socket (SPEC §5): `--socket`, `$MLCRED_SOCKET`, `/run/mlcred/mlcred.sock`,
/// `$XDG_RUNTIME_DIR/mlcred.sock`, then the `--dev` default under `~/.local/share/mlcred`.
public enum SocketLocator {
    /// The system-wide default socket.
    public static let systemPath = "/run/mlcred/mlcred.sock"

    /// The socket to use. An explicit path or `$MLCRED_SOCKET` is taken as given; otherwise the
    /// first default that exists. Throws `unreachable` listing what was tried when none does.
    public static func resolve(explicit: String?) throws -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        if let fromEnvironment = environment("MLCRED_SOCKET") { return fromEnvironment }
        let candidates = defaultCandidates()
        for path in candidates where exists(path) { return path }
        throw ClientError.unreachable(path: candidates.joined(separator: ", "), reason: "no socket found", errno: nil)
    }

    /// The default locations, in the order they are tried.
    public static func defaultCandidates() -> [String] {
        var candidates = [systemPath]
        if let runtime = environment("XDG_RUNTIME_DIR") { candidates.append(runtime + "/mlcred.sock") }
        if let data = environment("XDG_DATA_HOME") { candidates.append(data + "/mlcred/mlcred.sock") }
        if let home = environment("HOME") { candidates.append(home + "/.local/share/mlcred/mlcred.sock") }
        return candidates
    }

    static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }

    static func exists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0
    }
}
