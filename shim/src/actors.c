/* The causal jump rule (DESIGN §3): threads are actors in a table shared by every process of
 * the run (<run>/actors.page). The shared offset advances only when every registered thread
 * is blocked, and then exactly to the earliest target among them. Before a jump the jumper
 * checks quiescence in the kernel: a thread woken by a real event (a posted semaphore, a
 * readable socket) is runnable ('R' in /proc) before it returns to mark itself running, so a
 * message sent before its sender blocked is never skipped past. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "actors.h"
#include "tw_core.h"

/* A running thread sleeping in the kernel this long is in a wait we do not interpose (a pipe
 * read, a contended mutex, libgomp's futex): it counts as blocked with no target. */
#define UNINTERPOSED_SLEEP_NS (20 * 1000000LL)
#define UNTIMED_SLEEP_NS (2 * 1000000LL)
#define PENDING_GIVE_UP_NS (2 * 1000000000LL)
#define SETTLE_NS (100 * 1000L)
#define DEFAULT_DEADLOCK_GRACE_NS (3 * 1000000000LL)

typedef long (*syscall_fn)(long, ...);
extern char **environ;

static tw_actor_table private_table;
static tw_actor_table *table = &private_table;
static int table_shared;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;
static syscall_fn real_syscall;
static int wake_signal;              /* 0 when the program owns it: slices only */
static int32_t my_pid;
static int64_t deadlock_grace_ns = DEFAULT_DEADLOCK_GRACE_NS;

static __thread tw_actor *tl_self;
static __thread int tl_registering;
static __thread bool tl_exempt;      /* the emulator's own thread: never an actor */
__thread int tw_woken_by_jump;   /* touched by every wait before a wake signal can come */

static long futex_call(uint32_t *word, int op, uint32_t val, const struct timespec *ts)
{
    return real_syscall(SYS_futex, word, op, val, ts, NULL, 0);
}

static void on_wake_signal(int sig)
{
    (void)sig;
    tw_woken_by_jump = 1;
}

