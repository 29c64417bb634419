import Glibc

/// One daemon per state directory. Threat: a second daemon on the same database would write
/// audit records outside the running daemon's chain and race its writer.
enum StateLock {
    /// Held open for the life of the process; the kernel releases the lock when it exits.
    nonisolated(unsafe) static var descriptor: Int32 = -1

    static func acquire(directory: String) throws {
        let path = directory + "/mlcredd.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StartupError("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var buffer = [UInt8](repeating: 0, count: 32)
            let count = read(fd, &buffer, buffer.count)
            let holder = count > 0 ? String(decoding: buffer.prefix(count), as: UTF8.self).trimmingCharacters(in: [" ", "\n"]) : "?"
            close(fd)
            throw StartupError("another mlcredd (pid \(holder)) already uses the state directory \(directory); stop it first")
        }
        ftruncate(fd, 0)
        let pid = "\(getpid())\n"
        _ = pid.withCString { write(fd, $0, strlen($0)) }
        descriptor = fd
    }
}
