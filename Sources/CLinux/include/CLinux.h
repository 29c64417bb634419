#ifndef MLCRED_CLINUX_H
#define MLCRED_CLINUX_H

#include <sys/types.h>

/// SO_PEERCRED of a connected Unix socket. Returns 0 or -1 with errno set.
int mlc_peer_credentials(int fd, uid_t *uid, gid_t *gid, pid_t *pid);

/// prctl(PR_SET_DUMPABLE, 0): no core dumps, no ptrace attach, /proc/PID files owned by root.
int mlc_set_not_dumpable(void);

/// prctl(PR_GET_DUMPABLE).
int mlc_get_dumpable(void);

/// prctl(PR_SET_PDEATHSIG, sig): the kernel sends `sig` when the parent thread exits.
int mlc_set_parent_death_signal(int sig);

/// accept4(fd, NULL, NULL, SOCK_CLOEXEC).
int mlc_accept_cloexec(int fd);

/// pidfd_open(pid, 0): a descriptor for the process `pid`, or -1 with errno set.
int mlc_pidfd_open(pid_t pid);

/* Drops a set-group-ID: real, effective and saved gid become the real gid. 0 on success. */
int mlc_drop_setgid(void);

/// Forks and execs `file` (PATH lookup) with `argv` and `envp`. In the child: the parent-death
/// signal is SIGKILL (the job never outlives `mlcred run`), signal dispositions and mask are
/// reset, and either `tty_fd` (when >= 0) becomes the controlling terminal of a new session
/// and fds 0, 1 and 2, or `stdout_fd` / `stderr_fd` (when >= 0) become fds 1 and 2. Returns the
/// child's pid, or -1 with `*exec_errno` set when the exec failed (e.g. ENOENT).
pid_t mlc_spawn(const char *file, char *const argv[], char *const envp[], int stdout_fd, int stderr_fd, int tty_fd, int *exec_errno);

/// Installs handlers that forward SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to this process by
/// another process to the child named by `mlc_forward_signals` (a signal arriving before
/// then is held and delivered when the child is named). Signals the kernel generated for the
/// terminal's process group (Ctrl-C) are not forwarded: the child, in the same group,
/// already received them.
void mlc_prepare_signal_forwarding(void);

/// Names the child signals are forwarded to, delivering any signal held meanwhile.
void mlc_forward_signals(pid_t child);

/// Ignores SIGPIPE in this process (the child gets the default back in mlc_spawn).
void mlc_ignore_sigpipe(void);

/// pipe2(fds, O_CLOEXEC).
int mlc_pipe_cloexec(int fds[2]);

/// Opens a pseudo-terminal pair sized like the terminal `size_from` (if it is one).
int mlc_openpty(int *master, int *slave, int size_from);

/// Puts terminal `fd` in raw mode, restoring it when the process exits.
int mlc_make_raw(int fd);

/// Restores the terminal mode saved by mlc_make_raw.
void mlc_restore_terminal(void);

/// Installs a SIGWINCH handler; mlc_take_winch() reports (and clears) a pending resize.
void mlc_watch_winch(void);
int mlc_take_winch(void);

/// Copies the window size of terminal `from` to terminal `to`.
void mlc_copy_winsize(int from, int to);

/// A non-blocking, close-on-exec Unix datagram socket bound at `path` (mode 0600). -1 on error.
int mlc_dgram_bind(const char *path);

/// Sends one datagram to the Unix datagram socket at `path`. 0, or -1 with errno set.
int mlc_dgram_send(const char *path, const void *bytes, size_t length);

/// Gives back memory an idle process holds but does not use: the heap's free pages
/// (malloc_trim) and this process's mappings of code (MADV_DONTNEED on the private, read-only,
/// executable mappings of its executable and of loaded libraries, each pinned first so it can
/// never be unloaded: clean pages, still in the page cache, mapped again from it on first use).
/// A mapping holding any page copied on write (a uprobe's or debugger's breakpoint) is left
/// alone, and nothing is done while a tracer is attached. Returns the bytes
/// of code mappings dropped, or -1 (errno set; EBUSY when traced).
long mlc_trim_idle_memory(void);

#endif
