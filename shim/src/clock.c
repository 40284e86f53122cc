/* Virtual time (DESIGN §3): every clock that tracks real time reads
 *   virtual = host + offset_ns - hidden_ns
 * with offset_ns and hidden_ns in the run's shared clock page (hidden_ns: prediction round trips
 * kept out of the clock, see tw_clock_pause_begin). The offset only grows, and only under the causal rule of actors.c: when every thread
 * of the run is blocked, to the earliest target among them. The interposed waits are in
 * waits.c; this file reads time, detects busy polling and carries out jumps. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "actors.h"
#include "tw_core.h"
#include "tw_timespec.h"

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static clock_gettime_fn real_clock_gettime;

static tw_clock_page local_page;   /* used when the run has no shared page */
static tw_clock_page *page = &local_page;
static int64_t boottime_minus_mono_ns;
static int64_t tai_minus_realtime_ns;
static int clock_ready;

static void resolve_real(void)
{
    real_clock_gettime = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
}

static inline int64_t host_clock_ns(clockid_t id)
{
    struct timespec ts;
    real_clock_gettime(id, &ts);
    return ts_ns(&ts);
}

/* Maps the run's clock page (created by emulate); a process started outside a run keeps a
 * private page, and the causal rule applies among its own threads. */
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
    return __atomic_load_n(&page->offset_ns, __ATOMIC_ACQUIRE) - __atomic_load_n(&page->hidden_ns, __ATOMIC_ACQUIRE);
}

int64_t tw_host_mono_ns(void)
{
    ensure_clock();
    return host_clock_ns(CLOCK_MONOTONIC);
}

/* The run's virtual time at host time `host`: frozen while any process of the run waits on a
 * prediction round trip. pause_seq is a sequence word: odd while a pause begins or ends, and
 * changed by each, so a reader that raced one reads again. */
static inline int64_t virtual_at(int64_t host)
{
    for (;;) {
        uint32_t seq = __atomic_load_n(&page->pause_seq, __ATOMIC_ACQUIRE);
        int64_t now = TW_UNLIKELY(__atomic_load_n(&page->pause_depth, __ATOMIC_ACQUIRE) > 0)
                          ? __atomic_load_n(&page->paused_at_ns, __ATOMIC_ACQUIRE) : host + offset_ns();
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (TW_LIKELY(!(seq & 1) && __atomic_load_n(&page->pause_seq, __ATOMIC_RELAXED) == seq))
            return now;
        host = host_clock_ns(CLOCK_MONOTONIC);
    }
}

static inline int64_t virtual_mono_ns(void)
{
    return virtual_at(host_clock_ns(CLOCK_MONOTONIC));
}

int64_t tw_now_ns(void)
{
    ensure_clock();
    return virtual_mono_ns();
}

/* While a process waits on the emulator (a prediction round trip) every clock of the run stands
 * still, and afterwards the real time spent is hidden from all of them (hidden_ns grows by it):
 * a GPU host would not have spent it. The pause is run-wide so that all processes keep one
 * clock: hiding it from the predicting process alone made its clock lag the others' (a message
 * would read as received before it was sent). The price: another process's CPU work during
 * the pause is not counted — usually none runs, as the others wait for the predicting one.
 * Nested and concurrent pauses count once (the run's pause spans them all). */
