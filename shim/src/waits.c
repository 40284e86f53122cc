/* The interposed OS waits. Each marks the calling thread blocked (with a virtual target when
 * the wait has a timeout, else indefinitely) around the real call, lets the causal rule of
 * actors.c jump when every thread of the run is blocked, and waits in real-time slices no
 * longer than the remaining virtual span, so a target is met even while others run and a jump
 * past it ends the wait promptly (the jumper also sends the wake signal to fd and semaphore
 * waits). Deadlines the program hands us are virtual; the kernel gets host deadlines. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "actors.h"
#include "tw_core.h"
#include "tw_timespec.h"

#define SPIN_HINT_WEIGHT 16   /* a yield or a zero-timeout poll counts as 16 clock reads */

typedef int (*poll_fn)(struct pollfd *, nfds_t, int);
typedef int (*ppoll_fn)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
typedef int (*pselect_fn)(int, fd_set *, fd_set *, fd_set *, const struct timespec *, const sigset_t *);
typedef int (*epoll_pwait2_fn)(int, struct epoll_event *, int, const struct timespec *, const sigset_t *);
typedef int (*epoll_pwait_fn)(int, struct epoll_event *, int, int, const sigset_t *);
typedef int (*cond_clockwait_fn)(pthread_cond_t *, pthread_mutex_t *, clockid_t, const struct timespec *);
typedef int (*cond_timedwait_fn)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
typedef int (*sem_clockwait_fn)(sem_t *, clockid_t, const struct timespec *);
typedef int (*sem_fn)(sem_t *);
typedef int (*mutex_clocklock_fn)(pthread_mutex_t *, clockid_t, const struct timespec *);
typedef pid_t (*wait4_fn)(pid_t, int *, int, struct rusage *);
typedef int (*waitid_fn)(idtype_t, id_t, siginfo_t *, int);
typedef int (*clock_nanosleep_fn)(clockid_t, int, const struct timespec *, struct timespec *);
typedef long (*syscall_fn)(long, ...);
typedef int (*yield_fn)(void);

static struct {
    ppoll_fn ppoll;
    pselect_fn pselect;
    epoll_pwait_fn epoll_pwait;
    epoll_pwait2_fn epoll_pwait2;
    cond_clockwait_fn cond_clockwait;
    cond_timedwait_fn cond_timedwait;
    sem_clockwait_fn sem_clockwait;
    sem_fn sem_trywait;
    mutex_clocklock_fn mutex_clocklock;
    wait4_fn wait4;
    waitid_fn waitid;
    clock_nanosleep_fn clock_nanosleep;
    syscall_fn syscall;
    yield_fn sched_yield;
} real;
static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;

static void resolve_real(void)
{
    real.ppoll = (ppoll_fn)dlsym(RTLD_NEXT, "ppoll");
    real.pselect = (pselect_fn)dlsym(RTLD_NEXT, "pselect");
    real.epoll_pwait = (epoll_pwait_fn)dlsym(RTLD_NEXT, "epoll_pwait");
    real.epoll_pwait2 = (epoll_pwait2_fn)dlsym(RTLD_NEXT, "epoll_pwait2");
    real.cond_clockwait = (cond_clockwait_fn)dlsym(RTLD_NEXT, "pthread_cond_clockwait");
    /* The default (2.3.2) condvar ABI: the compat one uses a different object layout. */
    real.cond_timedwait = (cond_timedwait_fn)dlvsym(RTLD_NEXT, "pthread_cond_timedwait", "GLIBC_2.3.2");
    real.sem_clockwait = (sem_clockwait_fn)dlsym(RTLD_NEXT, "sem_clockwait");
    real.sem_trywait = (sem_fn)dlsym(RTLD_NEXT, "sem_trywait");
    real.mutex_clocklock = (mutex_clocklock_fn)dlsym(RTLD_NEXT, "pthread_mutex_clocklock");
    real.wait4 = (wait4_fn)dlsym(RTLD_NEXT, "wait4");
    real.waitid = (waitid_fn)dlsym(RTLD_NEXT, "waitid");
    real.clock_nanosleep = (clock_nanosleep_fn)dlsym(RTLD_NEXT, "clock_nanosleep");
    real.syscall = (syscall_fn)dlsym(RTLD_NEXT, "syscall");
    real.sched_yield = (yield_fn)dlsym(RTLD_NEXT, "sched_yield");
}

