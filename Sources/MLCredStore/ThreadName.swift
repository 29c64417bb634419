import Glibc

/// Names the calling thread (`top -H`, `perf report --sort comm`; 15 characters at most).
/// Glibc's `pthread_setname_np` is not visible to Swift; this is what it does.
enum ThreadName {
    static func set(_ name: String) {
        let comm = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
        guard comm >= 0 else { return }
        _ = name.withCString { write(comm, $0, strlen($0)) }
        close(comm)
    }
}
