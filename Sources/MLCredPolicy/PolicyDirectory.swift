import Glibc

/// The policy directory, read only through file descriptors: the directory the admin named is
/// opened once; everything inside is reached from it with `openat(O_NOFOLLOW)`, judged with
/// `fstat` on the opened descriptor and read from that same descriptor.
///
/// Threats (issue 13 finding 8, finding 10):
/// - a check by path and a read by path are two look-ups: a symlink flipped between them (during
///   a reload) loads a file nobody checked. Here what is checked is what is read.
/// - a symlink inside the directory points anywhere (a user-writable directory): no symlink is
///   followed below the directory the admin named; one is reported and refused.
/// - a FIFO named `*.toml` blocks a reader forever: files are opened `O_NONBLOCK` and must be
///   regular files.
/// - a file or directory others can write lets them grant themselves any role: every directory
///   and file read is judged like sshd's StrictModes (writable by group or others: refused; with
///   `trustedOwners`, what the daemon passes, owned by anyone else: refused).
public final class PolicyDirectory: Sendable {
    /// The path the admin gave.
    public let path: String
    /// Uids allowed to own what is read; nil judges modes only (`policy validate` on a checkout,
    /// whose files belong to the reviewer).
    let trustedOwners: Set<UInt32>?
    /// Whether group- or other-writable files and directories are refused (always with `trustedOwners`).
    let judgesModes: Bool
    /// The opened directory, or -1 when it could not be opened (`openError` says why).
    private let rootFD: Int32
    private let openError: Int32

    /// The largest policy or session-policy file read.
    static let maximumFileBytes = 1 << 20

    public init(path: String, trustedOwners: Set<UInt32>? = nil, judgeModes: Bool = false) {
        self.path = path
        self.trustedOwners = trustedOwners
        judgesModes = judgeModes || trustedOwners != nil
        rootFD = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        openError = rootFD < 0 ? errno : 0
    }

    deinit {
        if rootFD >= 0 { close(rootFD) }
    }

    /// Why a file could not be used, phrased to follow the file's name.
    public struct Refusal: Error, Equatable {
        public var message: String
    }

    /// Problems of the directory itself (unreadable, or not trusted).
    func rootProblems() throws -> [PolicyDiagnostic] {
        guard rootFD >= 0 else {
            throw PolicyLoadError(diagnostics: [PolicyDiagnostic(file: path, line: 0,
                                                                 message: "cannot read the directory: \(String(cString: strerror(openError)))")])
        }
        var info = stat()
        guard fstat(rootFD, &info) == 0 else { return [] }
        return judge(info).map { [PolicyDiagnostic(file: path, line: 1, message: $0.message)] } ?? []
    }

    /// The refusal for a file or directory described by `info`, or nil when it is trusted.
    func judge(_ info: stat) -> Refusal? {
        if let trustedOwners, !trustedOwners.contains(info.st_uid) {
            return Refusal(message: "refused: owned by uid \(info.st_uid); policy files must belong to root or the daemon's user")
        }
        if judgesModes && info.st_mode & 0o022 != 0 {
            return Refusal(message: "refused: writable by group or others (mode \(String(info.st_mode & 0o777, radix: 8))); run chmod go-w")
        }
        return nil
    }

