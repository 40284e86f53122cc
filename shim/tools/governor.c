/* The governor of a run's clock (started by emulate, outside the shim; one per run).
 *
 * Virtual time advances while threads run: the rate of the clock's current segment is what a
 * second of this host's time is worth on the emulated host. The emulated host runs every
 * runnable thread on a core of its own (up to --host-cores), so the part of a thread's runnable
 * time it spends waiting for one of this host's cores is not time there. Every SAMPLE_NS the
 * governor looks at the run's running threads (the actor table): a thread runnable in the
 * kernel ('R' in /proc/<pid>/task/<tid>/stat) counts the interval as runnable time, and its CPU
 * time (schedstat) says how much of it it got. Over the last WINDOW samples:
 *     rate = cpu_speed x CPU time / runnable time / min(1, host_cores / runnable threads)
 * summed over the threads (one clock for all: a thread's weight is its runnable time). An idle
 * host gives rate = cpu_speed; three busy loops beside one thread on two cores give about 0.5:
 * the thread's CPU phases take the same virtual time either way (DieCast's time dilation,
 * measured instead of fixed). The kernel credits CPU time at its ticks (a few ms), so the window
 * spans WINDOW x SAMPLE_NS = 64 ms: a load that changes is followed within about that. (The
 * run-queue delay schedstat also reports would say the same, but it is credited only when a
 * wait ends, in lumps of tens of ms under load.)
 *
 * That measure needs the run's threads to have run for a while. A burst after a quiet spell (a
 * process forked, a request arriving) would run its first tens of ms at the full rate while
 * the host's other work takes the cores: instead, while the window holds too little of the
 * run's runnable time, the rate is what the host's other runnable threads leave a thread that
 * starts now, from the kernel's count of runnable threads (/proc/loadavg) minus the run's and
 * the governor's own, averaged over the same window: rate = cpu_speed x min(1, cores /
 * (others + 1)). On an idle host that is cpu_speed. While no thread of the run is runnable at
 * all, the rate is cpu_speed: time passes as it does for a process outside the run that the
 * program waits on (its real seconds are the run's seconds).
 *
 * It also ends a pause of the clock that has lasted STUCK_PAUSE_NS (a process died inside a
 * prediction round trip or a rendezvous catch-up), and a jump's wake pause (actors.c) that has
 * lasted WAKE_PAUSE_MAX_NS, through the clock page's one write protocol. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <linux/futex.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "clock_page.h"
#include "timewarp/records.h"

#define SAMPLE_NS (4 * 1000000LL)
#define WINDOW 16                      /* samples in the window: 64 ms */
#define STUCK_PAUSE_NS (10 * 1000000000LL)
#define WAKE_PAUSE_MAX_NS (5 * 1000000LL)    /* a thread woken by a jump gets a CPU in less */
#define SIGNAL_HORIZON_NS (50 * 1000000LL)   /* the longest slice of a signalled wait (waits.c) */
#define RATE_CHANGE_PPM 5000           /* a change smaller than 0.5 % is not worth a new segment */
#define MIN_RATE_PPM 10000             /* 0.01: a clock that nearly stops is a measurement gone wrong */
#define SHARE_STEPS 32.0               /* the estimated share moves in steps of 1/32 */

typedef struct thread_probe {
    int32_t pid, tid;
    uint64_t cpu_ns;                   /* schedstat's CPU time at the last sample */
} thread_probe;

typedef struct window_sample {
    double cpu_ns;                     /* CPU time the run's running threads got since the last sample */
    double runnable_ns;                /* time they were runnable ('R') in it */
    double others_runnable;            /* the host's runnable threads outside the run, at the sample */
    int run_runnable;                  /* the run's threads runnable at the sample */
} window_sample;

static double online_cpus = 1.0;

