import Glibc

/// Errors while setting up the listening socket.
public struct ListenerError: Error, CustomStringConvertible {
    public let description: String
}

/// The listening Unix socket: created with the right mode, refusing to steal the socket of a
/// running daemon, replacing a stale one.
enum SocketListener {
    /// Binds and listens on `path` with file mode `mode`. Returns the listening fd.
    static func bind(path: String, mode: mode_t) throws -> Int32 {
        guard path.utf8.count < 108 else { throw ListenerError(description: "socket path too long (max 107 bytes): \(path)") }
        try ensureParentDirectory(of: path)
        try checkDirectories(of: path)
        if isListening(path: path) {
            throw ListenerError(description: "another mlcredd is already listening on \(path); stop it first or choose another --socket")
        }
        var info = stat()
        if lstat(path, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFSOCK else {
                throw ListenerError(description: "\(path) exists and is not a socket; refusing to replace it")
            }
            // A socket nobody listens on: left by a daemon that died. Replace it.
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ListenerError(description: "socket() failed: \(String(cString: strerror(errno)))") }
        var address = makeAddress(path)
        // Create the socket file with no permissions for others, then widen to `mode`: no
        // window in which a looser mode exists.
        let previousMask = umask(0o177)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        let bindErrno = errno
        umask(previousMask)
        guard bound == 0 else {
            close(fd)
            throw ListenerError(description: "cannot bind \(path): \(String(cString: strerror(bindErrno)))")
        }
        guard chmod(path, mode) == 0 else {
            close(fd)
            throw ListenerError(description: "cannot chmod \(path): \(String(cString: strerror(errno)))")
        }
        guard listen(fd, 1024) == 0 else {
            close(fd)
            throw ListenerError(description: "cannot listen on \(path): \(String(cString: strerror(errno)))")
        }
        return fd
    }

    /// Whether a process accepts connections on `path` right now.
    static func isListening(path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = makeAddress(path)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        return result == 0
    }

    static func makeAddress(_ path: String) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() where index < raw.count - 1 { raw[index] = byte }
        }
        return address
    }

    /// Threat (issue 13 finding 9): a user who owns, or may write, the socket's directory can
    /// replace the socket with his own between our bind and a client's connect, and collect
    /// passphrases. The directory must belong to root or the daemon's uid and be writable by
    /// nobody else; every directory above it must belong to root or us and, if others may write
    /// it, be sticky (as /tmp), so nobody can rename what lies below.
    static func checkDirectories(of path: String) throws {
        guard let slash = path.lastIndex(of: "/") else { return try checkDirectories(of: "./" + path) }
        let directory = slash == path.startIndex ? "/" : String(path[..<slash])
        let me = getuid()
        var info = stat()
        guard stat(directory, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw ListenerError(description: "the socket's directory \(directory) is not a directory")
        }
        guard info.st_uid == 0 || info.st_uid == me else {
            throw ListenerError(description: "refusing the socket directory \(directory): it belongs to uid \(info.st_uid), not to root or the daemon's uid \(me) (whoever owns it can replace the socket); choose another --socket or chown it")
        }
        guard info.st_mode & 0o002 == 0 else {
            throw ListenerError(description: "refusing the socket directory \(directory): others may write it (mode \(String(info.st_mode & 0o7777, radix: 8))) and could replace the socket; choose another --socket or chmod o-w it")
        }
        var ancestor = directory
        while let cut = ancestor.lastIndex(of: "/") {
            ancestor = cut == ancestor.startIndex ? "/" : String(ancestor[..<cut])
            if ancestor.isEmpty || stat(ancestor, &info) != 0 { break }
            let sticky = info.st_mode & mode_t(S_ISVTX) != 0
            guard info.st_uid == 0 || info.st_uid == me, info.st_mode & 0o002 == 0 || sticky else {
                throw ListenerError(description: "refusing the socket path \(path): its ancestor \(ancestor) belongs to uid \(info.st_uid) with mode \(String(info.st_mode & 0o7777, radix: 8)), so another user could move the socket's directory; choose another --socket")
            }
            if ancestor == "/" { break }
        }
    }

    /// Creates the socket's directory (0755, so group members can reach a 0660 socket) if missing.
    static func ensureParentDirectory(of path: String) throws {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return }
        let directory = String(path[..<slash])
        var info = stat()
        if stat(directory, &info) == 0 { return }
        var partial = ""
        for component in directory.split(separator: "/") {
            partial += "/" + component
            if stat(partial, &info) != 0 {
                guard mkdir(partial, 0o755) == 0 || errno == EEXIST else {
                    throw ListenerError(description: "cannot create \(partial): \(String(cString: strerror(errno)))")
                }
                chmod(partial, 0o755)  // the daemon's umask is 077
            }
        }
    }
}
