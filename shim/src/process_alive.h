/* Whether a process of the run can still run code: the holder of a shared-page lock (the lock
 * word is the holder's pid) that may still release it, a rank or a device user that may still
 * act. Shared by the shim (clock_page.h, collectives.c, ipc.c) and the governor, so raw system
 * calls only: the shim's own interposed read/open must not run here.
 *
 * A process killed inside a critical section stays a zombie until its parent reaps it, and
 * kill(pid, 0) succeeds on a zombie; the parent may be the very process spinning on the lock
 * (it cannot reap while it spins), so a zombie counts as dead. A zombie leader whose other
 * threads still run is a process in its exit and may still hold a lock: alive. */
#ifndef TW_PROCESS_ALIVE_H
#define TW_PROCESS_ALIVE_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline bool tw_process_alive(int32_t pid)
{
    if (pid <= 0)
        return false;
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return false;
    char path[48], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    long fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno != ENOENT && errno != ESRCH;   /* cannot tell: never take a live holder's lock */
    long n = syscall(SYS_read, (int)fd, buf, sizeof buf - 1);
    syscall(SYS_close, (int)fd);
    if (n <= 0)
        return n < 0 && errno != ESRCH;
    buf[n] = '\0';
    const char *state = strstr(buf, "\nState:");
    const char *threads = strstr(buf, "\nThreads:");
    if (state == NULL)
        return true;
    state += strlen("\nState:");
    while (*state == ' ' || *state == '\t')
        state++;
    bool zombie = *state == 'Z' || *state == 'X';
    long thread_count = threads != NULL ? strtol(threads + strlen("\nThreads:"), NULL, 10) : 1;
    return !zombie || thread_count > 1;
}

#endif