static inline void ensure_real(void)
{
    pthread_once(&resolve_once, resolve_real);
}

static inline bool bad_timespec(const struct timespec *ts)
{
    return ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L;
}

/* A host CLOCK_MONOTONIC deadline `span` of real time from now. */
static inline struct timespec host_after(int64_t span_ns)
{
    return ns_ts(tw_clock_host_ns() + span_ns);
}

static __thread int64_t tl_backoff_ns;

/* The real span of the next slice of a wait for `target` (local virtual; < 0: none), after
 * giving the causal rule its chance to jump; 0 once the target is reached. */
static int64_t next_slice(int64_t target, int64_t longest)
{
    enum tw_jump_result jumped = tw_actors_try_jump();
    int64_t slice = longest;
    if (target >= 0) {
        int64_t remaining = target - tw_now_ns();
        if (remaining <= 0)
            return 0;
        int64_t host_remaining = tw_clock_host_span_ns(remaining);   /* at the current rate */
        if (host_remaining < slice)
            slice = host_remaining;
    }
    if (jumped == TW_JUMP_RETRY && slice > TW_RETRY_NS)
        slice = TW_RETRY_NS;
    /* Someone runs. If it blocks in an interposed wait it re-evaluates itself; if it blocks in
     * one we do not see, only a waiter notices: look again after 1 ms, doubling up to a slice. */
    if (jumped == TW_JUMP_NONE) {
        tl_backoff_ns = tl_backoff_ns == 0 ? TW_BACKOFF_FIRST_NS : tl_backoff_ns * 2;
        if (tl_backoff_ns > TW_SLICE_FOREVER_NS)
            tl_backoff_ns = TW_SLICE_FOREVER_NS;   /* bounded: doubling must not overflow */
        if (tl_backoff_ns < slice)
            slice = tl_backoff_ns;
    } else {
        tl_backoff_ns = 0;
    }
    return slice;
}

static inline void run_keep_errno(void)
{
    int saved = errno;
    tw_actor_run();
    errno = saved;
}

/* ---- sleeps and GPU waits: the epoch word ---- */

int tw_wait_virtual(int64_t target_ns, const char *label, bool interruptible)
{
    if (tw_actor_block(label, target_ns, TW_ACTOR_F_EPOCH) == NULL) {
        tw_clock_advance_to(target_ns);   /* no slot: the eager rule */
        return 0;
    }
    int rc = 0;
    for (;;) {
        uint32_t epoch = tw_actors_epoch();   /* before the check: a jump after it ends the wait */
        int64_t slice = next_slice(target_ns, TW_SLICE_TIMED_NS);
        if (slice <= 0)
            break;
        if (tw_actors_wait_epoch(epoch, slice) == EINTR && !tw_woken_by_jump && interruptible) {
            rc = EINTR;
            break;
        }
        tw_woken_by_jump = 0;
    }
    tw_actor_run();
    return rc;
}

/* ---- waits for a condition in shared memory (collective rendezvous) ---- */

void tw_wait_for(bool (*ready)(void *), void *arg, uint32_t *futex_word, const char *label)
{
    if (ready(arg))
        return;
    ensure_real();
    tw_actor *self = tw_actor_block(label, -1, 0);
    while (!ready(arg)) {
        uint32_t seen = __atomic_load_n(futex_word, __ATOMIC_ACQUIRE);
        if (ready(arg))
            break;
        /* no target of ours: others may jump; re-check at least every slice for the deadlock
         * report and for a change the futex word missed */
        tw_actors_try_jump();
        struct timespec slice = {0, self != NULL ? TW_SLICE_FOREVER_NS : 1000000L};
        real.syscall(SYS_futex, futex_word, FUTEX_WAIT, seen, &slice, NULL, 0);
        if (self != NULL)
            tw_actors_check_deadlock();
    }
    tw_actor_run();
}