static void map_table(void)
{
    const char *run_dir = tw_config_get()->run_dir;
    if (run_dir == NULL)
        return;
    char path[4096];
    snprintf(path, sizeof path, "%s/actors.page", run_dir);
    /* Every process creates-or-opens and extends to full size: the zeroed table is valid, and
     * extending a file to the size it already has leaves its contents alone. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        TW_WARN("cannot open %s: %s; the causal clock rule stays within this process", path, strerror(errno));
        return;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && (size_t)st.st_size < sizeof(tw_actor_table) &&
        ftruncate(fd, sizeof(tw_actor_table)) != 0) {
        close(fd);
        return;
    }
    void *shared = mmap(NULL, sizeof(tw_actor_table), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (shared != MAP_FAILED) {
        table = shared;
        table_shared = 1;
    }
}

static void release_slot(tw_actor *s)
{
    __atomic_store_n(&s->state, TW_ACTOR_FREE, __ATOMIC_RELEASE);
    __atomic_store_n(&s->pid, 0, __ATOMIC_RELEASE);
}

void tw_actors_kick(void)
{
    __atomic_fetch_add(&table->generation, 1, __ATOMIC_ACQ_REL);
    __atomic_fetch_add(&table->epoch, 1, __ATOMIC_ACQ_REL);
    futex_call(&table->epoch, FUTEX_WAKE, INT_MAX, NULL);
}

static void kick(void)
{
    __atomic_fetch_add(&table->generation, 1, __ATOMIC_ACQ_REL);
    __atomic_fetch_add(&table->epoch, 1, __ATOMIC_ACQ_REL);
    futex_call(&table->epoch, FUTEX_WAKE, INT_MAX, NULL);
}

/* A thread leaving can make every remaining one blocked: wake the waiters to re-evaluate. */
static void on_thread_exit(void *slot)
{
    tw_actor *s = slot;
    if (s != NULL && s == tl_self) {
        release_slot(s);
        tl_self = NULL;
        kick();
    }
}

/* At exit the slots stay: the process still runs its teardown (destructors after this handler,
 * library finalisers, the kernel's exit), and while it runs the clock must not jump (torchrun's
 * agent, polling its workers every 100 ms, jumped hundreds of virtual seconds past a worker that
 * had released its slots but took seconds of host time to die). The jumper and emulate's sweep
 * free the slots once the process is a zombie or gone. */
static void exit_keeps_running(void)
{
    tw_actor_run();
}

static tw_actor *claim_slot(int32_t pid, int32_t tid);
static void adopt_slot(tw_actor *s);
static tw_actor *fork_slot;   /* claimed for the child before fork, so it is an actor at once */

static void before_fork(void)
{
    fork_slot = table_shared ? claim_slot(my_pid, 0) : NULL;
}

static void after_fork_in_parent(void)
{
    fork_slot = NULL;   /* the child adopts it; a failed fork leaves it pending: reclaimed later */
}

static void after_fork_in_child(void)
{
    my_pid = getpid();
    tl_self = NULL;   /* the parent's slot stays the parent's */
    if (!table_shared)
        memset(&private_table, 0, sizeof private_table);   /* the other threads did not fork */
    if (fork_slot != NULL)
        adopt_slot(fork_slot);
    fork_slot = NULL;
}

static void actors_init(void)
{
    real_syscall = (syscall_fn)dlsym(RTLD_NEXT, "syscall");
    my_pid = getpid();
    deadlock_grace_ns = (int64_t)(tw_config_get()->deadlock_grace_s * 1e9);
    pthread_key_create(&exit_key, on_thread_exit);
    map_table();
    struct sigaction old;
    int sig = SIGRTMAX - 2;
    if (sigaction(sig, NULL, &old) == 0 && old.sa_handler == SIG_DFL && !(old.sa_flags & SA_SIGINFO)) {
        /* SA_RESTART: a stray wake (the target was met just as the wait returned) restarts
         * reads and writes; the waits we interpose return EINTR regardless, as they should. */
        struct sigaction sa = {.sa_handler = on_wake_signal, .sa_flags = SA_RESTART};
        sigemptyset(&sa.sa_mask);
        if (sigaction(sig, &sa, NULL) == 0)
            wake_signal = sig;
    }
    pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
    atexit(exit_keeps_running);
}

/* A free slot, running, for pid/tid (tid 0: a thread or child about to start). */
static tw_actor *claim_slot(int32_t pid, int32_t tid)
{
    for (uint32_t i = 0; i < TW_ACTOR_SLOTS; i++) {
        tw_actor *s = &table->slots[i];
        int32_t expected = 0;
        if (!__atomic_compare_exchange_n(&s->pid, &expected, pid, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            continue;
        s->tid = tid;
        s->flags = 0;
        s->target_ns = INT64_MAX;
        s->heartbeat = 0;
        s->probe_cpu_ns = 0;
        s->probe_host_ns = 0;
        s->since_host_ns = tw_clock_host_ns();
        memset(s->label, 0, sizeof s->label);
        __atomic_store_n(&s->state, TW_ACTOR_RUNNING, __ATOMIC_RELEASE);
        uint32_t hw = __atomic_load_n(&table->high_water, __ATOMIC_ACQUIRE);
        while (hw < i + 1 && !__atomic_compare_exchange_n(&table->high_water, &hw, i + 1, 1, __ATOMIC_ACQ_REL,
                                                          __ATOMIC_ACQUIRE)) {
        }
        return s;
    }
    TW_WARN("actor table full (%d threads): a thread does not hold virtual time back", TW_ACTOR_SLOTS);
    return NULL;
}

/* The starting thread (or forked child) takes over the slot its creator claimed for it. */
static void adopt_slot(tw_actor *s)
{
    s->pid = my_pid;
    s->since_host_ns = tw_clock_host_ns();
    __atomic_store_n(&s->tid, (int32_t)gettid(), __ATOMIC_RELEASE);
    tl_self = s;
    pthread_setspecific(exit_key, s);
}

tw_actor *tw_actor_self(void)
{
    /* The slot is still ours unless a sweep took it for a dead process's: then register anew. */
    if (TW_LIKELY(tl_self != NULL && __atomic_load_n(&tl_self->pid, __ATOMIC_ACQUIRE) == my_pid))
        return tl_self;
    tl_self = NULL;
    if (tl_registering || tl_exempt)
        return NULL;
    tl_registering = 1;
    pthread_once(&init_once, actors_init);
    /* After fork + exec the new image finds the slot its forked self adopted. */
    int32_t tid = (int32_t)gettid();
    tw_actor *s = NULL;
    uint32_t n = __atomic_load_n(&table->high_water, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < n && s == NULL; i++)
        if (__atomic_load_n(&table->slots[i].pid, __ATOMIC_ACQUIRE) == my_pid && table->slots[i].tid == tid)
            s = &table->slots[i];
    if (s == NULL)
        s = claim_slot(my_pid, tid);
    if (s != NULL) {
        tl_self = s;
        pthread_setspecific(exit_key, s);
    }
    tl_registering = 0;
    return tl_self;
}

void tw_actor_exempt_self(void)
{
    tl_exempt = true;
}

typedef int (*pthread_create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

static pthread_create_fn real_pthread_create(void)
{
    static pthread_create_fn real_create;
    if (real_create == NULL)
        real_create = (pthread_create_fn)dlsym(RTLD_NEXT, "pthread_create");
    return real_create;
}

int tw_thread_create_exempt(pthread_t *thread, void *(*fn)(void *), void *arg)
{
    return real_pthread_create()(thread, NULL, fn, arg);
}

/* A new thread is an actor from its creation, not from its first interposed call: otherwise
 * the run could jump while it starts (its creator blocks in join, say). */
struct thread_start {
    void *(*fn)(void *);
    void *arg;
    tw_actor *slot;
};

static void *thread_trampoline(void *p)
{
    struct thread_start start = *(struct thread_start *)p;
    free(p);
    if (start.slot != NULL)
        adopt_slot(start.slot);
    return start.fn(start.arg);
}

TW_EXPORT int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    pthread_create_fn real_create = real_pthread_create();
    pthread_once(&init_once, actors_init);
    struct thread_start *start = malloc(sizeof *start);
    if (start == NULL)
        return real_create(thread, attr, fn, arg);
    *start = (struct thread_start){fn, arg, claim_slot(my_pid, 0)};
    int rc = real_create(thread, attr, thread_trampoline, start);
    if (rc != 0) {
        if (start->slot != NULL)
            release_slot(start->slot);
        free(start);
    }
    return rc;
}

/* ---- exec: the new image is an actor from its first instruction ----
 * A child started by vfork or posix_spawn (Python's subprocess) has no fork slot, and the image
 * it executes may never load the shim (a static compiler, a cleared environment): the calling
 * thread gets (or keeps) a running slot under the identity it will have after exec (tid = pid),
 * so no jump passes the new program while it works (the jumper reads its kernel state; a shim
 * in the new image takes the slot over). Runs in a vfork child too: no thread-local state, no
 * lock, only the shared table. */
static void slot_for_exec(void)
{
    pthread_once(&init_once, actors_init);
    int32_t pid = (int32_t)syscall(SYS_getpid);
    uint32_t n = __atomic_load_n(&table->high_water, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++) {
        tw_actor *s = &table->slots[i];
        if (__atomic_load_n(&s->pid, __ATOMIC_ACQUIRE) == pid && __atomic_load_n(&s->tid, __ATOMIC_ACQUIRE) == pid) {
            s->since_host_ns = tw_clock_host_ns();
            __atomic_store_n(&s->state, TW_ACTOR_RUNNING, __ATOMIC_RELEASE);
            return;
        }
    }
    tw_actor *s = claim_slot(pid, pid);
    if (s != NULL)
        strncpy(s->label, "exec", sizeof s->label - 1);
}

typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*execvpe_fn)(const char *, char *const[], char *const[]);
typedef int (*fexecve_fn)(int, char *const[], char *const[]);

TW_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    static execve_fn real;
    if (real == NULL)
        real = (execve_fn)dlsym(RTLD_NEXT, "execve");
    slot_for_exec();
    return real(path, argv, envp);
}

TW_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    static execvpe_fn real;
    if (real == NULL)
        real = (execvpe_fn)dlsym(RTLD_NEXT, "execvpe");
    slot_for_exec();
    return real(file, argv, envp);
}

