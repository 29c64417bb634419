import CLinux
import Glibc
import Logging

/// Process-wide protections applied before any key exists.
enum ProcessHardening {
    static func apply(logger: Logger) {
        // Threat: key material in a core file or read through ptrace/proc by same-uid code.
        if mlc_set_not_dumpable() != 0 {
            logger.warning("could not disable core dumps and ptrace attach (PR_SET_DUMPABLE)")
        }
        var noCore = rlimit(rlim_cur: 0, rlim_max: 0)
        if setrlimit(Int32(RLIMIT_CORE.rawValue), &noCore) != 0 {
            logger.warning("could not set RLIMIT_CORE to 0")
        }
        // Files the daemon creates (database, WAL, socket before its chmod) are private.
        umask(0o077)
        // Each connection holds a socket and a pidfd: allow as many descriptors as permitted.
        var files = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &files) == 0, files.rlim_cur < files.rlim_max {
            files.rlim_cur = files.rlim_max
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &files)
        }
        signal(SIGPIPE, SIG_IGN)
    }
}