static uint32_t sleep_name_id(void)
{
    static uint32_t id;
    if (id == 0)
        id = tw_name_intern("sleep");
    return id;
}

/* 0, or EINTR when a signal interrupted the sleep. */
static int sleep_until(int64_t target, const char *label)
{
    int64_t begin = tw_now_ns();
    if (target <= begin) {
        tw_clock_spin_hint(SPIN_HINT_WEIGHT);   /* sleep(0): a yield */
        return 0;
    }
    uint64_t issued = tw_issued_seq();
    int rc = tw_wait_virtual(target, label, true);
    tw_clock_record_wait(begin, tw_now_ns(), TW_WAIT_SLEEP, sleep_name_id(), issued);
    return rc;
}

static void set_remaining(struct timespec *rem, int64_t target)
{
    if (rem != NULL)
        *rem = ns_ts(target - tw_now_ns());
}

TW_EXPORT int nanosleep(const struct timespec *req, struct timespec *rem)
{
    if (req == NULL || bad_timespec(req) || req->tv_sec < 0) {
        errno = EINVAL;
        return -1;
    }
    int64_t target = tw_now_ns() + ts_ns(req);
    if (sleep_until(target, "nanosleep") == EINTR) {
        set_remaining(rem, target);
        errno = EINTR;
        return -1;
    }
    return 0;
}

TW_EXPORT int clock_nanosleep(clockid_t id, int flags, const struct timespec *req, struct timespec *rem)
{
    ensure_real();
    if (!tw_clock_tracks_real_time(id))
        return real.clock_nanosleep(id, flags, req, rem);
    if (req == NULL || bad_timespec(req))
        return EINVAL;
    int64_t target = (flags & TIMER_ABSTIME) ? ts_ns(req) - tw_clock_minus_mono_ns(id) : tw_now_ns() + ts_ns(req);
    int rc = sleep_until(target, "clock_nanosleep");
    if (rc == EINTR && !(flags & TIMER_ABSTIME))
        set_remaining(rem, target);
    return rc;
}

TW_EXPORT int usleep(useconds_t usec)
{
    if (sleep_until(tw_now_ns() + (int64_t)usec * 1000, "usleep") == EINTR) {
        errno = EINTR;
        return -1;
    }
    return 0;
}

TW_EXPORT unsigned int sleep(unsigned int seconds)
{
    int64_t target = tw_now_ns() + (int64_t)seconds * 1000000000LL;
    if (sleep_until(target, "sleep") == EINTR) {
        int64_t left = target - tw_now_ns();
        return left > 0 ? (unsigned int)((left + 999999999LL) / 1000000000LL) : 0;
    }
    return 0;
}

TW_EXPORT int sched_yield(void)
{
    ensure_real();
    tw_clock_spin_hint(SPIN_HINT_WEIGHT);
    return real.sched_yield();
}

/* ---- file-descriptor waits ---- */

/* One real attempt with a host timeout (ns; 0 = check, -1 = none). */
typedef int (*fd_attempt_fn)(void *ctx, int64_t timeout_ns);

static int fd_wait(const char *label, int64_t timeout_ns, fd_attempt_fn attempt, void *ctx)
{
    ensure_real();
    if (timeout_ns == 0) {
        tw_clock_spin_hint(SPIN_HINT_WEIGHT);
        return attempt(ctx, 0);
    }
    int r = attempt(ctx, 0);   /* something ready already: no bookkeeping */
    if (r != 0)
        return r;
    int64_t target = timeout_ns < 0 ? -1 : tw_now_ns() + timeout_ns;
    if (tw_actor_block(label, target, TW_ACTOR_F_SIGNAL | TW_ACTOR_F_FD) == NULL)
        return attempt(ctx, timeout_ns);
    int64_t longest = target < 0 ? TW_SLICE_FOREVER_NS : TW_SLICE_TIMED_NS;
    for (bool first = true;; first = false) {
        /* Between slices this thread is not in the kernel's wait: an fd that became ready
         * meanwhile must be seen before the jump check, or the jump would skip past it. */
        if (!first && (r = attempt(ctx, 0)) != 0)
            break;
        int64_t slice = next_slice(target, longest);
        if (slice <= 0) {
            r = 0;
            break;
        }
        r = attempt(ctx, slice);
        if (r > 0)
            break;
        if (r < 0) {
            if (errno == EINTR && tw_woken_by_jump) {
                tw_woken_by_jump = 0;
                continue;
            }
            break;
        }
        if (target < 0 && slice >= TW_SLICE_FOREVER_NS)
            tw_actors_check_deadlock();
    }
    run_keep_errno();
    return r;
}

