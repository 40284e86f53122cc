/* Nanoseconds <-> struct timespec, shared by clock.c and waits.c. */
#ifndef TW_TIMESPEC_H
#define TW_TIMESPEC_H

#include <stdint.h>
#include <time.h>

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

#endif
