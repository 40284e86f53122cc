/* Virtual time (DESIGN §3): every clock that tracks real time reads the run's shared clock page,
 * a piecewise-linear function of host time (records.h tw_clock_page, clock_page.h):
 *   virtual = base_virtual + (host - base_host) * rate
 * The rate is the governor's dilation of CPU work (shim/tools/governor.c: what a running thread's
 * host time is worth on the emulated host), 0 while the emulator pauses the clock for its own
 * work. Jumps start a new segment further on, only under the causal rule of actors.c: when every
 * thread of the run is blocked, to the earliest target among them. The interposed waits are in
 * waits.c; this file reads time, detects busy polling and carries out jumps and pauses. */
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
#include "clock_page.h"
#include "tw_core.h"
#include "tw_timespec.h"

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static clock_gettime_fn real_clock_gettime;

static tw_clock_page local_page;   /* used when the run has no shared page */
static tw_clock_page *page = &local_page;
static int64_t boottime_minus_mono_ns;
static int64_t tai_minus_realtime_ns;
static int clock_ready;
static int32_t my_pid;

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

static int64_t host_mono_ns(void)
{
    return host_clock_ns(CLOCK_MONOTONIC);
}

/* Maps the run's clock page (created by emulate); a process started outside a run keeps a
 * private page (virtual = host time, and the causal rule applies among its own threads). */
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
        if (shared != MAP_FAILED && ((tw_clock_page *)shared)->magic == TW_CLOCK_MAGIC &&
            ((tw_clock_page *)shared)->abi_version == TW_ABI_VERSION)
            page = shared;
        else if (shared != MAP_FAILED)
            TW_ERROR("%s is not a clock page of this version: this process keeps its own clock", path);
    }
    close(fd);
}

static void clock_init(void)
{
    if (__atomic_load_n(&clock_ready, __ATOMIC_ACQUIRE))
        return;
    resolve_real();
    my_pid = getpid();
    int64_t mono = host_clock_ns(CLOCK_MONOTONIC);
    boottime_minus_mono_ns = host_clock_ns(CLOCK_BOOTTIME) - mono;
    tai_minus_realtime_ns = host_clock_ns(CLOCK_TAI) - host_clock_ns(CLOCK_REALTIME);
    local_page.magic = TW_CLOCK_MAGIC;
    local_page.abi_version = TW_ABI_VERSION;
    local_page.rate_ppm = local_page.cpu_rate_ppm = local_page.cpu_speed_ppm = TW_RATE_ONE_PPM;
    local_page.base_host_ns = local_page.base_virtual_ns = mono;
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

int64_t tw_host_mono_ns(void)
{
    ensure_clock();
    return host_clock_ns(CLOCK_MONOTONIC);
}

static inline int64_t virtual_mono_ns(void)
{
    return tw_clock_page_now(page, host_mono_ns, NULL);
}

int64_t tw_now_ns(void)
{
    ensure_clock();
    return virtual_mono_ns();
}

/* While the emulator does work a GPU host would not do (a prediction round trip, processes
 * catching up after a rendezvous), every clock of the run stands still: the segment's rate is 0
 * until the last pause ends. Run-wide so that all processes keep one clock (a process that hid
 * its own round trips read messages before they were sent); the price is that another
 * process's CPU work during the pause is not counted. Nested and concurrent pauses count once. */
int64_t tw_clock_pause_begin(void)
{
    ensure_clock();
    tw_clock_page_lock(page, my_pid);
    tw_clock_page_pause(page, host_mono_ns);
    tw_clock_page_unlock(page);
    return 0;
}

void tw_clock_pause_end(int64_t begin_host_ns)
{
    (void)begin_host_ns;
    ensure_clock();
    tw_clock_page_lock(page, my_pid);
    tw_clock_page_resume(page, host_mono_ns);
    tw_clock_page_unlock(page);
    if (tw_clock_page_take_sleepers(page))
        tw_actors_wake_sleepers();
}

/* While the clock stands still for the emulator's work no jump may happen: a thread waiting
 * for a prediction sleeps in the kernel as if it waited for another process, and a jump then
 * would skip the time its GPU work is about to take. */
bool tw_clock_paused(void)
{
    ensure_clock();
    return __atomic_load_n(&page->pause_depth, __ATOMIC_ACQUIRE) > 0;
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
    int64_t host;
    int64_t now = tw_clock_page_now(page, host_mono_ns, &host);
    spin_count(host, 1);
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

/* Host time that `virtual_span` takes at the current rate: how long a wait sleeps for a span of
 * virtual time while others keep the clock from jumping. Unbounded while the clock stands still;
 * the end of the pause then wakes the waiter (tw_clock_pause_end, the governor). */
int64_t tw_clock_host_span_ns(int64_t virtual_span_ns)
{
    ensure_clock();
    if (virtual_span_ns <= 0)
        return 0;
    uint32_t rate = tw_clock_page_rate_for_sleep(page);
    if (rate == 0)
        return INT64_MAX;
    return (int64_t)((__int128)virtual_span_ns * TW_RATE_ONE_PPM / rate);
}

void tw_clock_record_wait(int64_t begin_ns, int64_t end_ns, int reason, uint32_t what_name_id, uint64_t issued_seq)
{
    tw_record *rec = tw_trace_claim();
    if (rec == NULL)
        return;
    rec->tid = tw_thread_id();
    rec->seq = issued_seq;
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

bool tw_clock_advance_to(int64_t target_ns)
{
    ensure_clock();
    /* Concurrent jumpers keep the latest target: the clock only grows. */
    tw_clock_page_lock(page, my_pid);
    int64_t now;
    bool jumped = tw_clock_page_jump(page, host_mono_ns, target_ns, &now);
    tw_clock_page_unlock(page);
    if (jumped)
        record_jump(now, target_ns);
    return jumped;
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
    uint64_t issued = tw_issued_seq();
    if (target_ns > begin)
        tw_wait_virtual(target_ns, wait_label(reason), false);
    if (what_name_id != 0 || target_ns > begin)
        tw_clock_record_wait(begin, tw_now_ns(), reason, what_name_id, issued);
}

__attribute__((constructor(101))) static void clock_constructor(void)
{
    clock_init();
}