static int64_t ms_to_ns(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : (int64_t)timeout_ms * 1000000LL;
}

static int ns_to_ms_ceil(int64_t ns)
{
    int64_t ms = (ns + 999999) / 1000000;
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

static const struct timespec *host_timeout(int64_t ns, struct timespec *buf)
{
    if (ns < 0)
        return NULL;
    *buf = ns_ts(ns);
    return buf;
}

struct poll_ctx {
    struct pollfd *fds;
    nfds_t nfds;
    const sigset_t *sigmask;
};

static int poll_attempt(void *ctx, int64_t timeout_ns)
{
    struct poll_ctx *c = ctx;
    struct timespec ts;
    return real.ppoll(c->fds, c->nfds, host_timeout(timeout_ns, &ts), c->sigmask);
}

int tw_wait_fd_readable(int fd, int64_t timeout_ns, const char *label)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    struct poll_ctx c = {&p, 1, NULL};
    return fd_wait(label, timeout_ns, poll_attempt, &c);
}

TW_EXPORT int poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
    struct poll_ctx c = {fds, nfds, NULL};
    return fd_wait("poll", ms_to_ns(timeout), poll_attempt, &c);
}

TW_EXPORT int __poll_chk(struct pollfd *fds, nfds_t nfds, int timeout, size_t fdslen)
{
    (void)fdslen;
    return poll(fds, nfds, timeout);
}

TW_EXPORT int ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *tmo, const sigset_t *sigmask)
{
    if (tmo != NULL && bad_timespec(tmo)) {
        errno = EINVAL;
        return -1;
    }
    struct poll_ctx c = {fds, nfds, sigmask};
    return fd_wait("ppoll", tmo == NULL ? -1 : ts_ns(tmo), poll_attempt, &c);
}

TW_EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t nfds, const struct timespec *tmo, const sigset_t *sigmask,
                          size_t fdslen)
{
    (void)fdslen;
    return ppoll(fds, nfds, tmo, sigmask);
}

struct select_ctx {
    int nfds;
    fd_set *sets[3];
    fd_set saved[3];   /* select rewrites its sets: each attempt starts from the caller's */
    const sigset_t *sigmask;
};

static int select_attempt(void *ctx, int64_t timeout_ns)
{
    struct select_ctx *c = ctx;
    for (int i = 0; i < 3; i++)
        if (c->sets[i] != NULL)
            *c->sets[i] = c->saved[i];
    struct timespec ts;
    return real.pselect(c->nfds, c->sets[0], c->sets[1], c->sets[2], host_timeout(timeout_ns, &ts), c->sigmask);
}

static int select_common(const char *label, int nfds, fd_set *r, fd_set *w, fd_set *e, int64_t timeout_ns,
                         const sigset_t *sigmask)
{
    struct select_ctx c = {.nfds = nfds, .sets = {r, w, e}, .sigmask = sigmask};
    for (int i = 0; i < 3; i++)
        if (c.sets[i] != NULL)
            c.saved[i] = *c.sets[i];
    return fd_wait(label, timeout_ns, select_attempt, &c);
}

