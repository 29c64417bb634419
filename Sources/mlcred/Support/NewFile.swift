import Glibc

/// Files the CLI makes for what it is handed once (unseal shares, key files, backups): created
/// new, never over an existing file or through a symlink (`O_EXCL`), with a private mode from
/// the start, written whole and fsynced before the command reports them. A failed write removes
/// the partial file.
enum NewFile {
    /// Writes `bytes` to the new file `path`. `lost`, when given, is appended to a failure's
    /// message: what the failure costs (the daemon already acted and will not show it again).
    static func write(_ bytes: ArraySlice<UInt8>, to path: String, mode: mode_t = 0o600, lost: String? = nil, hint: String? = nil) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw failure("cannot create \(path)", lost: lost, hint: hint) }
        var offset = bytes.startIndex
        while offset < bytes.endIndex {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            if written == 0 { errno = EIO }  // a regular file that takes no byte: no errno of its own
            guard written > 0 else {
                let error = failure("cannot write \(path)", lost: lost, hint: hint)
                close(fd)
                unlink(path)
                throw error
            }
            offset += written
        }
        guard fsync(fd) == 0 else {
            let error = failure("cannot write \(path)", lost: lost, hint: hint)
            close(fd)
            unlink(path)
            throw error
        }
        guard close(fd) == 0 else {
            let error = failure("cannot write \(path)", lost: lost, hint: hint)
            unlink(path)
            throw error
        }
    }

    private static func failure(_ what: String, lost: String?, hint: String?) -> CLIError {
        CLIError("\(what): \(String(cString: strerror(errno)))" + (lost.map { "; \($0)" } ?? ""), hint: hint)
    }
}
