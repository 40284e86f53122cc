/* Crash reports: a process of the run that dies of a fatal signal it raised itself (a fault,
 * abort(), an illegal instruction) writes <run>/crash/<pid>.txt before it goes — which process,
 * which signal, where (fault address, the shim's own diagnosis, a native backtrace). `emulate`
 * watches that folder and ends the run with the cause named (emulator/monitor.py). Everything
 * here runs inside a signal handler: async-signal-safe calls only, no allocation. */
#define _GNU_SOURCE
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tw_core.h"

#define TW_FATAL_EXIT_STATUS 70   /* EX_SOFTWARE */

static const int fatal_signals[] = {SIGABRT, SIGILL, SIGFPE, SIGSYS, SIGTRAP};
static struct sigaction previous[65];
static char crash_dir[4096];

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGABRT: return "SIGABRT";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGSYS: return "SIGSYS";
    case SIGTRAP: return "SIGTRAP";
    default: return "signal";
    }
}

/* snprintf with integer and string conversions only is async-signal-safe in glibc in practice
 * but not by POSIX: format by hand. */
static size_t put_str(char *buf, size_t used, size_t cap, const char *s)
{
    while (*s != '\0' && used + 1 < cap)
        buf[used++] = *s++;
    buf[used] = '\0';
    return used;
}

static size_t put_uint(char *buf, size_t used, size_t cap, unsigned long long v, unsigned base)
{
    char digits[24];
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v != 0);
    while (n > 0 && used + 1 < cap)
        buf[used++] = digits[--n];
    buf[used] = '\0';
    return used;
}

/* The process's command line, NULs as spaces, from /proc (read at report time: after exec). */
static size_t put_cmdline(char *buf, size_t used, size_t cap)
{
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return used;
    char cmd[512];
    ssize_t n = syscall(SYS_read, fd, cmd, sizeof cmd - 1);   /* not the interposed read */
    close(fd);
    if (n <= 0)
        return used;
    for (ssize_t i = 0; i < n; i++)
        if (cmd[i] == '\0')
            cmd[i] = ' ';
    while (n > 0 && cmd[n - 1] == ' ')
        n--;
    cmd[n] = '\0';
    return put_str(buf, used, cap, cmd);
}

void tw_crash_report(int sig, const siginfo_t *info, const char *diagnosis)
{
    if (crash_dir[0] == '\0')
        return;
    char path[4200];
    size_t p = put_str(path, 0, sizeof path, crash_dir);
    p = put_str(path, p, sizeof path, "/");
    p = put_uint(path, p, sizeof path, (unsigned long long)getpid(), 10);
    put_str(path, p, sizeof path, ".txt");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    char line[1024];
    size_t n = put_str(line, 0, sizeof line, "pid ");
    n = put_uint(line, n, sizeof line, (unsigned long long)getpid(), 10);
    n = put_str(line, n, sizeof line, " tid ");
    n = put_uint(line, n, sizeof line, (unsigned long long)gettid(), 10);
    n = put_str(line, n, sizeof line, " (");
    n = put_cmdline(line, n, sizeof line);
    n = put_str(line, n, sizeof line, ") killed by ");
    n = put_str(line, n, sizeof line, signal_name(sig));
    n = put_str(line, n, sizeof line, " (");
    n = put_uint(line, n, sizeof line, (unsigned long long)sig, 10);
    n = put_str(line, n, sizeof line, ")");
    if (info != NULL && (sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL)) {
        n = put_str(line, n, sizeof line, " at address 0x");
        n = put_uint(line, n, sizeof line, (unsigned long long)(uintptr_t)info->si_addr, 16);
    }
    n = put_str(line, n, sizeof line, "\n");
    (void)!write(fd, line, n);
    if (diagnosis != NULL && diagnosis[0] != '\0')
        (void)!write(fd, diagnosis, strlen(diagnosis));
    (void)!write(fd, "native backtrace:\n", 18);
    void *frames[48];
    int depth = backtrace(frames, 48);
    backtrace_symbols_fd(frames, depth, fd);
    close(fd);
}

void tw_fatal(const char *cause)
{
    TW_ERROR("ending this process: %s", cause);
    if (crash_dir[0] != '\0') {
        char path[4200];
        size_t p = put_str(path, 0, sizeof path, crash_dir);
        p = put_str(path, p, sizeof path, "/");
        p = put_uint(path, p, sizeof path, (unsigned long long)getpid(), 10);
        put_str(path, p, sizeof path, ".txt");
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            char line[1024];
            size_t n = put_str(line, 0, sizeof line, "pid ");
            n = put_uint(line, n, sizeof line, (unsigned long long)getpid(), 10);
            n = put_str(line, n, sizeof line, " (");
            n = put_cmdline(line, n, sizeof line);
            n = put_str(line, n, sizeof line, ") ended by timewarp: ");
            n = put_str(line, n, sizeof line, cause);
            n = put_str(line, n, sizeof line, "\n");
            (void)!write(fd, line, n);
            (void)!write(fd, "native backtrace:\n", 18);
            void *frames[48];
            backtrace_symbols_fd(frames, backtrace(frames, 48), fd);
            close(fd);
        }
    }
    tw_trace_set_exit(TW_FATAL_EXIT_STATUS, 0);
    _exit(TW_FATAL_EXIT_STATUS);
}

static void on_fatal_signal(int sig, siginfo_t *info, void *uctx)
{
    tw_crash_report(sig, info, NULL);
    tw_trace_set_exit(128 + sig, sig);
    /* Die as the program would have: its previous disposition (the default, as we only take
     * default ones), re-raised unblocked. abort() re-raises by itself once we return. */
    sigaction(sig, &previous[sig], NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    (void)uctx;
}

__attribute__((constructor(104))) static void crash_install_handlers(void)
{
    const char *run_dir = tw_config_get()->run_dir;
    if (run_dir == NULL)
        return;
    char dir[4096];
    int len = snprintf(dir, sizeof dir, "%s/crash", run_dir);
    if (len <= 0 || (size_t)len >= sizeof dir)
        return;
    mkdir(dir, 0755);   /* every process tries; EEXIST is the usual answer */
    memcpy(crash_dir, dir, (size_t)len + 1);
    /* backtrace() loads libgcc on its first call (which allocates): do it now, not in a handler */
    void *warm[2];
    backtrace(warm, 2);
    for (size_t i = 0; i < sizeof fatal_signals / sizeof fatal_signals[0]; i++) {
        int sig = fatal_signals[i];
        struct sigaction old;
        if (sigaction(sig, NULL, &old) != 0 || old.sa_handler != SIG_DFL || (old.sa_flags & SA_SIGINFO))
            continue;   /* the program's own handler wins */
        struct sigaction sa = {.sa_sigaction = on_fatal_signal, .sa_flags = SA_SIGINFO | SA_ONSTACK};
        sigemptyset(&sa.sa_mask);
        previous[sig] = old;
        sigaction(sig, &sa, NULL);
    }
}
