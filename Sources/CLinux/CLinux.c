#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <sys/mman.h>
#include "CLinux.h"

static int mlc_is_traced(void) {
    FILE *status = fopen("/proc/self/status", "re");
    if (status == NULL) return -1;
    char line[256];
    int traced = -1;
    while (fgets(line, sizeof line, status) != NULL) {
        if (strncmp(line, "TracerPid:", 10) == 0) {
            traced = atoi(line + 10) != 0;
            break;
        }
    }
    fclose(status);
    return traced;
}

long mlc_trim_idle_memory(void) {
    malloc_trim(0);
    int traced = mlc_is_traced();
    if (traced != 0) {
        if (traced > 0) errno = EBUSY;
        return -1;
    }
    // Only code that stays mapped while the process lives: this executable's, and libraries
    // pinned first (RTLD_NODELETE on one already loaded; RTLD_NOLOAD loads nothing): a library
    // that could be dlclose'd might have its addresses reused between the read below and the
    // madvise, and MADV_DONTNEED would then zero live memory.
    char exe[4096];
    ssize_t length = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (length <= 0) return -1;
    exe[length] = '\0';
    FILE *smaps = fopen("/proc/self/smaps", "re");
    if (smaps == NULL) return -1;
    struct { unsigned long start, end; } ranges[64];
    size_t count = 0;
    int candidate = 0;
    unsigned long start = 0, end = 0;
    char line[4096 + 128];
    while (fgets(line, sizeof line, smaps) != NULL) {
        unsigned long low, high;
        char perms[5];
        int path_at = 0;
        if (sscanf(line, "%lx-%lx %4s %*s %*s %*s %n", &low, &high, perms, &path_at) == 3) {
            // A mapping's header: private, read-only, executable, mapped from this executable.
            line[strcspn(line, "\n")] = '\0';
            const char *path = line + path_at;
            candidate = strcmp(perms, "r-xp") == 0 && path_at > 0 && path[0] == '/';
            if (candidate && strcmp(path, exe) != 0) {
                void *library = dlopen(path, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE);
                if (library == NULL) {
                    candidate = 0;
                } else {
                    dlclose(library);
                }
            }
            start = low;
            end = high;
            continue;
        }
        unsigned long anonymous;
        if (candidate && sscanf(line, "Anonymous: %lu kB", &anonymous) == 1) {
            // Pages copied on write (a uprobe's or a debugger's breakpoint) would be lost: skip.
            if (anonymous == 0 && count < sizeof ranges / sizeof ranges[0]) {
                ranges[count].start = start;
                ranges[count].end = end;
                count++;
            }
            candidate = 0;
        }
    }
    fclose(smaps);
    long dropped = 0;
    for (size_t i = 0; i < count; i++) {
        if (madvise((void *)ranges[i].start, ranges[i].end - ranges[i].start, MADV_DONTNEED) == 0) {
            dropped += (long)(ranges[i].end - ranges[i].start);
        }
    }
    return dropped;
}

int mlc_peer_credentials(int fd, uid_t *uid, gid_t *gid, pid_t *pid) {
    struct ucred cred;
    socklen_t length = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) {
        return -1;
    }
    *uid = cred.uid;
    *gid = cred.gid;
    *pid = cred.pid;
    return 0;
}

int mlc_set_not_dumpable(void) {
    return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int mlc_get_dumpable(void) {
    return prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
}

int mlc_set_parent_death_signal(int sig) {
    return prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0);
}

int mlc_accept_cloexec(int fd) {
    return accept4(fd, NULL, NULL, SOCK_CLOEXEC);
}

int mlc_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int mlc_drop_setgid(void) {
    gid_t real_gid = getgid();
    if (getegid() == real_gid) return 0;
    return setresgid(real_gid, real_gid, real_gid);
}

pid_t mlc_spawn(const char *file, char *const argv[], char *const envp[], int stdout_fd, int stderr_fd, int tty_fd, int *exec_errno) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        *exec_errno = errno;
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        *exec_errno = errno;
        close(report[0]);
        close(report[1]);
        return -1;
    }
    if (pid == 0) {
        /* Child: only async-signal-safe calls from here to exec. */
        close(report[0]);
        /* The installed mlcred is setgid to the run group, the daemon's sign that a caller is
           `mlcred run` (phi roles). The job must not inherit it: drop every group id back to
           the real one. First, as a change of credentials clears the parent-death signal. */
        gid_t real_gid = getgid();
        if (getegid() != real_gid && setresgid(real_gid, real_gid, real_gid) != 0) _exit(127);
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        if (getppid() != parent) {
            _exit(127); /* the parent died before the death signal was armed */
        }
        sigset_t empty;
        sigemptyset(&empty);
        sigprocmask(SIG_SETMASK, &empty, NULL);
        int reset[] = {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH};
        for (unsigned i = 0; i < sizeof(reset) / sizeof(reset[0]); i++) {
            signal(reset[i], SIG_DFL);
        }
        if (tty_fd >= 0) {
            /* A session of its own whose controlling terminal is the pty. */
            if (setsid() < 0 || ioctl(tty_fd, TIOCSCTTY, 0) != 0) _exit(127);
            if (dup2(tty_fd, 0) < 0 || dup2(tty_fd, 1) < 0 || dup2(tty_fd, 2) < 0) _exit(127);
        } else {
            if (stdout_fd >= 0 && dup2(stdout_fd, 1) < 0) _exit(127);
            if (stderr_fd >= 0 && dup2(stderr_fd, 2) < 0) _exit(127);
        }
        execvpe(file, argv, envp);
        int err = errno;
        ssize_t ignored = write(report[1], &err, sizeof(err));
        (void)ignored;
        _exit(127);
    }
    close(report[1]);
    int err = 0;
    ssize_t n;
    do {
        n = read(report[0], &err, sizeof(err));
    } while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == (ssize_t)sizeof(err)) {
        *exec_errno = err;
        int status;
        waitpid(pid, &status, 0);
        return -1;
    }
    return pid;
}