static void pause_lock(void)
{
    uint32_t expected = 0;
    while (!__atomic_compare_exchange_n(&page->pause_lock, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        expected = 0;
}

static void pause_unlock(void)
{
    __atomic_store_n(&page->pause_lock, 0, __ATOMIC_RELEASE);
}

int64_t tw_clock_pause_begin(void)
{
    ensure_clock();
    pause_lock();
    int64_t host = host_clock_ns(CLOCK_MONOTONIC);
    if (page->pause_depth == 0) {
        __atomic_fetch_add(&page->pause_seq, 1, __ATOMIC_ACQ_REL);
        __atomic_store_n(&page->paused_at_ns, host + offset_ns(), __ATOMIC_RELEASE);
        __atomic_store_n(&page->pause_begin_host_ns, host, __ATOMIC_RELEASE);
        __atomic_store_n(&page->pause_depth, 1, __ATOMIC_RELEASE);
        __atomic_fetch_add(&page->pause_seq, 1, __ATOMIC_ACQ_REL);
    } else {
        __atomic_fetch_add(&page->pause_depth, 1, __ATOMIC_ACQ_REL);
    }
    pause_unlock();
    return host;
}

void tw_clock_pause_end(int64_t begin_host_ns)
{
    (void)begin_host_ns;
    pause_lock();
    if (page->pause_depth == 1) {
        __atomic_fetch_add(&page->pause_seq, 1, __ATOMIC_ACQ_REL);
        int64_t spent = host_clock_ns(CLOCK_MONOTONIC) - page->pause_begin_host_ns;
        __atomic_fetch_add(&page->hidden_ns, spent > 0 ? spent : 0, __ATOMIC_ACQ_REL);
        __atomic_store_n(&page->pause_depth, 0, __ATOMIC_RELEASE);
        __atomic_fetch_add(&page->pause_seq, 1, __ATOMIC_ACQ_REL);
    } else if (page->pause_depth > 1) {
        __atomic_fetch_sub(&page->pause_depth, 1, __ATOMIC_ACQ_REL);
    }
    pause_unlock();
}

int64_t tw_realtime_ns(void)
{
    return tw_now_ns() + page->realtime_minus_mono_ns;
}

/* Virtual time of `clock` expressed on the monotonic axis (for absolute deadlines). */
bool tw_clock_tracks_real_time(clockid_t id)
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

int64_t tw_clock_minus_mono_ns(clockid_t id)
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

/* Busy-poll detection: a thread that reads the clock (weight 1) or yields or polls with a zero
 * timeout (weight SPIN_HINT_WEIGHT) SPIN_WINDOW_WEIGHT times within SPIN_WINDOW_NS of real time
 * — a read every 5 µs or faster, or a yield every 80 µs — does nothing but wait for time or
 * for another thread (vLLM's shared-memory ring, barrier loops): it counts as blocked with no
 * target until a window passes slower, or it enters a wait. Interpreter start-up, a lock per
 * Python bytecode burst or a timing loop around real work read the clock far less often. */
#define SPIN_WINDOW_WEIGHT 1024u
#define SPIN_WINDOW_NS (5 * 1000000LL)

static __thread uint32_t tl_spin_weight;
static __thread int64_t tl_spin_window_host;
static __thread bool tl_spinning;

static void spin_window_end(int64_t host)
{
    bool spinning = host - tl_spin_window_host < SPIN_WINDOW_NS;
    tl_spin_weight = 0;
    tl_spin_window_host = host;
    if (spinning != tl_spinning) {
        tl_spinning = spinning;
        tw_actor_set_spinning(spinning);
    }
}

static inline void spin_count(int64_t host, uint32_t weight)
{
    if (TW_UNLIKELY(tl_spin_window_host == 0)) {
        tl_spin_window_host = host;   /* a thread's first read registers it as an actor */
        tw_actor_self();
    }
    tl_spin_weight += weight;
    if (TW_UNLIKELY(tl_spin_weight >= SPIN_WINDOW_WEIGHT))
        spin_window_end(host);
}

void tw_clock_spin_hint(int weight)
{
    ensure_clock();
    spin_count(host_clock_ns(CLOCK_MONOTONIC), (uint32_t)weight);
}

void tw_clock_spin_reset(void)
{
    tl_spin_weight = 0;
    tl_spinning = false;
    if (tl_spin_window_host != 0)
        tl_spin_window_host = host_clock_ns(CLOCK_MONOTONIC);
}

TW_EXPORT int clock_gettime(clockid_t id, struct timespec *ts)
{
    ensure_clock();
    if (!tw_clock_tracks_real_time(id))
        return real_clock_gettime(id, ts);
    int64_t host = host_clock_ns(CLOCK_MONOTONIC);
    spin_count(host, 1);
    int64_t now = virtual_at(host);
    /* Coarse and raw clocks read the precise one: they must not fall behind the others. */
    *ts = ns_ts(now + tw_clock_minus_mono_ns(id));
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

/* ---- jumps and GPU waits ---- */

int64_t tw_clock_host_ns(void)
{
    ensure_clock();
    return host_clock_ns(CLOCK_MONOTONIC);
}

int64_t tw_clock_run_now_ns(void)
{
    ensure_clock();
    return host_clock_ns(CLOCK_MONOTONIC) + __atomic_load_n(&page->offset_ns, __ATOMIC_ACQUIRE);
}

int64_t tw_clock_hidden_ns(void)
{
    return __atomic_load_n(&page->hidden_ns, __ATOMIC_ACQUIRE);
}

void tw_clock_record_wait(int64_t begin_ns, int64_t end_ns, int reason, uint32_t what_name_id)
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

bool tw_clock_advance_to(int64_t run_target_ns)
{
    ensure_clock();
    /* Concurrent jumpers keep the largest offset: the offset, and so every clock, only grows. */
    int64_t host = host_clock_ns(CLOCK_MONOTONIC);
    int64_t wanted = run_target_ns - host;
    int64_t current = __atomic_load_n(&page->offset_ns, __ATOMIC_ACQUIRE);
    while (current < wanted &&
           !__atomic_compare_exchange_n(&page->offset_ns, &current, wanted, 1, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
    }
    if (current >= wanted)
        return false;
    __atomic_fetch_add(&page->jump_count, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&page->jumped_ns_total, wanted - current, __ATOMIC_RELAXED);
    int64_t hidden = tw_clock_hidden_ns();
    record_jump(host + current - hidden, run_target_ns - hidden);
    return true;
}

static const char *wait_label(int reason)
{
    switch (reason) {
    case TW_WAIT_GPU: return "gpu:sync";
    case TW_WAIT_EVENT: return "gpu:event";
    case TW_WAIT_SLEEP: return "sleep";
    default: return "wait";
    }
}

void tw_wait_until(int64_t target_ns, int reason, uint32_t what_name_id)
{
    ensure_clock();
    int64_t begin = tw_now_ns();
    if (target_ns > begin)
        tw_wait_virtual(target_ns, wait_label(reason), false);
    if (what_name_id != 0 || target_ns > begin)
        tw_clock_record_wait(begin, tw_now_ns(), reason, what_name_id);
}

__attribute__((constructor(101))) static void clock_constructor(void)
{
    clock_init();
}
