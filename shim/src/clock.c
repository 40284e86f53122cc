/* Virtual time (DESIGN §3): every clock that tracks real time reads
 *   virtual = host + offset_ns
 * with offset_ns in the run's shared clock page. Waits on the GPU and sleeps jump the offset
 * forward instead of waiting (the process-local eager rule of docs/virtual-time.md; the
 * coordinator's conservative rule replaces it for multi-process runs). Absolute deadlines
 * handed to the kernel (condition variables, semaphores, timed locks) are virtual and are
 * translated back to host time so that they expire when they should. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "tw_core.h"

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);
typedef int (*nanosleep_fn)(const struct timespec *, struct timespec *);
typedef int (*clock_nanosleep_fn)(clockid_t, int, const struct timespec *, struct timespec *);
typedef int (*cond_timedwait_fn)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
typedef int (*cond_clockwait_fn)(pthread_cond_t *, pthread_mutex_t *, clockid_t, const struct timespec *);
typedef int (*sem_timedwait_fn)(sem_t *, const struct timespec *);
typedef int (*sem_clockwait_fn)(sem_t *, clockid_t, const struct timespec *);
typedef int (*mutex_timedlock_fn)(pthread_mutex_t *, const struct timespec *);

static struct {
    clock_gettime_fn clock_gettime;
    nanosleep_fn nanosleep;
    clock_nanosleep_fn clock_nanosleep;
    cond_timedwait_fn cond_timedwait;
    cond_clockwait_fn cond_clockwait;
    sem_timedwait_fn sem_timedwait;
    sem_clockwait_fn sem_clockwait;
    mutex_timedlock_fn mutex_timedlock;
} real;

static tw_clock_page local_page;   /* used when the run has no shared page */
static tw_clock_page *page = &local_page;
static int64_t hidden_ns;          /* emulator time this process keeps out of its clock */
static int pause_depth;            /* >0 while the process waits on the emulator itself */
static int64_t paused_at_ns;       /* the virtual time readers see while paused */
static int64_t boottime_minus_mono_ns;
static int64_t tai_minus_realtime_ns;
static int clock_ready;

static inline int64_t ts_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

static inline struct timespec ns_ts(int64_t ns)
{
    if (ns < 0)
        ns = 0;
    return (struct timespec){.tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL};
}

static void resolve_real(void)
{
    real.clock_gettime = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    real.nanosleep = (nanosleep_fn)dlsym(RTLD_NEXT, "nanosleep");
    real.clock_nanosleep = (clock_nanosleep_fn)dlsym(RTLD_NEXT, "clock_nanosleep");
    real.cond_timedwait = (cond_timedwait_fn)dlvsym(RTLD_NEXT, "pthread_cond_timedwait", "GLIBC_2.3.2");
    if (real.cond_timedwait == NULL)
        real.cond_timedwait = (cond_timedwait_fn)dlsym(RTLD_NEXT, "pthread_cond_timedwait");
    real.cond_clockwait = (cond_clockwait_fn)dlsym(RTLD_NEXT, "pthread_cond_clockwait");
    real.sem_timedwait = (sem_timedwait_fn)dlsym(RTLD_NEXT, "sem_timedwait");
    real.sem_clockwait = (sem_clockwait_fn)dlsym(RTLD_NEXT, "sem_clockwait");
    real.mutex_timedlock = (mutex_timedlock_fn)dlsym(RTLD_NEXT, "pthread_mutex_timedlock");
}

static inline int64_t host_clock_ns(clockid_t id)
{
    struct timespec ts;
    real.clock_gettime(id, &ts);
    return ts_ns(&ts);
}

/* Maps the run's clock page (created by emulate); a process started outside a run keeps a
 * private page and still gets jumps. */