/* Runnable threads on the host now (the kernel's count in /proc/loadavg: "l1 l5 l15 R/T last"). */
static int host_runnable(void)
{
    char buf[128];
    int fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    double l1, l5, l15;
    int running, total;
    return sscanf(buf, "%lf %lf %lf %d/%d", &l1, &l5, &l15, &running, &total) == 5 ? running : -1;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *map_file(const char *dir, const char *name, size_t bytes)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    void *p = MAP_FAILED;
    if (fstat(fd, &st) == 0 && (size_t)st.st_size >= bytes)
        p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

static ssize_t read_proc(int32_t pid, int32_t tid, const char *file, char *buf, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/%s", pid, tid, file);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n > 0)
        buf[n] = '\0';
    return n;
}

/* One interval of SAMPLE_NS: the running (or busy-polling) threads' CPU time and runnable time
 * in it. A thread counts only across two consecutive samples that both saw it running: its CPU
 * and its runnable time then cover the same interval. */
static window_sample sample(const tw_actor_table *actors, thread_probe *probes, double interval_ns)
{
    window_sample w = {0, 0, 0, 0};
    int host = host_runnable();
    uint32_t n = __atomic_load_n(&actors->high_water, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < n && i < TW_ACTOR_SLOTS; i++) {
        const tw_actor *s = &actors->slots[i];
        thread_probe *p = &probes[i];
        int32_t pid = __atomic_load_n(&s->pid, __ATOMIC_ACQUIRE), tid = __atomic_load_n(&s->tid, __ATOMIC_ACQUIRE);
        uint32_t state = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        char buf[512];
        if (pid == 0 || tid == 0 || (state != TW_ACTOR_RUNNING && state != TW_ACTOR_SPINNING) ||
            read_proc(pid, tid, "schedstat", buf, sizeof buf) <= 0) {
            p->pid = 0;
            continue;
        }
        uint64_t cpu = strtoull(buf, NULL, 10);
        bool continued = p->pid == pid && p->tid == tid && cpu >= p->cpu_ns;
        uint64_t before = p->cpu_ns;
        *p = (thread_probe){pid, tid, cpu};
        bool runnable = false;
        if (read_proc(pid, tid, "stat", buf, sizeof buf) > 0) {
            char *paren = strrchr(buf, ')');
            runnable = paren != NULL && paren[1] == ' ' && paren[2] == 'R';
        }
        w.run_runnable += runnable;
        if (!continued)
            continue;
        w.cpu_ns += (double)(cpu - before);
        if (runnable)
            w.runnable_ns += interval_ns;
    }
    if (host > 0) {
        int others = host - w.run_runnable - 1;   /* the governor is runnable while it reads */
        w.others_runnable = others > 0 ? others : 0;
    }
    return w;
}

static uint32_t governed_rate(const tw_clock_page *clock, const window_sample *window, const window_sample *latest,
                              double window_ns)
{
    double cpu = 0, runnable = 0, others = 0;
    for (int i = 0; i < WINDOW; i++) {
        cpu += window[i].cpu_ns;
        runnable += window[i].runnable_ns;
        others += window[i].others_runnable;
    }
    if (runnable < 4.0 * SAMPLE_NS && latest->run_runnable == 0)
        return clock->cpu_speed_ppm;   /* nothing of the run wants a core: time passes as a process outside the run's */
    if (runnable < 4.0 * SAMPLE_NS) {   /* hardly anything of the run ran: what a starting thread gets */
        double wanting = others / WINDOW + 1.0;
        double share = wanting > online_cpus ? online_cpus / wanting : 1.0;
        share = ceil(share * SHARE_STEPS) / SHARE_STEPS;   /* a host load that jitters writes no segments */
        double rate = (double)clock->cpu_speed_ppm * share;
        return (uint32_t)(rate < MIN_RATE_PPM ? MIN_RATE_PPM : rate);
    }
    double share = cpu < runnable ? cpu / runnable : 1.0;
    double runnable_threads = runnable / window_ns;
    double emulated = clock->host_cores > 0 && runnable_threads > clock->host_cores
                          ? clock->host_cores / runnable_threads : 1.0;
    double rate = (double)clock->cpu_speed_ppm * share / emulated;
    if (rate < MIN_RATE_PPM)
        rate = MIN_RATE_PPM;
    if (rate > 100.0 * TW_RATE_ONE_PPM)
        rate = 100.0 * TW_RATE_ONE_PPM;
    return (uint32_t)rate;
}

/* The clock runs faster now (a higher rate, or a pause that waiters slept on ended): a thread waiting in host time for a virtual target sleeps a host
 * span computed at the old rate and would wake late. Sleeps and GPU waits wait on the epoch word
 * (a kick re-evaluates them); fd, semaphore and futex waits whose target falls within a slice get
 * the wake signal, as after a jump (only slots whose process took that signal carry the flag). */
static void wake_waiters(tw_actor_table *actors, const tw_clock_page *clock, int64_t now)
{
    __atomic_fetch_add(&actors->generation, 1, __ATOMIC_ACQ_REL);
    __atomic_fetch_add(&actors->epoch, 1, __ATOMIC_ACQ_REL);
    syscall(SYS_futex, &actors->epoch, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
    (void)now;
    int64_t horizon = tw_clock_page_now(clock, mono_ns, NULL) + SIGNAL_HORIZON_NS;
    uint32_t n = __atomic_load_n(&actors->high_water, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < n && i < TW_ACTOR_SLOTS; i++) {
        const tw_actor *s = &actors->slots[i];
        int32_t pid = __atomic_load_n(&s->pid, __ATOMIC_ACQUIRE);
        if (pid == 0 || __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != TW_ACTOR_BLOCKED ||
            !(__atomic_load_n(&s->flags, __ATOMIC_ACQUIRE) & TW_ACTOR_F_SIGNAL) || s->target_ns > horizon)
            continue;
        syscall(SYS_tgkill, pid, s->tid, SIGRTMAX - 2);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: timewarp-governor RUN_DIR\n");
        return 2;
    }
    prctl(PR_SET_PDEATHSIG, SIGTERM);   /* emulate gone: the run is over */
    const char *run_dir = argv[1];
    tw_clock_page *clock = map_file(run_dir, "clock.page", sizeof(tw_clock_page));
    if (clock == NULL || clock->magic != TW_CLOCK_MAGIC || clock->abi_version != TW_ABI_VERSION) {
        fprintf(stderr, "timewarp-governor: %s/clock.page is missing or of another version\n", run_dir);
        return 1;
    }
    int32_t me = getpid();
    clock->governor_pid = me;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    online_cpus = cpus > 0 ? (double)cpus : 1.0;
    tw_actor_table *actors = NULL;
    static thread_probe probes[TW_ACTOR_SLOTS];
    window_sample window[WINDOW] = {{0, 0, 0, 0}};
    int64_t last_sample = mono_ns();
    uint64_t ticks = 0;
    int64_t last_write = mono_ns();
    for (;;) {
        struct timespec nap = {0, SAMPLE_NS};
        nanosleep(&nap, NULL);
        int64_t now = mono_ns();
        if (actors == NULL)
            actors = map_file(run_dir, "actors.page", sizeof(tw_actor_table));   /* made by the first shim */
        if (__atomic_load_n(&clock->pause_depth, __ATOMIC_ACQUIRE) > 0 &&
            now - __atomic_load_n(&clock->pause_begin_host_ns, __ATOMIC_ACQUIRE) > STUCK_PAUSE_NS) {
            fprintf(stderr, "timewarp: the clock has been paused for the emulator for over %lld s (a process "
                            "died inside a prediction or a rendezvous, or the coordinator hangs): resuming it\n",
                    STUCK_PAUSE_NS / 1000000000LL);
            tw_clock_page_lock(clock, me);
            tw_clock_page_end_pauses(clock, mono_ns);
            tw_clock_page_unlock(clock);
            if (actors != NULL && tw_clock_page_take_sleepers(clock))
                wake_waiters(actors, clock, now);
        }
        if (actors == NULL)
            continue;
        uint32_t one = 1;
        if (__atomic_load_n(&actors->wake_pause, __ATOMIC_ACQUIRE) &&
            now - __atomic_load_n(&clock->pause_begin_host_ns, __ATOMIC_ACQUIRE) > WAKE_PAUSE_MAX_NS &&
            __atomic_compare_exchange_n(&actors->wake_pause, &one, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            tw_clock_page_lock(clock, me);
            tw_clock_page_resume(clock, mono_ns);   /* the woken threads are not coming: time goes on */
            tw_clock_page_unlock(clock);
            if (tw_clock_page_take_sleepers(clock))
                wake_waiters(actors, clock, now);
        }
        window_sample *latest = &window[ticks++ % WINDOW];
        *latest = sample(actors, probes, (double)(now - last_sample));
        last_sample = now;
        uint32_t rate = governed_rate(clock, window, latest, (double)WINDOW * SAMPLE_NS);
        uint32_t current = __atomic_load_n(&clock->cpu_rate_ppm, __ATOMIC_ACQUIRE);
        if (rate == 0 || (rate > current ? rate - current : current - rate) < RATE_CHANGE_PPM)
            continue;
        tw_clock_page_lock(clock, me);
        if (clock->pause_depth == 0)   /* what the rate that ends now took off (or added) since it began */
            clock->dilated_ns_total +=
                (int64_t)((double)(now - last_write) * ((double)clock->cpu_speed_ppm - current) / TW_RATE_ONE_PPM);
        tw_clock_page_set_cpu_rate(clock, mono_ns, rate);
        clock->governor_samples++;
        tw_clock_page_unlock(clock);
        last_write = now;
        if (rate > current)
            wake_waiters(actors, clock, now);
    }
}
