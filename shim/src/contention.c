/* Kernels beside collectives: a kernel that runs while an NCCL operation runs on the same GPU (a
 * DDP bucket's all-reduce during backward, FSDP's prefetched all-gather) has the SMs and HBM
 * bandwidth the collective leaves it (docs/collectives.md "Communication beside computation").
 *
 * The timeline (timeline.c) computes ops in issue order. Each computed collective leaves its
 * interval and its shares (the prediction's contention word, predictors/contention.py) here,
 * per device; a kernel computed later whose interval meets one runs the overlapping part at
 * (1 - share) of its speed: the SM share for a math-bound kernel, the HBM share for a
 * memory-bound one. A kernel issued after a collective that still waits for its peers cannot
 * know where that collective will lie, so it waits for it (timeline.c defers it) when it would
 * run past the collective's arrival; a kernel issued before a collective is not slowed by it.
 * That keeps the answer independent of when the peers' arrivals reach this process.
 * Everything here runs under tw_timeline_lock. */
#include "timeline_internal.h"

#include <string.h>

#define BUSY_RING 64
#define MAX_SHARE_PERMILLE 950   /* a collective never takes the whole GPU for long */

typedef struct busy_interval {
    int64_t begin_ns, end_ns;
    uint16_t sm_permille, hbm_permille;
} busy_interval;

static busy_interval busy[TW_TIMELINE_DEVICES][BUSY_RING];
static uint32_t busy_next[TW_TIMELINE_DEVICES];
static int64_t busy_latest_end_ns[TW_TIMELINE_DEVICES];
static uint64_t pending_pass[TW_TIMELINE_DEVICES];       /* flush pass that saw a deferred collective */
static int64_t pending_arrival_ns[TW_TIMELINE_DEVICES];  /* the earliest such arrival in that pass */

static bool device_ok(int device) { return device >= 0 && device < TW_TIMELINE_DEVICES; }

void tw_contention_collective(int device, int64_t begin_ns, int64_t end_ns, uint32_t contention)
{
    uint16_t sm = (uint16_t)(contention & 0xffffu), hbm = (uint16_t)((contention >> 16) & 0x7fffu);
    if (!device_ok(device) || end_ns <= begin_ns || (sm == 0 && hbm == 0))
        return;
    busy[device][busy_next[device]++ % BUSY_RING] = (busy_interval){begin_ns, end_ns, sm, hbm};
    if (end_ns > busy_latest_end_ns[device])
        busy_latest_end_ns[device] = end_ns;
}

void tw_contention_pending(int device, int64_t arrival_ns, uint64_t pass)
{
    if (!device_ok(device))
        return;
    if (pending_pass[device] != pass || arrival_ns < pending_arrival_ns[device])
        pending_arrival_ns[device] = arrival_ns;
    pending_pass[device] = pass;
}

bool tw_contention_must_wait(int device, int64_t end_ns, uint64_t pass)
{
    return device_ok(device) && pending_pass[device] == pass && end_ns > pending_arrival_ns[device];
}

static uint32_t share_at(int device, int64_t t, bool memory_bound, int64_t *segment_end)
{
    uint32_t share = 0;
    int64_t next_change = INT64_MAX;
    for (uint32_t i = 0; i < BUSY_RING; i++) {
        const busy_interval *b = &busy[device][i];
        if (b->end_ns <= t)
            continue;
        if (b->begin_ns > t) {
            if (b->begin_ns < next_change)
                next_change = b->begin_ns;
            continue;
        }
        uint32_t s = memory_bound ? b->hbm_permille : b->sm_permille;
        if (s > share)
            share = s;
        if (b->end_ns < next_change)
            next_change = b->end_ns;
    }
    *segment_end = next_change;
    return share > MAX_SHARE_PERMILLE ? MAX_SHARE_PERMILLE : share;
}

int64_t tw_contention_end(int device, int64_t start_ns, int64_t duration_ns, uint32_t contention)
{
    int64_t plain_end = start_ns + duration_ns;
    if (!device_ok(device) || busy_latest_end_ns[device] <= start_ns || duration_ns <= 0)
        return plain_end;
    bool memory_bound = (contention & TW_CONTENTION_MEMORY_BOUND) != 0;
    /* walk the kernel's work through segments of constant share; each share in force slows it */
    double remaining_ns = (double)duration_ns;
    int64_t t = start_ns;
    for (int step = 0; step < 2 * BUSY_RING + 2; step++) {
        int64_t segment_end;
        uint32_t share = share_at(device, t, memory_bound, &segment_end);
        double rate = (1000.0 - share) / 1000.0;
        if (segment_end == INT64_MAX || remaining_ns <= (double)(segment_end - t) * rate)
            return t + (int64_t)(remaining_ns / rate + 0.5);
        remaining_ns -= (double)(segment_end - t) * rate;
        t = segment_end;
    }
    return t + (int64_t)(remaining_ns + 0.5);
}