TW_EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
    if (tv != NULL && (tv->tv_usec < 0 || tv->tv_usec >= 1000000 || tv->tv_sec < 0)) {
        errno = EINVAL;
        return -1;
    }
    int64_t timeout = tv == NULL ? -1 : (int64_t)tv->tv_sec * 1000000000LL + (int64_t)tv->tv_usec * 1000;
    int64_t target = tw_now_ns() + timeout;
    int n = select_common("select", nfds, r, w, e, timeout, NULL);
    if (tv != NULL) {   /* Linux reports the time left */
        int64_t left = target - tw_now_ns();
        left = left < 0 ? 0 : left;
        tv->tv_sec = left / 1000000000LL;
        tv->tv_usec = (left % 1000000000LL) / 1000;
    }
    return n;
}

TW_EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *e, const struct timespec *tmo,
                      const sigset_t *sigmask)
{
    if (tmo != NULL && bad_timespec(tmo)) {
        errno = EINVAL;
        return -1;
    }
    return select_common("pselect", nfds, r, w, e, tmo == NULL ? -1 : ts_ns(tmo), sigmask);
}

struct epoll_ctx {
    int epfd;
    struct epoll_event *events;
    int maxevents;
    const sigset_t *sigmask;
};

static int epoll_attempt(void *ctx, int64_t timeout_ns)
{
    struct epoll_ctx *c = ctx;
    if (real.epoll_pwait2 != NULL) {
        struct timespec ts;
        int r = real.epoll_pwait2(c->epfd, c->events, c->maxevents, host_timeout(timeout_ns, &ts), c->sigmask);
        if (r >= 0 || errno != ENOSYS)
            return r;
    }
    return real.epoll_pwait(c->epfd, c->events, c->maxevents, timeout_ns < 0 ? -1 : ns_to_ms_ceil(timeout_ns),
                            c->sigmask);
}

TW_EXPORT int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
    struct epoll_ctx c = {epfd, events, maxevents, NULL};
    return fd_wait("epoll_wait", ms_to_ns(timeout), epoll_attempt, &c);
}

TW_EXPORT int epoll_pwait(int epfd, struct epoll_event *events, int maxevents, int timeout, const sigset_t *sigmask)
{
    struct epoll_ctx c = {epfd, events, maxevents, sigmask};
    return fd_wait("epoll_pwait", ms_to_ns(timeout), epoll_attempt, &c);
}

TW_EXPORT int epoll_pwait2(int epfd, struct epoll_event *events, int maxevents, const struct timespec *tmo,
                           const sigset_t *sigmask)
{
    if (tmo != NULL && bad_timespec(tmo)) {
        errno = EINVAL;
        return -1;
    }
    struct epoll_ctx c = {epfd, events, maxevents, sigmask};
    return fd_wait("epoll_pwait2", tmo == NULL ? -1 : ts_ns(tmo), epoll_attempt, &c);
}

/* ---- condition variables ---- */

/* One slice: a time-out before the target is a spurious wake-up (the caller re-checks its
 * predicate and waits again), so no signal can be lost between slices. glibc restarts condvar
 * futex waits after a signal, so these rely on the slice, not on the wake signal. */
static int cond_wait_common(pthread_cond_t *cond, pthread_mutex_t *mutex, int64_t target, const char *label)
{
    ensure_real();
    if (tw_actor_block(label, target, 0) == NULL) {
        struct timespec host = host_after(target < 0 ? TW_SLICE_FOREVER_NS : target - tw_now_ns());
        return real.cond_clockwait(cond, mutex, CLOCK_MONOTONIC, &host);
    }
    int64_t slice = next_slice(target, target < 0 ? TW_SLICE_FOREVER_NS : TW_SLICE_COND_NS);
    int r = ETIMEDOUT;
    if (slice > 0) {
        struct timespec host = host_after(slice);
        r = real.cond_clockwait(cond, mutex, CLOCK_MONOTONIC, &host);
    }
    tw_actor_run();
    if (r != ETIMEDOUT)
        return r;
    if (target >= 0 && tw_now_ns() >= target)
        return ETIMEDOUT;
    if (target < 0)
        tw_actors_check_deadlock();
    return 0;
}

/* The clock a condvar's deadlines are on: glibc keeps it in bit 1 of __wrefs. */
static clockid_t cond_clock(const pthread_cond_t *cond)
{
    return (cond->__data.__wrefs & 2) ? CLOCK_MONOTONIC : CLOCK_REALTIME;
}

