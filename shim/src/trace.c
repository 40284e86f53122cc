/* The per-process record file <run>/proc/<pid>.trace: a header then fixed-size records,
 * mapped MAP_SHARED so that what was committed survives a crash. Slots are claimed with one
 * atomic add; the file grows by doubling inside one reserved address range, so records stay
 * contiguous and a claimed slot never moves. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "tw_core.h"

#define INITIAL_RECORDS (1u << 16)
#define MAX_RECORDS (1ull << 26)   /* 64 Mi records, ~10 GB of address space reserved */

static struct {
    int fd;
    int pid;
    uint8_t *base;                 /* reserved range: header page then records */
    uint64_t mapped_records;       /* records currently backed by the file mapping */
    tw_trace_header *header;
    pthread_mutex_t grow_lock;
    int state;                     /* 0 = not opened, 1 = open, -1 = tracing off */
} trace = {.fd = -1, .grow_lock = PTHREAD_MUTEX_INITIALIZER};

static __thread uint32_t cached_tid;

uint32_t tw_thread_id(void)
{
    if (TW_UNLIKELY(cached_tid == 0))
        cached_tid = (uint32_t)syscall(SYS_gettid);
    return cached_tid;
}

static uint64_t reserve_bytes(void)
{
    return TW_TRACE_HEADER_BYTES + MAX_RECORDS * sizeof(tw_record);
}

static bool map_records(uint64_t records)
{
    uint64_t bytes = TW_TRACE_HEADER_BYTES + records * sizeof(tw_record);
    if (ftruncate(trace.fd, (off_t)bytes) != 0)
        return false;
    void *at = mmap(trace.base, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, trace.fd, 0);
    if (at == MAP_FAILED)
        return false;
    __atomic_store_n(&trace.mapped_records, records, __ATOMIC_RELEASE);
    return true;
}

static void mark_process_start(void);