static void map_clock_page(void)
{
    const char *run_dir = tw_config_get()->run_dir;
    if (run_dir == NULL)
        return;
    char path[4096];
    snprintf(path, sizeof path, "%s/clock.page", run_dir);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) == 0 && (size_t)st.st_size >= sizeof(tw_clock_page)) {
        void *shared = mmap(NULL, sizeof(tw_clock_page), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (shared != MAP_FAILED && ((tw_clock_page *)shared)->magic == TW_CLOCK_MAGIC)
            page = shared;
    }
    close(fd);
}

static void clock_init(void)
{
    if (__atomic_load_n(&clock_ready, __ATOMIC_ACQUIRE))
        return;
    resolve_real();
    int64_t mono = host_clock_ns(CLOCK_MONOTONIC);
    boottime_minus_mono_ns = host_clock_ns(CLOCK_BOOTTIME) - mono;
    tai_minus_realtime_ns = host_clock_ns(CLOCK_TAI) - host_clock_ns(CLOCK_REALTIME);
    local_page.magic = TW_CLOCK_MAGIC;
    local_page.abi_version = TW_ABI_VERSION;
    local_page.cpu_scale_ppm = 1000000;
    local_page.realtime_minus_mono_ns = host_clock_ns(CLOCK_REALTIME) - mono;
    local_page.run_start_mono_ns = mono;
    map_clock_page();
    __atomic_store_n(&clock_ready, 1, __ATOMIC_RELEASE);
}

static inline void ensure_clock(void)
{
    if (TW_UNLIKELY(!__atomic_load_n(&clock_ready, __ATOMIC_ACQUIRE)))
        clock_init();
}

/* The offset this process applies: the run's shared offset less the time it spent waiting on
 * the emulator (prediction round trips), which the real program would not have spent. */
static inline int64_t offset_ns(void)
{
    return __atomic_load_n(&page->offset_ns, __ATOMIC_ACQUIRE) - __atomic_load_n(&hidden_ns, __ATOMIC_ACQUIRE);
}

int64_t tw_host_mono_ns(void)
{
    ensure_clock();
    return host_clock_ns(CLOCK_MONOTONIC);
}

static inline int64_t virtual_mono_ns(void)
{
    if (TW_UNLIKELY(__atomic_load_n(&pause_depth, __ATOMIC_ACQUIRE) > 0))
        return __atomic_load_n(&paused_at_ns, __ATOMIC_ACQUIRE);
    return host_clock_ns(CLOCK_MONOTONIC) + offset_ns();
}

int64_t tw_now_ns(void)
{
    ensure_clock();
    return virtual_mono_ns();
}

/* While the process waits on the emulator (a prediction round trip), its clock stands still;
 * afterwards the real time spent is hidden from it. Callers serialise (the timeline lock). */
int64_t tw_clock_pause_begin(void)
{
    ensure_clock();
    int64_t host = host_clock_ns(CLOCK_MONOTONIC);
    if (__atomic_load_n(&pause_depth, __ATOMIC_ACQUIRE) == 0)
        __atomic_store_n(&paused_at_ns, host + offset_ns(), __ATOMIC_RELEASE);
    __atomic_fetch_add(&pause_depth, 1, __ATOMIC_ACQ_REL);
    return host;
}

void tw_clock_pause_end(int64_t begin_host_ns)
{
    int64_t spent = host_clock_ns(CLOCK_MONOTONIC) - begin_host_ns;
    if (spent > 0)
        __atomic_fetch_add(&hidden_ns, spent, __ATOMIC_ACQ_REL);
    __atomic_fetch_sub(&pause_depth, 1, __ATOMIC_ACQ_REL);
}

int64_t tw_realtime_ns(void)
{
    return tw_now_ns() + page->realtime_minus_mono_ns;
}

/* Virtual time of `clock` expressed on the monotonic axis (for absolute deadlines). */
static bool tracks_real_time(clockid_t id)
{
    switch (id) {
    case CLOCK_REALTIME: case CLOCK_MONOTONIC: case CLOCK_MONOTONIC_RAW: case CLOCK_REALTIME_COARSE:
    case CLOCK_MONOTONIC_COARSE: case CLOCK_BOOTTIME: case CLOCK_REALTIME_ALARM:
    case CLOCK_BOOTTIME_ALARM: case CLOCK_TAI:
        return true;
    default:
        return false;   /* CPU-time clocks measure real work: left alone */
    }
}

