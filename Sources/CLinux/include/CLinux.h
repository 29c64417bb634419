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

#endif