static volatile pid_t forward_target = 0;
static volatile sig_atomic_t pending_signal = 0;

static void forward_handler(int sig, siginfo_t *info, void *context) {
    (void)context;
    if (info != NULL && info->si_code == SI_KERNEL) {
        return;
    }
    if (forward_target > 0) {
        kill(forward_target, sig);
    } else {
        pending_signal = sig; /* the child is not started yet: deliver it when it is */
    }
}

void mlc_prepare_signal_forwarding(void) {
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_sigaction = forward_handler;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    int signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    for (unsigned i = 0; i < sizeof(signals) / sizeof(signals[0]); i++) {
        sigaction(signals[i], &action, NULL);
    }
}

void mlc_forward_signals(pid_t child) {
    forward_target = child;
    if (pending_signal != 0) {
        kill(child, pending_signal);
        pending_signal = 0;
    }
}

void mlc_ignore_sigpipe(void) {
    signal(SIGPIPE, SIG_IGN);
}

int mlc_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

int mlc_openpty(int *master, int *slave, int size_from) {
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0) return -1;
    if (grantpt(m) != 0 || unlockpt(m) != 0) { close(m); return -1; }
    char name[128];
    if (ptsname_r(m, name, sizeof(name)) != 0) { close(m); return -1; }
    int sl = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (sl < 0) { close(m); return -1; }
    struct winsize size;
    if (size_from >= 0 && ioctl(size_from, TIOCGWINSZ, &size) == 0) ioctl(sl, TIOCSWINSZ, &size);
    *master = m;
    *slave = sl;
    return 0;
}

static struct termios saved_terminal;
static int saved_terminal_fd = -1;

void mlc_restore_terminal(void) {
    if (saved_terminal_fd >= 0) {
        tcsetattr(saved_terminal_fd, TCSADRAIN, &saved_terminal);
        saved_terminal_fd = -1;
    }
}

int mlc_make_raw(int fd) {
    if (tcgetattr(fd, &saved_terminal) != 0) return -1;
    struct termios raw = saved_terminal;
    cfmakeraw(&raw);
    if (tcsetattr(fd, TCSADRAIN, &raw) != 0) return -1;
    saved_terminal_fd = fd;
    atexit(mlc_restore_terminal);
    return 0;
}

static volatile sig_atomic_t winch_pending = 0;

static void winch_handler(int sig) {
    (void)sig;
    winch_pending = 1;
}

void mlc_watch_winch(void) {
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = winch_handler;
    sigemptyset(&action.sa_mask);
    sigaction(SIGWINCH, &action, NULL);
}

int mlc_take_winch(void) {
    int pending = winch_pending;
    winch_pending = 0;
    return pending;
}

void mlc_copy_winsize(int from, int to) {
    struct winsize size;
    if (ioctl(from, TIOCGWINSZ, &size) == 0) ioctl(to, TIOCSWINSZ, &size);
}

int mlc_dgram_bind(const char *path) {
    struct sockaddr_un address;
    if (strlen(path) >= sizeof(address.sun_path)) { errno = ENAMETOOLONG; return -1; }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    memset(&address, 0, sizeof(address));
    address.sun_family = AF_UNIX;
    strcpy(address.sun_path, path);
    mode_t previous = umask(0177);
    int bound = bind(fd, (struct sockaddr *)&address, sizeof(address));
    umask(previous);
    if (bound != 0) { int saved = errno; close(fd); errno = saved; return -1; }
    return fd;
}

int mlc_dgram_send(const char *path, const void *bytes, size_t length) {
    struct sockaddr_un address;
    if (strlen(path) >= sizeof(address.sun_path)) { errno = ENAMETOOLONG; return -1; }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    memset(&address, 0, sizeof(address));
    address.sun_family = AF_UNIX;
    strcpy(address.sun_path, path);
    ssize_t sent = sendto(fd, bytes, length, MSG_DONTWAIT, (struct sockaddr *)&address, sizeof(address));
    int saved = errno;
    close(fd);
    errno = saved;
    return sent == (ssize_t)length ? 0 : -1;
}
