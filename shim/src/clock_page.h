/* The clock page's segment protocol (records.h tw_clock_page), the one implementation shared by
 * the shim (clock.c) and the governor (shim/tools/governor.c).
 *
 * Readers: take seq, read the host clock, read the segment, check seq again (odd or changed:
 * retry). Writers: hold `lock` (the holder's pid; a holder that died is taken over), make seq
 * odd, only then read the host clock (`now`), start a new segment at `now` where the current one
 * is, change it, make seq even. A reader that used the old segment read its host time before
 * the writer made seq odd, so before `now`: it never extrapolated the old rate past the new
 * segment's start, and every observer sees a monotone clock whatever the rates. A reader whose
 * host time predates the segment's start reads the segment's start. */
#ifndef TW_CLOCK_PAGE_H
#define TW_CLOCK_PAGE_H

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "process_alive.h"
#include "timewarp/records.h"

#define TW_CLOCK_LOCK_TAKEOVER_SPINS 100000

/* Virtual time of the segment (bh, bv, rate) at host time `host`. */
static inline int64_t tw_segment_at(int64_t bh, int64_t bv, uint32_t rate_ppm, int64_t host)
{
    int64_t d = host - bh;
    if (d <= 0)
        return bv;
    if (rate_ppm == TW_RATE_ONE_PPM)
        return bv + d;
    return bv + (int64_t)((__int128)d * rate_ppm / TW_RATE_ONE_PPM);
}

typedef int64_t (*tw_host_clock_fn)(void);

/* Virtual time now (host time read inside the sequence window: see above); *host_out, when
 * given, gets the host time it corresponds to. */