static int64_t clock_minus_mono_ns(clockid_t id)
{
    switch (id) {
    case CLOCK_REALTIME: case CLOCK_REALTIME_COARSE: case CLOCK_REALTIME_ALARM:
        return page->realtime_minus_mono_ns;
    case CLOCK_TAI:
        return page->realtime_minus_mono_ns + tai_minus_realtime_ns;
    case CLOCK_BOOTTIME: case CLOCK_BOOTTIME_ALARM:
        return boottime_minus_mono_ns;
    default:
        return 0;
    }
}

TW_EXPORT int clock_gettime(clockid_t id, struct timespec *ts)
{
    ensure_clock();
    if (!tracks_real_time(id))
        return real.clock_gettime(id, ts);
    /* Coarse and raw clocks read the precise one: they must not fall behind the others. */
    *ts = ns_ts(virtual_mono_ns() + clock_minus_mono_ns(id));
    return 0;
}

TW_EXPORT int __clock_gettime(clockid_t id, struct timespec *ts)
{
    return clock_gettime(id, ts);
}

TW_EXPORT int gettimeofday(struct timeval *tv, void *tz)
{
    if (tz != NULL)
        memset(tz, 0, 2 * sizeof(int)); /* struct timezone: minutes west, dst: UTC */
    int64_t now = tw_realtime_ns();
    tv->tv_sec = now / 1000000000LL;
    tv->tv_usec = (now % 1000000000LL) / 1000;
    return 0;
}

TW_EXPORT time_t time(time_t *out)
{
    time_t now = (time_t)(tw_realtime_ns() / 1000000000LL);
    if (out != NULL)
        *out = now;
    return now;
}

TW_EXPORT int timespec_get(struct timespec *ts, int base)
{
    if (base != TIME_UTC)
        return 0;
    *ts = ns_ts(tw_realtime_ns());
    return base;
}

/* ---- waits ---- */

static void record_wait(int64_t begin_ns, int64_t end_ns, int reason, uint32_t what_name_id)
{
    tw_record *rec = tw_trace_claim();
    if (rec == NULL)
        return;
    rec->tid = tw_thread_id();
    rec->name_id = what_name_id;
    rec->begin_ns = begin_ns;
    rec->end_ns = end_ns;
    rec->value = reason;
    tw_trace_commit(rec, TW_REC_WAIT);
}

static void record_jump(int64_t from_ns, int64_t to_ns)
{
    tw_record *rec = tw_trace_claim();
    if (rec == NULL)
        return;
    rec->tid = tw_thread_id();
    rec->begin_ns = from_ns;
    rec->end_ns = to_ns;
    tw_trace_commit(rec, TW_REC_JUMP);
}