TW_EXPORT int execvp(const char *file, char *const argv[])
{
    return execvpe(file, argv, environ);
}

TW_EXPORT int execv(const char *path, char *const argv[])
{
    return execve(path, argv, environ);
}

TW_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    static fexecve_fn real;
    if (real == NULL)
        real = (fexecve_fn)dlsym(RTLD_NEXT, "fexecve");
    slot_for_exec();
    return real(fd, argv, envp);
}

static void set_state(tw_actor *s, uint32_t state)
{
    s->since_host_ns = tw_clock_host_ns();
    __atomic_store_n(&s->state, state, __ATOMIC_RELEASE);
    __atomic_fetch_add(&table->generation, 1, __ATOMIC_ACQ_REL);
}

tw_actor *tw_actor_block(const char *label, int64_t target_ns, uint32_t flags)
{
    tw_actor *s = tw_actor_self();
    if (s == NULL)
        return NULL;
    tw_woken_by_jump = 0;
    tw_clock_spin_reset();
    s->target_ns = target_ns < 0 ? INT64_MAX : target_ns;
    s->flags = wake_signal != 0 ? flags : (flags & ~(uint32_t)TW_ACTOR_F_SIGNAL);
    s->heartbeat++;
    strncpy(s->label, label, sizeof s->label - 1);
    set_state(s, target_ns < 0 ? TW_ACTOR_BLOCKED_FOREVER : TW_ACTOR_BLOCKED);
    return s;
}

