/* How busy a device was over a recent window of virtual time, from the GPU-op records every
 * process of the run has written (<run>/proc/<pid>.trace): what NVML reports as utilisation.
 * Read only when asked (a query scans the tails of the trace files), so the op path pays
 * nothing. Without a run directory there are no records: the device reads as idle. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tw_core.h"

#define CHUNK_RECORDS 1024
/* Records are in emission (issue) order per process: an op issued this long before the window
 * cannot reach into it (nothing the predictors give lasts that long), so the scan stops there. */
#define ISSUE_LOOKBACK_NS (10LL * 1000 * 1000 * 1000)

typedef struct interval {
    int64_t begin, end;
} interval;

typedef struct activity {
    interval *busy;
    size_t count, capacity;
    double memory_ns;     /* time the ops' bytes take at the spec's HBM bandwidth, within the window */
} activity;

static void add_interval(activity *a, int64_t begin, int64_t end)
{
    if (a->count == a->capacity) {
        size_t capacity = a->capacity ? a->capacity * 2 : 256;
        interval *grown = realloc(a->busy, capacity * sizeof *grown);
        if (grown == NULL)
            return;
        a->busy = grown;
        a->capacity = capacity;
    }
    a->busy[a->count++] = (interval){begin, end};
}

static void add_op(activity *a, const tw_record *r, int64_t from_ns, int64_t to_ns)
{
    int64_t begin = r->begin_ns > from_ns ? r->begin_ns : from_ns;
    int64_t end = r->end_ns < to_ns ? r->end_ns : to_ns;
    if (end <= begin)
        return;
    add_interval(a, begin, end);
    double duration = (double)(r->end_ns - r->begin_ns);
    double memory = (double)r->bytes / tw_spec()->hbm_bytes_per_s * 1e9;
    a->memory_ns += (double)(end - begin) * (memory < duration ? memory / duration : 1.0);
}

/* One process's records, newest first, until they were issued too long before the window. */
static void scan_trace(int fd, int device, int64_t from_ns, int64_t to_ns, activity *a)
{
    tw_trace_header header;
    if (pread(fd, &header, sizeof header, 0) != (ssize_t)sizeof header || header.magic != TW_TRACE_MAGIC ||
        header.record_bytes != sizeof(tw_record))
        return;
    static __thread tw_record chunk[CHUNK_RECORDS];
    uint64_t end = header.record_count;
    while (end > 0) {
        uint64_t first = end > CHUNK_RECORDS ? end - CHUNK_RECORDS : 0;
        size_t bytes = (size_t)(end - first) * sizeof(tw_record);
        ssize_t got = pread(fd, chunk, bytes, (off_t)(TW_TRACE_HEADER_BYTES + first * sizeof(tw_record)));
        if (got < (ssize_t)sizeof(tw_record))
            return;
        for (size_t i = (size_t)got / sizeof(tw_record); i-- > 0;) {
            const tw_record *r = &chunk[i];
            if (r->kind != TW_REC_GPU_OP)
                continue;
            if (r->issue_ns < from_ns - ISSUE_LOOKBACK_NS)
                return;
            if (r->device == device)
                add_op(a, r, from_ns, to_ns);
        }
        end = first;
    }
}

static int by_begin(const void *x, const void *y)
{
    const interval *a = x, *b = y;
    return (a->begin > b->begin) - (a->begin < b->begin);
}

/* Length of the union of the intervals. */
static int64_t union_ns(interval *v, size_t n)
{
    qsort(v, n, sizeof *v, by_begin);
    int64_t total = 0, begin = 0, end = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || v[i].begin > end) {
            total += end - begin;
            begin = v[i].begin;
            end = v[i].end;
        } else if (v[i].end > end) {
            end = v[i].end;
        }
    }
    return total + (end - begin);
}

/* Over [now - window_ns, now]: the fraction of time one or more ops ran on `device`, and the
 * fraction its memory was read or written (each op's bytes at the HBM bandwidth, at most its
 * duration). Flushes this process's timeline first so its queued ops count. */
void tw_gpu_activity(int device, int64_t window_ns, double *busy_fraction, double *memory_fraction)
{
    *busy_fraction = *memory_fraction = 0;
    const char *run_dir = tw_config_get()->run_dir;
    if (run_dir == NULL || window_ns <= 0)
        return;
    tw_timeline_flush();
    int64_t to_ns = tw_now_ns(), from_ns = to_ns - window_ns;
    char path[4096];
    snprintf(path, sizeof path, "%s/proc", run_dir);
    DIR *dir = opendir(path);
    if (dir == NULL)
        return;
    activity a = {0};
    for (struct dirent *e; (e = readdir(dir)) != NULL;) {
        size_t len = strlen(e->d_name);
        if (len < 7 || strcmp(e->d_name + len - 6, ".trace") != 0)
            continue;
        snprintf(path, sizeof path, "%s/proc/%s", run_dir, e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        scan_trace(fd, device, from_ns, to_ns, &a);
        close(fd);
    }
    closedir(dir);
    *busy_fraction = (double)union_ns(a.busy, a.count) / (double)window_ns;
    *memory_fraction = a.memory_ns / (double)window_ns;
    if (*memory_fraction > 1)
        *memory_fraction = 1;
    free(a.busy);
}