/* Opens the file for this pid (also after fork, over the inherited reservation). */
static void trace_open(void)
{
    const char *run_dir = tw_config_get()->run_dir;
    if (run_dir == NULL) {
        trace.state = -1;
        return;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/proc", run_dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/proc/%d.trace", run_dir, (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "timewarp: cannot create %s: %s (tracing off)\n", path, strerror(errno));
        trace.state = -1;
        return;
    }
    if (trace.base == NULL) {
        void *range = mmap(NULL, reserve_bytes(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (range == MAP_FAILED) {
            close(fd);
            trace.state = -1;
            return;
        }
        trace.base = range;
    }
    if (trace.fd >= 0)
        close(trace.fd);
    trace.fd = fd;
    trace.pid = getpid();
    if (!map_records(INITIAL_RECORDS)) {
        trace.state = -1;
        return;
    }
    trace.header = (tw_trace_header *)trace.base;
    memset(trace.header, 0, sizeof *trace.header);
    trace.header->magic = TW_TRACE_MAGIC;
    trace.header->abi_version = TW_ABI_VERSION;
    trace.header->record_bytes = sizeof(tw_record);
    trace.header->pid = getpid();
    trace.header->ppid = getppid();
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall); /* interposed: virtual wall clock is fine here */
    trace.header->start_wall_ns = (int64_t)wall.tv_sec * 1000000000LL + wall.tv_nsec;
    trace.header->start_virtual_ns = tw_now_ns();
    __atomic_store_n(&trace.state, 1, __ATOMIC_RELEASE);
    mark_process_start();
}

/* "process start pid N", then "command ARGV" (arguments joined by spaces, cut at 1000 bytes):
 * what each process of the run was (summary.json's processes; a benchmark client's result file
 * is found by the path its command names). */
static void mark_process_start(void)
{
    char what[1024];
    snprintf(what, sizeof what, "process start pid %d", (int)getpid());
    tw_trace_mark(what);
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    memcpy(what, "command ", 8);
    ssize_t n = tw_io_read(fd, what + 8, sizeof what - 9);
    close(fd);
    if (n <= 0)
        return;
    while (n > 0 && what[8 + n - 1] == '\0')
        n--;
    for (ssize_t i = 0; i < n; i++)
        if (what[8 + i] == '\0' || what[8 + i] == '\n' || what[8 + i] == '\t')
            what[8 + i] = ' ';
    what[8 + n] = '\0';
    tw_trace_mark(what);
}

static pthread_once_t trace_once = PTHREAD_ONCE_INIT;

static void trace_init_once(void)
{
    trace_open();
}

void tw_trace_start(void)
{
    if (tw_config_get()->run_dir != NULL)
        pthread_once(&trace_once, trace_init_once);
}

static tw_record *slot_at(uint64_t index)
{
    return (tw_record *)(trace.base + TW_TRACE_HEADER_BYTES) + index;
}

tw_record *tw_trace_claim(void)
{
    if (TW_UNLIKELY(__atomic_load_n(&trace.state, __ATOMIC_ACQUIRE) != 1)) {
        if (trace.state == -1)
            return NULL;
        pthread_once(&trace_once, trace_init_once);
        if (trace.state != 1)
            return NULL;
    }
    uint64_t index = __atomic_fetch_add(&trace.header->record_count, 1, __ATOMIC_ACQ_REL);
    if (TW_UNLIKELY(index >= __atomic_load_n(&trace.mapped_records, __ATOMIC_ACQUIRE))) {
        if (index >= MAX_RECORDS)
            return NULL;
        pthread_mutex_lock(&trace.grow_lock);
        uint64_t records = trace.mapped_records;
        while (records <= index)
            records *= 2;
        if (records > MAX_RECORDS)
            records = MAX_RECORDS;
        bool ok = records == trace.mapped_records || map_records(records);
        pthread_mutex_unlock(&trace.grow_lock);
        if (!ok)
            return NULL;
    }
    tw_record *rec = slot_at(index);
    memset(rec, 0, sizeof *rec);
    return rec;
}

void tw_trace_commit(tw_record *rec, uint16_t kind)
{
    __atomic_store_n(&rec->kind, kind, __ATOMIC_RELEASE);
}

void tw_trace_api(uint32_t api_name_id, int64_t begin_ns, int64_t end_ns)
{
    if (!tw_config_get()->trace_api)
        return;
    tw_record *rec = tw_trace_claim();
    if (rec == NULL)
        return;
    rec->tid = tw_thread_id();
    rec->name_id = api_name_id;
    rec->begin_ns = begin_ns;
    rec->end_ns = end_ns;
    tw_trace_commit(rec, TW_REC_API);
}

void tw_trace_mark_value(const char *what, int64_t value)
{
    tw_record *rec = tw_trace_claim();
    if (rec == NULL)
        return;
    rec->tid = tw_thread_id();
    rec->name_id = tw_name_intern(what);
    rec->begin_ns = rec->end_ns = tw_now_ns();
    rec->value = value;
    tw_trace_commit(rec, TW_REC_MARK);
}

void tw_trace_mark(const char *what)
{
    tw_trace_mark_value(what, 0);
}

void tw_trace_set_exit(int status, int signal_number)
{
    if (__atomic_load_n(&trace.state, __ATOMIC_ACQUIRE) != 1 || trace.pid != getpid())
        return;
    trace.header->exit_status = status;
    trace.header->exit_signal = signal_number;
    trace.header->exit_virtual_ns = tw_now_ns();
}

/* The process is ending: GPU work still queued gets its times, the header its exit. The file
 * keeps its mapped length (zeros past the last record): exit handlers and static destructors
 * run after this and may still record, and a record written past a truncated end would be a
 * SIGBUS. `emulate` trims the files once the run is over (emulator/outputs/records.py). */
static void trace_finish(int status)
{
    tw_timeline_flush();
    tw_trace_set_exit(status, 0);
}

void tw_trace_after_fork(void)
{
    trace.state = 0;
    trace_once = (pthread_once_t)PTHREAD_ONCE_INIT;
    pthread_mutex_init(&trace.grow_lock, NULL);
    cached_tid = 0;
    if (tw_config_get()->run_dir != NULL)
        pthread_once(&trace_once, trace_init_once);
}

/* exit() and _exit() are interposed to keep the status in the header before the process
 * goes. A return from main reaches libc's exit by an internal call that no interposition sees,
 * so main itself is wrapped, through __libc_start_main (which _start calls via the PLT). */
typedef int (*main_fn)(int, char **, char **);
typedef int (*libc_start_main_fn)(main_fn, int, char **, void (*)(void), void (*)(void), void (*)(void), void *);
static main_fn program_main;

static int main_wrapper(int argc, char **argv, char **envp)
{
    int status = program_main(argc, argv, envp);
    trace_finish(status);
    return status;
}

TW_EXPORT int __libc_start_main(main_fn main, int argc, char **argv, void (*init)(void), void (*fini)(void),
                                void (*rtld_fini)(void), void *stack_end)
{
    libc_start_main_fn real_start = (libc_start_main_fn)dlsym(RTLD_NEXT, "__libc_start_main");
    program_main = main;
    return real_start(main_wrapper, argc, argv, init, fini, rtld_fini, stack_end);
}

typedef void (*exit_fn)(int);

TW_EXPORT void exit(int status)
{
    static exit_fn real_exit;
    if (real_exit == NULL)
        real_exit = (exit_fn)dlsym(RTLD_NEXT, "exit");
    trace_finish(status);
    real_exit(status);
    __builtin_unreachable();
}

TW_EXPORT void _exit(int status)
{
    static exit_fn real_exit;
    if (real_exit == NULL)
        real_exit = (exit_fn)dlsym(RTLD_NEXT, "_exit");
    tw_trace_set_exit(status, 0);
    real_exit(status);
    __builtin_unreachable();
}
