import Glibc
import MLCredAPI

/// The files `mlcred run` writes for a job (SPEC §8): its socket and, with AWS grants, an AWS
/// config, in a private 0700 directory under `$XDG_RUNTIME_DIR` when that is the user's own and
/// writable by nobody else (or sticky), else a fresh one under `/dev/shm` (or `/tmp`), removed
/// when the job ends. It never holds a credential: the AWS config only names the command that
/// fetches one, from `run`'s socket.
///
/// Threat (issue 13 finding 3): in a base others may write, another user renames the job's
/// directory and plants his own, with an `aws-config` whose `credential_process` is his command
/// (run as the victim) and a socket of his. Here the base must be the user's and closed to
/// others, or sticky (others cannot rename what is not theirs); the directory is checked on its
/// descriptor once made, and files are made through that descriptor, never following a symlink.
final class JobFiles {
    let directory: String
    private let directoryFD: Int32
    private var written: [String] = []

    /// Makes the directory.
    init() throws {
        var bases: [String] = []
        if let runtime = Environment.value("XDG_RUNTIME_DIR"), Self.isSafeBase(runtime, mustBeOwn: true) { bases.append(runtime) }
        bases += ["/dev/shm", "/tmp"].filter { Self.isSafeBase($0, mustBeOwn: false) }
        for base in bases {
            Self.removeStale(in: base)
            var template = Array((base + "/mlcred-run-\(getpid())-XXXXXX").utf8CString)
            guard let made = mkdtemp(&template) else { continue }  // mkdtemp makes it 0700
            let path = String(cString: made)
            let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            var info = stat()
            guard fd >= 0, fstat(fd, &info) == 0, info.st_uid == getuid(), info.st_mode & 0o777 == 0o700 else {
                if fd >= 0 { close(fd) }
                throw CLIError("the job's private directory \(path) is not what mlcred made (owner or mode changed)",
                               hint: "another user may be tampering with \(base); set XDG_RUNTIME_DIR to a directory of your own")
            }
            directory = path
            directoryFD = fd
            return
        }
        throw CLIError("cannot create a private directory for the job's files", hint: "check that /dev/shm or /tmp is writable")
    }

    deinit {
        close(directoryFD)
    }

    /// Writes `content` as `name` (0600), through the directory's descriptor, and returns its path.
    func write(_ name: String, _ content: String) throws -> String {
        let path = try self.path(for: name)
        let fd = openat(directoryFD, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw CLIError("cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array(content.utf8)
        var offset = 0
        while offset < bytes.count {
            let count = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { throw CLIError("cannot write \(path): \(String(cString: strerror(errno)))") }
            offset += count
        }
        return path
    }

    /// The path of `name` in the directory, removed with it (a socket is bound by path).
    func path(for name: String) throws -> String {
        guard !name.contains("/"), !name.hasPrefix(".") else { throw CLIError("bad job file name \(name)") }
        written.append(name)
        return directory + "/" + name
    }

    /// Removes the files (through the directory's descriptor) and the directory.
    func remove() {
        for name in written { unlinkat(directoryFD, name, 0) }
        rmdir(directory)
    }

    /// Whether `base` may hold the job's directory: a real directory (not a symlink), and either
    /// the user's own and writable by nobody else, or (when `mustBeOwn` is false) sticky, so
    /// nobody can rename or replace what the user makes in it.
    static func isSafeBase(_ base: String, mustBeOwn: Bool) -> Bool {
        var info = stat()
        guard lstat(base, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { return false }
        let own = info.st_uid == getuid() && info.st_mode & 0o022 == 0
        let sticky = (info.st_uid == 0 || info.st_uid == getuid()) && info.st_mode & mode_t(S_ISVTX) != 0
        return mustBeOwn ? (info.st_uid == getuid() && (own || sticky)) : (own || sticky)
    }

    /// Removes directories left by a `run` that was killed (SIGKILL gives it no chance to
    /// clean up): ours, named after a process that no longer exists. They hold no secret.
    static func removeStale(in base: String) {
        guard let directory = opendir(base) else { return }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            let parts = name.split(separator: "-")
            guard parts.count == 4, name.hasPrefix("mlcred-run-"), let pid = Int32(parts[2]), pid > 0,
                  kill(pid, 0) != 0, errno == ESRCH else { continue }
            // O_NOFOLLOW and fstat: in a shared /dev/shm another user could plant a symlink by that name.
            let fd = open(base + "/" + name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { continue }
            var info = stat()
            if fstat(fd, &info) == 0, info.st_uid == getuid() {
                for file in ["aws-config", "aws-credentials", "mlcred.sock", "mask.sock"] { unlinkat(fd, file, 0) }
                rmdir(base + "/" + name)
            }
            close(fd)
        }
    }
}

/// The AWS config `mlcred run` gives a job: profile `default` (the role's first AWS grant) and
/// one profile per AWS grant, each fetching credentials with `credential_process`, so SDKs
/// refresh on their own under the job's `MLCRED_TOKEN`.
enum AWSConfigFile {
    /// Variables that would shadow the config's credential_process (or point elsewhere).
    static let shadowingVariables = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                                     "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CREDENTIAL_EXPIRATION"]

    /// The config text; throws if a value could add a line of its own (defence in depth: the
    /// daemon already refuses such regions and grant names).
    static func render(grants: [DeferredAWSGrant], executable: String) throws -> String {
        let values = [executable] + grants.flatMap { [$0.grant, $0.region ?? ""] }
        if values.contains(where: { $0.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F } }) {
            throw CLIError("refusing to write an AWS config: a grant name, region or path holds a control character")
        }
        var out = "# Written by mlcred run for this job; removed when it ends. Holds no credentials.\n"
        for (index, grant) in grants.enumerated() {
            let sections = index == 0 ? ["default", "profile \(grant.grant)"] : ["profile \(grant.grant)"]
            for section in sections where !(section == "profile default") {
                out += "\n[\(section)]\n"
                out += "credential_process = \(shellQuoted(executable)) credential-process --grant \(grant.grant)\n"
                // No endpoint_url here: it would send every service to the STS endpoint.
                // AWS_ENDPOINT_URL_STS in the job's environment covers STS alone.
                if let region = grant.region { out += "region = \(region)\n" }
            }
        }
        return out
    }

    /// SDKs split credential_process like a shell: quote a path with spaces.
    static func shellQuoted(_ text: String) -> String {
        text.allSatisfy({ $0.isLetter || $0.isNumber || "/._-+".contains($0) }) ? text : Quoting.singleQuoted(text)
    }

    /// This binary's absolute path (`/proc/self/exe`).
    static func executablePath() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, Int(PATH_MAX))
        guard count > 0 else { return "mlcred" }
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