TW_EXPORT int pthread_cond_wait(pthread_cond_t *cond, pthread_mutex_t *mutex)
{
    return cond_wait_common(cond, mutex, -1, "cond_wait");
}

TW_EXPORT int pthread_cond_timedwait(pthread_cond_t *cond, pthread_mutex_t *mutex, const struct timespec *abstime)
{
    if (bad_timespec(abstime))
        return EINVAL;
    return cond_wait_common(cond, mutex, ts_ns(abstime) - tw_clock_minus_mono_ns(cond_clock(cond)),
                            "cond_timedwait");
}

TW_EXPORT int pthread_cond_clockwait(pthread_cond_t *cond, pthread_mutex_t *mutex, clockid_t id,
                                     const struct timespec *abstime)
{
    ensure_real();
    if (!tw_clock_tracks_real_time(id))
        return real.cond_clockwait(cond, mutex, id, abstime);
    if (bad_timespec(abstime))
        return EINVAL;
    return cond_wait_common(cond, mutex, ts_ns(abstime) - tw_clock_minus_mono_ns(id), "cond_clockwait");
}

/* After a real wait slice that did not succeed: go on waiting (a jump's wake signal, or the
 * slice ended) or stop (a real error for the caller). */
static bool slice_continues(int64_t target)
{
    if (errno == EINTR && tw_woken_by_jump) {
        tw_woken_by_jump = 0;
        return true;
    }
    if (errno != ETIMEDOUT)
        return false;
    if (target < 0)
        tw_actors_check_deadlock();
    return true;
}


/* ---- semaphores ---- */

static int sem_wait_common(sem_t *sem, int64_t target, const char *label)
{
    ensure_real();
    if (real.sem_trywait(sem) == 0)
        return 0;
    if (errno != EAGAIN)
        return -1;
    if (tw_actor_block(label, target, TW_ACTOR_F_SIGNAL) == NULL) {
        struct timespec host = host_after(target < 0 ? INT64_MAX / 4 : target - tw_now_ns());
        return real.sem_clockwait(sem, CLOCK_MONOTONIC, &host);
    }
    int r;
    for (bool first = true;; first = false) {
        if (!first && (r = real.sem_trywait(sem)) == 0)
            break;   /* posted between slices: seen before any jump */
        int64_t slice = next_slice(target, target < 0 ? TW_SLICE_FOREVER_NS : TW_SLICE_TIMED_NS);
        if (slice <= 0) {
            errno = ETIMEDOUT;
            r = -1;
            break;
        }
        struct timespec host = host_after(slice);
        r = real.sem_clockwait(sem, CLOCK_MONOTONIC, &host);
        if (r == 0)
            break;
        if (!slice_continues(target))
            break;
    }
    run_keep_errno();
    return r;
}

TW_EXPORT int sem_wait(sem_t *sem)
{
    return sem_wait_common(sem, -1, "sem_wait");
}

TW_EXPORT int sem_timedwait(sem_t *sem, const struct timespec *abstime)
{
    if (bad_timespec(abstime)) {
        errno = EINVAL;
        return -1;
    }
    return sem_wait_common(sem, ts_ns(abstime) - tw_clock_minus_mono_ns(CLOCK_REALTIME), "sem_timedwait");
}

TW_EXPORT int sem_clockwait(sem_t *sem, clockid_t id, const struct timespec *abstime)
{
    ensure_real();
    if (!tw_clock_tracks_real_time(id))
        return real.sem_clockwait(sem, id, abstime);
    if (bad_timespec(abstime)) {
        errno = EINVAL;
        return -1;
    }
    return sem_wait_common(sem, ts_ns(abstime) - tw_clock_minus_mono_ns(id), "sem_clockwait");
}

/* ---- timed locks: translation only (a lock holder is running, so no jump can pass) ---- */

TW_EXPORT int pthread_mutex_timedlock(pthread_mutex_t *mutex, const struct timespec *abstime)
{
    ensure_real();
    if (bad_timespec(abstime))
        return EINVAL;
    struct timespec host = host_after(ts_ns(abstime) - tw_clock_minus_mono_ns(CLOCK_REALTIME) - tw_now_ns());
    return real.mutex_clocklock(mutex, CLOCK_MONOTONIC, &host);
}