static inline int64_t tw_clock_page_now(const tw_clock_page *p, tw_host_clock_fn host_now, int64_t *host_out)
{
    for (;;) {
        uint32_t seq = __atomic_load_n(&p->seq, __ATOMIC_ACQUIRE);
        int64_t host = host_now();
        if (host_out != NULL)
            *host_out = host;
        int64_t bh = __atomic_load_n(&p->base_host_ns, __ATOMIC_RELAXED);
        int64_t bv = __atomic_load_n(&p->base_virtual_ns, __ATOMIC_RELAXED);
        uint32_t rate = __atomic_load_n(&p->rate_ppm, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (!(seq & 1) && __atomic_load_n(&p->seq, __ATOMIC_RELAXED) == seq)
            return tw_segment_at(bh, bv, rate, host);
    }
}

static inline void tw_clock_page_lock(tw_clock_page *p, int32_t me)
{
    for (uint32_t spins = 0;; spins++) {
        uint32_t holder = 0;
        if (__atomic_compare_exchange_n(&p->lock, &holder, (uint32_t)me, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return;
        if (spins >= TW_CLOCK_LOCK_TAKEOVER_SPINS && (int32_t)holder != me && !tw_process_alive((int32_t)holder)) {
            /* the holder died inside the critical section: an odd seq it left is made even by
             * our own write (every field it may have half-written is rewritten below) */
            if (__atomic_compare_exchange_n(&p->lock, &holder, (uint32_t)me, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
                if (__atomic_load_n(&p->seq, __ATOMIC_RELAXED) & 1)
                    __atomic_fetch_add(&p->seq, 1, __ATOMIC_RELEASE);
                return;
            }
            spins = 0;
        }
        if (spins % 128 == 127)
            syscall(SYS_sched_yield);   /* never the interposed yield: this is the emulator's own wait */
    }
}

static inline void tw_clock_page_unlock(tw_clock_page *p)
{
    __atomic_store_n(&p->lock, 0, __ATOMIC_RELEASE);
}

/* Lock held: makes seq odd, then reads `now` and ends the current segment there (returns the
 * virtual time at `now`; *now_out gets it). */
static inline int64_t tw_clock_page_begin_write(tw_clock_page *p, tw_host_clock_fn host_now, int64_t *now_out)
{
    __atomic_fetch_add(&p->seq, 1, __ATOMIC_ACQ_REL);
    int64_t now = host_now();
    int64_t v = tw_segment_at(p->base_host_ns, p->base_virtual_ns, p->rate_ppm, now);
    __atomic_store_n(&p->base_host_ns, now > p->base_host_ns ? now : p->base_host_ns, __ATOMIC_RELAXED);
    __atomic_store_n(&p->base_virtual_ns, v, __ATOMIC_RELAXED);
    if (now_out != NULL)
        *now_out = now;
    return v;
}

static inline void tw_clock_page_end_write(tw_clock_page *p)
{
    __atomic_fetch_add(&p->seq, 1, __ATOMIC_RELEASE);
}

/* Lock held: the rate outside pauses; applied now unless the clock is paused. */
static inline void tw_clock_page_set_cpu_rate(tw_clock_page *p, tw_host_clock_fn host_now, uint32_t rate_ppm)
{
    tw_clock_page_begin_write(p, host_now, NULL);
    p->cpu_rate_ppm = rate_ppm;
    if (p->pause_depth == 0)
        __atomic_store_n(&p->rate_ppm, rate_ppm, __ATOMIC_RELAXED);
    tw_clock_page_end_write(p);
}

/* Lock held: one pause begins / ends (nested pauses count once: the clock resumes at the last). */
static inline void tw_clock_page_pause(tw_clock_page *p, tw_host_clock_fn host_now)
{
    if (p->pause_depth++ == 0) {
        int64_t now;
        tw_clock_page_begin_write(p, host_now, &now);
        __atomic_store_n(&p->rate_ppm, 0, __ATOMIC_RELAXED);
        p->pause_begin_host_ns = now;
        tw_clock_page_end_write(p);
    }
}

static inline void tw_clock_page_resume(tw_clock_page *p, tw_host_clock_fn host_now)
{
    if (p->pause_depth == 1) {
        int64_t now;
        tw_clock_page_begin_write(p, host_now, &now);
        p->paused_host_ns_total += now - p->pause_begin_host_ns;
        p->pause_depth = 0;
        __atomic_store_n(&p->rate_ppm, p->cpu_rate_ppm, __ATOMIC_RELAXED);
        tw_clock_page_end_write(p);
    } else if (p->pause_depth > 1) {
        p->pause_depth--;
    }
}

/* Lock held: every pause ends at once (a pause whose owner died, ended by the governor). */
static inline void tw_clock_page_end_pauses(tw_clock_page *p, tw_host_clock_fn host_now)
{
    int64_t now;
    tw_clock_page_begin_write(p, host_now, &now);
    if (p->pause_depth > 0)
        p->paused_host_ns_total += now - p->pause_begin_host_ns;
    p->pause_depth = 0;
    __atomic_store_n(&p->rate_ppm, p->cpu_rate_ppm, __ATOMIC_RELAXED);
    tw_clock_page_end_write(p);
}

/* The rate a waiter sizes its next real-time sleep by. While the clock stands still every span is
 * unbounded, so the waiter marks the page first: whoever ends the pause sees the mark and wakes
 * the waiters to resize (tw_clock_page_take_sleepers). Mark, then read again: either this read
 * sees the resumed rate or the resumer sees the mark (both sides fence). */
static inline uint32_t tw_clock_page_rate_for_sleep(tw_clock_page *p)
{
    uint32_t rate = __atomic_load_n(&p->rate_ppm, __ATOMIC_ACQUIRE);
    if (rate != 0)
        return rate;
    __atomic_store_n(&p->sleepers_on_pause, 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return __atomic_load_n(&p->rate_ppm, __ATOMIC_RELAXED);
}

/* After a pause ended (lock released): true once for the waiters that slept on it, which the
 * caller must wake (a woken waiter's slice sized at rate 0 would overshoot its target). */
static inline bool tw_clock_page_take_sleepers(tw_clock_page *p)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&p->sleepers_on_pause, __ATOMIC_RELAXED) == 0 ||
        __atomic_load_n(&p->rate_ppm, __ATOMIC_RELAXED) == 0)
        return false;   /* none, or paused again: the next resume wakes them */
    return __atomic_exchange_n(&p->sleepers_on_pause, 0, __ATOMIC_ACQ_REL) != 0;
}

/* Lock held: a jump to `target`; false (nothing written) when the clock is already there. */
static inline bool tw_clock_page_jump(tw_clock_page *p, tw_host_clock_fn host_now, int64_t target, int64_t *from)
{
    int64_t v = tw_clock_page_begin_write(p, host_now, NULL);
    *from = v;
    if (target > v) {
        __atomic_store_n(&p->base_virtual_ns, target, __ATOMIC_RELAXED);
        p->jump_count++;
        p->jumped_ns_total += target - v;
    }
    tw_clock_page_end_write(p);
    return target > v;
}

#endif