void tw_wait_until(int64_t target_ns, int reason, uint32_t what_name_id)
{
    ensure_clock();
    int64_t begin = tw_now_ns();
    if (target_ns <= begin) {
        if (what_name_id != 0)
            record_wait(begin, begin, reason, what_name_id);
        return;
    }
    /* Raise the shared offset so that now >= target; concurrent jumps keep the largest. */
    int64_t host = host_clock_ns(CLOCK_MONOTONIC);
    int64_t hidden = __atomic_load_n(&hidden_ns, __ATOMIC_ACQUIRE);
    int64_t wanted = target_ns - host + hidden;
    int64_t current = __atomic_load_n(&page->offset_ns, __ATOMIC_ACQUIRE);
    while (current < wanted &&
           !__atomic_compare_exchange_n(&page->offset_ns, &current, wanted, 1, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
    }
    if (current < wanted) {
        __atomic_fetch_add(&page->jump_count, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&page->jumped_ns_total, wanted - current, __ATOMIC_RELAXED);
        record_jump(host + current - hidden, target_ns);
    }
    record_wait(begin, tw_now_ns(), reason, what_name_id);
}

static uint32_t sleep_name_id(void)
{
    static uint32_t id;
    if (id == 0)
        id = tw_name_intern("sleep");
    return id;
}

static int sleep_relative(int64_t duration_ns)
{
    if (duration_ns > 0)
        tw_wait_until(tw_now_ns() + duration_ns, TW_WAIT_SLEEP, sleep_name_id());
    return 0;
}

TW_EXPORT int nanosleep(const struct timespec *req, struct timespec *rem)
{
    ensure_clock();
    if (req == NULL || req->tv_nsec < 0 || req->tv_nsec >= 1000000000L) {
        errno = EINVAL;
        return -1;
    }
    if (rem != NULL)
        *rem = (struct timespec){0, 0};
    return sleep_relative(ts_ns(req));
}

TW_EXPORT int clock_nanosleep(clockid_t id, int flags, const struct timespec *req, struct timespec *rem)
{
    ensure_clock();
    if (!tracks_real_time(id))
        return real.clock_nanosleep(id, flags, req, rem);
    if (req == NULL || req->tv_nsec < 0 || req->tv_nsec >= 1000000000L)
        return EINVAL;
    if (flags & TIMER_ABSTIME) {
        int64_t target_mono = ts_ns(req) - clock_minus_mono_ns(id);
        if (target_mono > tw_now_ns())
            tw_wait_until(target_mono, TW_WAIT_SLEEP, sleep_name_id());
        return 0;
    }
    if (rem != NULL)
        *rem = (struct timespec){0, 0};
    sleep_relative(ts_ns(req));
    return 0;
}

TW_EXPORT int usleep(useconds_t usec)
{
    return sleep_relative((int64_t)usec * 1000);
}

TW_EXPORT unsigned int sleep(unsigned int seconds)
{
    sleep_relative((int64_t)seconds * 1000000000LL);
    return 0;
}

/* ---- absolute deadlines handed to the kernel: virtual -> host ---- */

static struct timespec host_deadline(const struct timespec *virtual_deadline)
{
    return ns_ts(ts_ns(virtual_deadline) - offset_ns());
}

TW_EXPORT int pthread_cond_timedwait(pthread_cond_t *cond, pthread_mutex_t *mutex, const struct timespec *abstime)
{
    ensure_clock();
    struct timespec host = host_deadline(abstime);
    return real.cond_timedwait(cond, mutex, &host);
}

TW_EXPORT int pthread_cond_clockwait(pthread_cond_t *cond, pthread_mutex_t *mutex, clockid_t id,
                                     const struct timespec *abstime)
{
    ensure_clock();
    if (real.cond_clockwait == NULL)
        return ENOSYS;
    if (!tracks_real_time(id))
        return real.cond_clockwait(cond, mutex, id, abstime);
    struct timespec host = host_deadline(abstime);
    return real.cond_clockwait(cond, mutex, id, &host);
}

TW_EXPORT int sem_timedwait(sem_t *sem, const struct timespec *abstime)
{
    ensure_clock();
    struct timespec host = host_deadline(abstime);
    return real.sem_timedwait(sem, &host);
}

TW_EXPORT int sem_clockwait(sem_t *sem, clockid_t id, const struct timespec *abstime)
{
    ensure_clock();
    if (real.sem_clockwait == NULL) {
        errno = ENOSYS;
        return -1;
    }
    if (!tracks_real_time(id))
        return real.sem_clockwait(sem, id, abstime);
    struct timespec host = host_deadline(abstime);
    return real.sem_clockwait(sem, id, &host);
}

TW_EXPORT int pthread_mutex_timedlock(pthread_mutex_t *mutex, const struct timespec *abstime)
{
    ensure_clock();
    struct timespec host = host_deadline(abstime);
    return real.mutex_timedlock(mutex, &host);
}

__attribute__((constructor(101))) static void clock_constructor(void)
{
    clock_init();
}