void tw_actor_set_target(tw_actor *s, int64_t target_ns)
{
    s->target_ns = target_ns;
    s->flags |= TW_ACTOR_F_EPOCH;
    set_state(s, TW_ACTOR_BLOCKED);
}

/* A jump that woke other threads stops the clock until one of them acts: the time a woken thread
 * waits for one of this host's cores before it runs is not the program's (on the GPU host it
 * runs at once). The first thread to act after the jump ends the pause; the governor ends one
 * that lasts a few ms (a woken thread that died, say: shim/tools/governor.c). */
static void wake_pause_begin(void)
{
    uint32_t zero = 0;
    if (__atomic_compare_exchange_n(&table->wake_pause, &zero, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        tw_clock_pause_begin();
}

static void wake_pause_end(void)
{
    uint32_t one = 1;
    if (__atomic_load_n(&table->wake_pause, __ATOMIC_ACQUIRE) &&
        __atomic_compare_exchange_n(&table->wake_pause, &one, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        tw_clock_pause_end(0);
}

void tw_actor_run(void)
{
    wake_pause_end();
    tw_actor *s = tl_self;
    if (s != NULL && __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != TW_ACTOR_RUNNING)
        set_state(s, TW_ACTOR_RUNNING);
}

void tw_actor_set_spinning(bool spinning)
{
    tw_actor *s = tw_actor_self();
    if (s == NULL)
        return;
    if (spinning) {
        strncpy(s->label, "spin", sizeof s->label - 1);
        s->target_ns = INT64_MAX;
        set_state(s, TW_ACTOR_SPINNING);
        tw_actors_try_jump();
    } else {
        set_state(s, TW_ACTOR_RUNNING);
    }
}

static bool other_threads_alive(int32_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *dir = opendir(path);
    if (dir == NULL)
        return false;
    int threads = 0;
    for (struct dirent *e; (e = readdir(dir)) != NULL;)
        threads += e->d_name[0] != '.';
    closedir(dir);
    return threads > 1;
}

/* The kernel's state letter of a thread ('R' runnable, 'S' sleeping, 'D' disk, 'Z' zombie...),
 * 0 when it no longer exists, '?' when /proc could not tell (out of descriptors, say): a live
 * thread must never be taken for gone, or its slot and its waits would vanish. */
static char kernel_state(int32_t pid, int32_t tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", pid, tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ESRCH ? 0 : '?';
    ssize_t n = tw_io_read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return n == 0 || errno == ESRCH ? 0 : '?';
    buf[n] = '\0';
    char *paren = strrchr(buf, ')');
    char k = paren != NULL && paren[1] == ' ' ? paren[2] : 0;
    /* A zombie leader whose other threads still run is a process in its exit: the last thread
     * tears the address space down, which takes real time; it is gone only when that is done. */
    if (k == 'Z' && pid == tid && other_threads_alive(pid))
        return 'R';
    return k;
}

/* The thread sleeps in a system call that only another thread's action ends (a futex wait
 * without timeout, a join, a blocking read, an untimed poll): glibc's mutexes and joins,
 * OpenMP's barriers and other waits we do not interpose. /proc/<pid>/task/<tid>/syscall gives
 * the call and its arguments. Such a thread is blocked with no target soon (its waker is another
 * thread of the run, which holds the clock while it runs). */
static bool in_untimed_wait(int32_t pid, int32_t tid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/task/%d/syscall", pid, tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = tw_io_read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    unsigned long long args[7] = {0};
    char *at = buf;
    for (int i = 0; i < 7; i++) {
        char *end;
        args[i] = strtoull(at, &end, i == 0 ? 10 : 16);
        if (end == at)
            return false;   /* "running" or a short line: not in a system call */
        at = end;
    }
    long nr = (long)args[0];
    switch (nr) {
    case SYS_futex: {
        int op = (int)(args[2] & 127);   /* FUTEX_CMD_MASK */
        bool waits = op == FUTEX_WAIT || op == FUTEX_WAIT_BITSET || op == FUTEX_LOCK_PI ||
                     op == FUTEX_WAIT_REQUEUE_PI || op == FUTEX_LOCK_PI2;
        return waits && args[4] == 0;   /* no timeout */
    }
    case SYS_wait4: case SYS_waitid: case SYS_pause: case SYS_rt_sigsuspend:
    case SYS_read: case SYS_readv: case SYS_recvfrom: case SYS_recvmsg: case SYS_accept: case SYS_accept4:
        return true;
    case SYS_poll:
        return (int)args[3] < 0;
    case SYS_epoll_wait: case SYS_epoll_pwait:
        return (int)args[4] < 0;
    case SYS_select: case SYS_pselect6:
        return args[5] == 0;
    case SYS_ppoll:
        return args[3] == 0;
    default:
        return false;
    }
}

/* The CPU time a thread has received (schedstat's first field), 0 when unreadable. */
static uint64_t thread_cpu_ns(int32_t pid, int32_t tid)
{
    char path[64], buf[128];
    snprintf(path, sizeof path, "/proc/%d/task/%d/schedstat", pid, tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = tw_io_read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strtoull(buf, NULL, 10);
}

static bool gone(char k)
{
    return k == 0 || k == 'Z' || k == 'X' || k == 'x';
}

uint32_t tw_actors_epoch(void)
{
    return __atomic_load_n(&table->epoch, __ATOMIC_ACQUIRE);
}

int tw_actors_wait_epoch(uint32_t seen_epoch, int64_t host_timeout_ns)
{
    if (host_timeout_ns <= 0)
        return 0;
    struct timespec ts = {.tv_sec = host_timeout_ns / 1000000000LL, .tv_nsec = host_timeout_ns % 1000000000LL};
    return futex_call(&table->epoch, FUTEX_WAIT, seen_epoch, &ts) == 0 ? 0 : errno;
}

void tw_actors_wait_word(uint32_t *word, uint32_t seen, int64_t host_timeout_ns)
{
    struct timespec ts = {.tv_sec = host_timeout_ns / 1000000000LL, .tv_nsec = host_timeout_ns % 1000000000LL};
    futex_call(word, FUTEX_WAIT_PRIVATE, seen, &ts);
}

void tw_actors_wake_word(uint32_t *word)
{
    futex_call(word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
}

/* Wake epoch waiters, and signal the threads in OS waits whose target is at most signal_until. */
static void wake_waiters(int64_t signal_until)
{
    __atomic_fetch_add(&table->epoch, 1, __ATOMIC_ACQ_REL);
    futex_call(&table->epoch, FUTEX_WAKE, INT_MAX, NULL);
    if (wake_signal == 0)
        return;
    uint32_t n = __atomic_load_n(&table->high_water, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++) {
        tw_actor *s = &table->slots[i];
        if (s == tl_self || __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != TW_ACTOR_BLOCKED ||
            !(s->flags & TW_ACTOR_F_SIGNAL) || s->target_ns > signal_until)
            continue;
        int32_t pid = __atomic_load_n(&s->pid, __ATOMIC_ACQUIRE);
        if (pid != 0)
            real_syscall(SYS_tgkill, pid, s->tid, wake_signal);
    }
}

/* After a pause of the clock: waiters that sized their sleep while it stood still resize it. A
 * signalled wait sleeps at most TW_SLICE_TIMED_NS: a target further on is resized by its own
 * next slice. */
void tw_actors_wake_sleepers(void)
{
    pthread_once(&init_once, actors_init);
    wake_waiters(tw_now_ns() + TW_SLICE_TIMED_NS);
}

/* Quiescence: every other actor must be asleep in the kernel, not just marked, and no state
 * may have changed since the scan. */
static enum tw_jump_result quiescent(uint32_t n, uint32_t gen0)
{
    for (uint32_t i = 0; i < n; i++) {
        tw_actor *s = &table->slots[i];
        int32_t pid = __atomic_load_n(&s->pid, __ATOMIC_ACQUIRE);
        uint32_t state = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        if (s == tl_self || pid == 0 || state == TW_ACTOR_FREE || state == TW_ACTOR_SPINNING)
            continue;
        /* A sleep or GPU wait ends only by a jump: no real event can be in flight to it, so its
         * kernel state need not be read (a dead one is reclaimed by the coordinator's sweep). */
        if (state == TW_ACTOR_BLOCKED && (__atomic_load_n(&s->flags, __ATOMIC_ACQUIRE) & TW_ACTOR_F_EPOCH))
            continue;
        char k = kernel_state(pid, s->tid);
        if (gone(k)) {
            release_slot(s);
            return TW_JUMP_RETRY;
        }
        if (k == 'R' || k == 'D' || k == '?')
            return TW_JUMP_RETRY;
    }
    if (__atomic_load_n(&table->generation, __ATOMIC_ACQUIRE) != gen0)
        return TW_JUMP_RETRY;
    return TW_JUMP_DONE;
}

/* Another process waits on file descriptors: a message to it may still be in flight. */
static bool settle_needed(uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        tw_actor *s = &table->slots[i];
        if (__atomic_load_n(&s->pid, __ATOMIC_ACQUIRE) != my_pid &&
            __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != TW_ACTOR_FREE && (s->flags & TW_ACTOR_F_FD))
            return true;
    }
    return false;
}

/* A process of the run without the shim (emulate lists them) works: runnable, or asleep but
 * given CPU within 20 ms. Its time is host time, as any CPU work's: no jump may pass it (a JIT
 * compiler's minutes must not become 6,000 virtual seconds). */
static bool outsider_works(void)
{
    if (__atomic_load_n(&table->outsiders, __ATOMIC_ACQUIRE) == 0)
        return false;
    int64_t host = tw_clock_host_ns();
    for (int i = 0; i < TW_OUTSIDERS; i++) {
        tw_outsider *o = &table->outsider[i];
        int32_t pid = __atomic_load_n(&o->pid, __ATOMIC_ACQUIRE);
        if (pid == 0)
            continue;
        char k = kernel_state(pid, pid);
        if (gone(k))
            continue;
        if (k == 'R' || k == 'D')
            return true;
        if (in_untimed_wait(pid, pid))
            continue;   /* it waits for somebody else */
        uint64_t cpu = thread_cpu_ns(pid, pid);
        if (cpu != o->probe_cpu_ns || o->probe_host_ns == 0) {
            o->probe_cpu_ns = cpu;
            o->probe_host_ns = host;
            return true;
        }
        if (host - o->probe_host_ns < UNINTERPOSED_SLEEP_NS)
            return true;
    }
    return false;
}

static enum tw_jump_result refused(int reason, enum tw_jump_result result)
{
    __atomic_fetch_add(&table->refusals[reason], 1, __ATOMIC_RELAXED);
    return result;
}

enum tw_jump_result tw_actors_try_jump(void)
{
    pthread_once(&init_once, actors_init);
    uint32_t gen0 = __atomic_load_n(&table->generation, __ATOMIC_ACQUIRE);
    uint32_t n = __atomic_load_n(&table->high_water, __ATOMIC_ACQUIRE);
    int64_t earliest = INT64_MAX;
    int others = 0;
    for (uint32_t i = 0; i < n; i++) {
        tw_actor *s = &table->slots[i];
        int32_t pid = __atomic_load_n(&s->pid, __ATOMIC_ACQUIRE);
        uint32_t state = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        if (pid == 0 || state == TW_ACTOR_FREE)
            continue;
        if (state == TW_ACTOR_RUNNING) {
            if (s == tl_self)
                return refused(TW_REFUSED_SELF, TW_JUMP_NONE);
            if (__atomic_load_n(&s->tid, __ATOMIC_ACQUIRE) == 0) {
                /* a thread or child starting; one pending this long was a failed fork */
                if (tw_clock_host_ns() - s->since_host_ns < PENDING_GIVE_UP_NS)
                    return refused(TW_REFUSED_STARTING, TW_JUMP_NONE);
                release_slot(s);
                continue;
            }
            /* Running. In a wait we do not interpose it may be blocked all the same: asleep in
             * the kernel in a call only another thread ends (at once), or asleep and no longer
             * getting CPU for 20 ms (a timed wait of its own, a pipe to a process we cannot
             * see). Work that sleeps briefly between bursts (interpreter teardown, imports, lock
             * hand-offs) keeps the clock, as it would on the GPU host. */
            int64_t host = tw_clock_host_ns();
            bool recent = host - s->since_host_ns < UNINTERPOSED_SLEEP_NS;
            char k = kernel_state(pid, s->tid);
            if (gone(k)) {   /* it ended: what it last sent or its exit may be waking a waiter */
                release_slot(s);
                return refused(TW_REFUSED_NOT_QUIESCENT, TW_JUMP_RETRY);
            }
            if (k != 'S') {
                TW_DEBUG("jump refused: %d/%d is %c, marked running for %.1f ms", pid, s->tid, k,
                         (double)(host - s->since_host_ns) / 1e6);
                return refused(recent ? TW_REFUSED_RUNNING : TW_REFUSED_RUNNABLE, TW_JUMP_NONE);
            }
            /* asleep in the kernel: blocked once it has had no CPU for long enough, 2 ms in a call
             * only another thread ends (long enough for a waker that is itself about to block —
             * the jumper releasing a mutex inside its condition wait — to get to it), 20 ms in
             * any other (it may end by itself: a timed wait of its own, a pipe to a process we
             * cannot see) */
            bool untimed = in_untimed_wait(pid, s->tid);
            if (recent && !untimed)
                return refused(TW_REFUSED_RUNNING, TW_JUMP_NONE);
            uint64_t cpu = thread_cpu_ns(pid, s->tid);
            if (cpu != s->probe_cpu_ns || s->probe_host_ns == 0) {
                s->probe_cpu_ns = cpu;
                s->probe_host_ns = host;
                return refused(TW_REFUSED_GETS_CPU, TW_JUMP_NONE);
            }
            if (host - s->probe_host_ns < (untimed ? UNTIMED_SLEEP_NS : UNINTERPOSED_SLEEP_NS))
                return refused(TW_REFUSED_GETS_CPU, TW_JUMP_NONE);
        } else if (state == TW_ACTOR_BLOCKED && s->target_ns < earliest) {
            earliest = s->target_ns;
        }
        if (s != tl_self)
            others++;
    }
    if (earliest == INT64_MAX)
        return refused(TW_REFUSED_NO_TARGET, TW_JUMP_NONE);
    if (tw_clock_paused())
        return refused(TW_REFUSED_PAUSED, TW_JUMP_NONE);   /* its end wakes the waiters (clock.c) */
    if (outsider_works())
        return refused(TW_REFUSED_OUTSIDER, TW_JUMP_NONE);
    /* A rendezvous completed and a participant has not yet recomputed its timeline: its waits
     * may get targets earlier than `earliest` (collectives.c). Its progress thread kicks. */
    if (tw_coll_any_dirty())
        return refused(TW_REFUSED_CATCHING_UP, TW_JUMP_NONE);
    /* A target already reached belongs to a thread that a jump or its own real-time slice has
     * woken and that has not run yet: it acts next. Waking everyone again here would starve it
     * on a small machine (every waiter re-scans, sees the same target, wakes everyone). */
    if (tw_now_ns() >= earliest)
        return refused(TW_REFUSED_REACHED, TW_JUMP_NONE);
    if (others > 0) {
        enum tw_jump_result q = quiescent(n, gen0);
        if (q != TW_JUMP_DONE)
            return refused(TW_REFUSED_NOT_QUIESCENT, q);
        if (settle_needed(n)) {
            /* Loopback TCP may hand a packet to the receiver's softirq after the sender
             * returns: give a message already sent the settle window to wake its reader. */
            uint32_t word = 0;
            struct timespec settle = {0, SETTLE_NS};
            futex_call(&word, FUTEX_WAIT_PRIVATE, 0, &settle);
            q = quiescent(n, gen0);
            if (q != TW_JUMP_DONE)
                return refused(TW_REFUSED_NOT_QUIESCENT, q);
        }
    }
    bool woke_others = tl_self == NULL || tl_self->target_ns != earliest;
    if (tw_clock_advance_to(earliest)) {
        __atomic_fetch_add(&table->jumps, 1, __ATOMIC_RELAXED);
        if (woke_others)
            wake_pause_begin();
    }
    wake_waiters(earliest);   /* the threads whose target the jump reached */
    return TW_JUMP_DONE;
}

static const char *state_name(uint32_t state)
{
    switch (state) {
    case TW_ACTOR_RUNNING: return "running";
    case TW_ACTOR_BLOCKED: return "blocked";
    case TW_ACTOR_BLOCKED_FOREVER: return "blocked forever";
    case TW_ACTOR_SPINNING: return "spinning";
    default: return "free";
    }
}

/* Every registered thread has waited with no target for the grace period and sleeps in the
 * kernel: nothing inside the run can wake any of them. Name the waits and end the run. */
void tw_actors_check_deadlock(void)
{
    pthread_once(&init_once, actors_init);
    if (deadlock_grace_ns <= 0 || __atomic_load_n(&table->deadlock, __ATOMIC_ACQUIRE))
        return;
    /* A process of the run that ignores the protocol (started with a cleared environment, say)
     * may still write the pipe someone waits on: no deadlock while one lives. */
    if (__atomic_load_n(&table->outsiders, __ATOMIC_ACQUIRE) != 0)
        return;
    int64_t host = tw_clock_host_ns();
    uint32_t n = __atomic_load_n(&table->high_water, __ATOMIC_ACQUIRE);
    int count = 0;
    for (uint32_t i = 0; i < n; i++) {
        tw_actor *s = &table->slots[i];
        int32_t pid = __atomic_load_n(&s->pid, __ATOMIC_ACQUIRE);
        uint32_t state = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        if (pid == 0 || state == TW_ACTOR_FREE)
            continue;
        if (state != TW_ACTOR_BLOCKED_FOREVER || host - s->since_host_ns < deadlock_grace_ns)
            return;
        count++;
        if (s == tl_self)
            continue;   /* the checker itself runs, between two slices of its wait */
        char k = kernel_state(pid, s->tid);
        if (gone(k)) {
            count--;
            release_slot(s);
        }
        else if (k == 'R' || k == 'D' || k == '?')
            return;
    }
    uint32_t expected = 0;
    if (count == 0 || !__atomic_compare_exchange_n(&table->deadlock, &expected, 1, 0, __ATOMIC_ACQ_REL,
                                                   __ATOMIC_ACQUIRE))
        return;
    char report[8192];
    size_t used = (size_t)snprintf(report, sizeof report,
                                   "timewarp: deadlock: all %d threads of the run wait with no timeout and "
                                   "nothing can wake them\n", count);
    for (uint32_t i = 0; i < n && used < sizeof report - 128; i++) {
        tw_actor *s = &table->slots[i];
        if (__atomic_load_n(&s->pid, __ATOMIC_ACQUIRE) == 0 || s->state == TW_ACTOR_FREE)
            continue;
        char label[TW_ACTOR_LABEL_LEN + 1] = {0};
        memcpy(label, s->label, TW_ACTOR_LABEL_LEN);
        used += (size_t)snprintf(report + used, sizeof report - used, "  pid %d tid %d: %s in %s for %.1f s\n",
                                 s->pid, s->tid, state_name(s->state), label,
                                 (double)(host - s->since_host_ns) / 1e9);
    }
    if (used < sizeof report - 256) {
        size_t pending_at = used;
        used += (size_t)snprintf(report + used, sizeof report - used, "collectives waiting for participants:\n");
        size_t listed = tw_coll_describe_pending(report + used, sizeof report - used);
        used = listed > 0 ? used + listed : pending_at;
    }
    const char *run_dir = tw_config_get()->run_dir;
    if (run_dir != NULL) {
        char path[4096];
        snprintf(path, sizeof path, "%s/deadlock.txt", run_dir);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            ssize_t w = write(fd, report, used);
            (void)w;
            close(fd);
        }
    }
    ssize_t w = write(STDERR_FILENO, report, used);
    (void)w;
    /* End the run: every process that has an actor, this one last. */
    for (uint32_t i = 0; i < n; i++) {
        int32_t pid = __atomic_load_n(&table->slots[i].pid, __ATOMIC_ACQUIRE);
        if (pid != 0 && pid != my_pid)
            kill(pid, SIGTERM);
    }
    kill(my_pid, SIGTERM);
}

/* The process is an actor from its start: a child started by vfork or posix_spawn (Python's
 * subprocess) has no fork slot, and importing a big Python package can run for seconds before
 * its first interposed call; until it registers, its parent's 100 ms polls would jump freely. */
__attribute__((constructor(103))) static void actors_constructor(void)
{
    pthread_once(&init_once, actors_init);
    tw_actor_self();
}
