import Glibc

/// The PostgreSQL store's password (SPEC §12): from `--store-password-file`, else from
/// `$CREDENTIALS_DIRECTORY/store-password` (systemd `LoadCredentialEncrypted=`), never from argv
/// or the environment. A file others may read is refused: the password is as sensitive as the
/// store's access.
enum StorePassword {
    static let credentialName = "store-password"

    /// The password, or nil when neither source exists (the server may trust this host otherwise).
    static func read(file: String?) throws -> String? {
        var path = file
        if path == nil, let directory = getenv("CREDENTIALS_DIRECTORY") {
            let candidate = String(cString: directory) + "/" + credentialName
            if access(candidate, F_OK) == 0 { path = candidate }
        }
        guard let path else { return nil }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw StartupError("cannot read the store password file \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw StartupError("the store password file \(path) is not a regular file")
        }
        if info.st_mode & 0o077 != 0 {
            throw StartupError("the store password file \(path) may be read by others (mode \(String(info.st_mode & 0o777, radix: 8))): chmod 600 it")
        }
        guard info.st_size <= 4096 else { throw StartupError("the store password file \(path) is too large for a password") }
        let size = Int(info.st_size)
        var bytes = [UInt8](repeating: 0, count: size)
        var filled = 0
        while filled < size {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + filled, size - filled) }
            guard n > 0 else { break }
            filled += n
        }
        var text = String(decoding: bytes[..<filled], as: UTF8.self)
        while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
        guard !text.isEmpty else { throw StartupError("the store password file \(path) is empty") }
        return text
    }
}