/* ---- children ---- */

/* A child that has already ended is reaped without blocking: blocking first would let this
 * thread jump the clock to another's target although its own wait ends at once. */
TW_EXPORT pid_t wait4(pid_t pid, int *status, int options, struct rusage *usage)
{
    ensure_real();
    pid_t ready = real.wait4(pid, status, options | WNOHANG, usage);
    if ((options & WNOHANG) || ready != 0)
        return ready;
    tw_actor_block("waitpid", -1, 0);
    tw_actors_try_jump();
    pid_t r = real.wait4(pid, status, options, usage);
    run_keep_errno();
    return r;
}

TW_EXPORT pid_t waitpid(pid_t pid, int *status, int options)
{
    return wait4(pid, status, options, NULL);
}

TW_EXPORT pid_t wait(int *status)
{
    return wait4(-1, status, 0, NULL);
}

TW_EXPORT int waitid(idtype_t idtype, id_t id, siginfo_t *info, int options)
{
    ensure_real();
    if (info != NULL)
        info->si_pid = 0;   /* how WNOHANG says that no child was ready */
    int ready = real.waitid(idtype, id, info, options | WNOHANG);
    if ((options & WNOHANG) || ready != 0 || info == NULL || info->si_pid != 0)
        return ready;
    tw_actor_block("waitid", -1, 0);
    tw_actors_try_jump();
    int r = real.waitid(idtype, id, info, options);
    run_keep_errno();
    return r;
}

/* ---- raw futex waits through syscall() (absl, libstdc++ futures, Rust std) ---- */

static long futex_wait(uint32_t *word, int op, uint32_t val, const struct timespec *tmo, uint32_t bitset)
{
    int cmd = op & FUTEX_CMD_MASK;
    int private_flag = op & FUTEX_PRIVATE_FLAG;
    int64_t target = -1;
    if (tmo != NULL) {
        if (bad_timespec(tmo)) {
            errno = EINVAL;
            return -1;
        }
        target = cmd == FUTEX_WAIT ? tw_now_ns() + ts_ns(tmo)
                                   : ts_ns(tmo) - tw_clock_minus_mono_ns((op & FUTEX_CLOCK_REALTIME) ? CLOCK_REALTIME
                                                                                                   : CLOCK_MONOTONIC);
    }
    if (tw_actor_block("futex", target, TW_ACTOR_F_SIGNAL) == NULL)
        return real.syscall(SYS_futex, word, op, val, tmo, NULL, bitset);
    long r;
    for (;;) {
        if (__atomic_load_n(word, __ATOMIC_ACQUIRE) != val) {
            errno = EAGAIN;   /* changed between slices: the caller re-checks, before any jump */
            r = -1;
            break;
        }
        int64_t slice = next_slice(target, target < 0 ? TW_SLICE_FOREVER_NS : TW_SLICE_TIMED_NS);
        if (slice <= 0) {
            errno = ETIMEDOUT;
            r = -1;
            break;
        }
        struct timespec host = host_after(slice);   /* absolute on the host's monotonic clock */
        r = real.syscall(SYS_futex, word, FUTEX_WAIT_BITSET | private_flag, val, &host, NULL,
                         cmd == FUTEX_WAIT ? FUTEX_BITSET_MATCH_ANY : bitset);
        if (r == 0)
            break;
        if (!slice_continues(target))
            break;
    }
    run_keep_errno();
    return r;
}

TW_EXPORT long syscall(long number, ...)
{
    ensure_real();
    va_list ap;
    va_start(ap, number);
    long a[6];
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    if (number == SYS_futex) {
        int cmd = (int)a[1] & FUTEX_CMD_MASK;
        if (cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET)
            return futex_wait((uint32_t *)a[0], (int)a[1], (uint32_t)a[2], (const struct timespec *)a[3],
                              (uint32_t)a[5]);
    }
    return real.syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