    /// Relative paths of the role files (`*.toml` outside the top-level `tests/`), sorted, and the
    /// problems met on the way (untrusted directories, symlinks, `*.toml` that are not files).
    func roleFiles() throws -> (files: [String], problems: [PolicyDiagnostic]) {
        var problems = try rootProblems()
        var files: [String] = []
        func walk(_ fd: Int32, _ relative: String) {
            let listing = dup(fd)
            guard listing >= 0, let dir = fdopendir(listing) else {
                if listing >= 0 { close(listing) }
                problems.append(PolicyDiagnostic(file: relative, line: 0, message: "cannot read the directory: \(String(cString: strerror(errno)))"))
                return
            }
            defer { closedir(dir) }
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name.hasPrefix(".") { continue }
                let child = relative.isEmpty ? name : relative + "/" + name
                var info = stat()
                guard fstatat(fd, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
                switch info.st_mode & S_IFMT {
                case S_IFDIR:
                    if relative.isEmpty && name == "tests" { continue }
                    let childFD = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                    guard childFD >= 0 else {
                        problems.append(PolicyDiagnostic(file: child, line: 0, message: "cannot read the directory: \(String(cString: strerror(errno)))"))
                        continue
                    }
                    defer { close(childFD) }
                    var opened = stat()
                    if fstat(childFD, &opened) == 0, let refusal = judge(opened) {
                        problems.append(PolicyDiagnostic(file: child, line: 1, message: refusal.message))
                        continue
                    }
                    walk(childFD, child)
                case S_IFLNK:
                    if relative.isEmpty && name == "tests" { continue }
                    problems.append(PolicyDiagnostic(file: child, line: 1, message: Self.symlinkRefusal))
                case S_IFREG:
                    if name.hasSuffix(".toml") { files.append(child) }
                default:
                    if name.hasSuffix(".toml") {
                        problems.append(PolicyDiagnostic(file: child, line: 1, message: "refused: not a regular file"))
                    }
                }
            }
        }
        walk(rootFD, "")
        return (files.sorted(), problems)
    }

    static let symlinkRefusal = "refused: a symbolic link; policy files and directories must be real ones inside the policy directory"

    /// The text of the file at `relative` (a path inside the directory, `/`-separated, no `..`),
    /// reached without following any symlink, judged and read through one descriptor.
    public func read(_ relative: String) -> Result<String, Refusal> {
        guard rootFD >= 0 else { return .failure(Refusal(message: "cannot read the policy directory")) }
        let components = relative.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard !relative.hasPrefix("/"), let last = components.last, !components.contains(".."), !components.contains(".") else {
            return .failure(Refusal(message: "must be a path inside the policy directory"))
        }
        var fd = rootFD
        defer { if fd != rootFD { close(fd) } }
        for component in components.dropLast() {
            let next = openat(fd, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard next >= 0 else {
                let error = errno
                // O_DIRECTORY | O_NOFOLLOW on a symlink says ENOTDIR: name the symlink.
                var info = stat()
                if fstatat(fd, component, &info, AT_SYMLINK_NOFOLLOW) == 0, info.st_mode & S_IFMT == S_IFLNK {
                    return .failure(Refusal(message: Self.symlinkRefusal))
                }
                return .failure(Self.openRefusal(error, directory: true))
            }
            if fd != rootFD { close(fd) }
            fd = next
            var info = stat()
            if fstat(fd, &info) == 0, let refusal = judge(info) { return .failure(refusal) }
        }
        let file = openat(fd, last, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        guard file >= 0 else { return .failure(Self.openRefusal(errno, directory: false)) }
        defer { close(file) }
        var info = stat()
        guard fstat(file, &info) == 0 else { return .failure(Refusal(message: "cannot read the file")) }
        guard info.st_mode & S_IFMT == S_IFREG else { return .failure(Refusal(message: "refused: not a regular file")) }
        if let refusal = judge(info) { return .failure(refusal) }
        guard Int(info.st_size) <= Self.maximumFileBytes else {
            return .failure(Refusal(message: "refused: larger than \(Self.maximumFileBytes >> 20) MiB"))
        }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = Glibc.read(file, &chunk, chunk.count)
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(Refusal(message: "cannot read the file: \(String(cString: strerror(errno)))"))
            }
            if n == 0 { break }
            data += chunk.prefix(n)
            if data.count > Self.maximumFileBytes {
                return .failure(Refusal(message: "refused: larger than \(Self.maximumFileBytes >> 20) MiB"))
            }
        }
        guard let text = String(validating: data, as: UTF8.self) else { return .failure(Refusal(message: "not UTF-8 text")) }
        return .success(text)
    }

    static func openRefusal(_ error: Int32, directory: Bool) -> Refusal {
        switch error {
        case ELOOP: Refusal(message: symlinkRefusal)
        case ENOTDIR where directory: Refusal(message: "does not exist or cannot be read (a path component is not a directory)")
        case ENOENT: Refusal(message: "does not exist or cannot be read")
        default: Refusal(message: "cannot be read: \(String(cString: strerror(error)))")
        }
    }
}
