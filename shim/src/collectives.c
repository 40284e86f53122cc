/* Collectives across ranks (DESIGN §4 "Collectives"): communicators and rendezvous entries in a
 * page shared by every process of the run (<run>/collectives.page, records.h tw_coll_page).
 *
 * A rank's collective is an entry keyed by (communicator, sequence number); a point-to-point
 * transfer is an entry keyed by (communicator, sender, receiver, the pair's sequence number).
 * At issue, each participant opens the entry (the first one creates it; the others check that
 * they issued the same op, else the run ends naming both) and stages its send data when its
 * buffer is host-backed. When its stream reaches the op (timeline.c, at a flush), it posts its
 * arrival. The entry is complete once every participant has arrived: the op starts at the
 * latest arrival on every rank. Completing an entry marks each participant process "dirty":
 * its progress thread recomputes its timeline (later arrivals it could not post yet, waits
 * whose target is now known) and the run's clock does not jump while any process is dirty,
 * so no rank's completion can be jumped past.
 *
 * Entries live until every participant has released them (its timeline computed the op and
 * its received data was written). The transport is this page on one host; a run across hosts
 * completes the same entries through the coordinator (open, deposit, arrive, complete). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "actors.h"
#include "process_alive.h"
#include "tw_core.h"

#define LOCK_TAKEOVER_SPINS 20000

static tw_coll_page *page;
static uint8_t *data_base;            /* collectives.data mapping; NULL = no staging */
static pthread_once_t page_once = PTHREAD_ONCE_INIT;
static int32_t my_pid;
static tw_coll_proc *my_proc;

static long futex(uint32_t *word, int op, uint32_t value, const struct timespec *timeout)
{
    return syscall(SYS_futex, word, op, value, timeout, NULL, 0);
}

static void bump_progress(void)
{
    __atomic_fetch_add(&page->progress, 1, __ATOMIC_ACQ_REL);
    futex(&page->progress, FUTEX_WAKE, INT_MAX, NULL);
}

static void *map_run_file(const char *name, size_t bytes)
{
    const char *run_dir = tw_config_get()->run_dir;
    if (run_dir == NULL)
        return NULL;
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", run_dir, name);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        TW_WARN("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    /* all-zero is valid: every process extends it to full size, which leaves contents alone */
    if (fstat(fd, &st) != 0 || ((size_t)st.st_size < bytes && ftruncate(fd, (off_t)bytes) != 0)) {
        close(fd);
        return NULL;
    }
    void *mapping = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    return mapping == MAP_FAILED ? NULL : mapping;
}

static void page_init(void)
{
    my_pid = getpid();
    page = map_run_file("collectives.page", sizeof(tw_coll_page));
    if (page != NULL) {
        data_base = map_run_file("collectives.data", TW_COLL_DATA_BYTES);
    } else {
        /* outside a run: communicators among this process's own devices still rendezvous */
        page = mmap(NULL, sizeof(tw_coll_page), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        data_base = mmap(NULL, TW_COLL_DATA_BYTES, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (page == MAP_FAILED)
            abort();
        if (data_base == MAP_FAILED)
            data_base = NULL;
    }
    uint64_t expected = 0;
    __atomic_compare_exchange_n(&page->magic, &expected, TW_COLL_MAGIC, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    page->version = TW_COLL_VERSION;
}

static void ensure_page(void)
{
    pthread_once(&page_once, page_init);
}

/* ---- the page lock: held for a few hundred ns; a holder that died is taken over ---- */

static void page_lock(void)
{
    for (uint32_t spins = 0;; spins++) {
        uint32_t expected = 0;
        if (__atomic_compare_exchange_n(&page->lock, &expected, (uint32_t)my_pid, 0, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return;
        if (spins >= LOCK_TAKEOVER_SPINS && (int32_t)expected != my_pid && !tw_process_alive((int32_t)expected)) {
            TW_WARN("collectives page lock held by pid %u, which is gone: taking it over", expected);
            if (__atomic_compare_exchange_n(&page->lock, &expected, (uint32_t)my_pid, 0, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED))
                return;
            spins = 0;
        }
        if (spins % 64 == 63)
            syscall(SYS_sched_yield);   /* not the interposed one: this is no busy poll of the program's */
    }
}

static void page_unlock(void)
{
    __atomic_store_n(&page->lock, 0, __ATOMIC_RELEASE);
}

/* ---- processes: dirty marks and their progress threads ---- */

static tw_coll_proc *proc_slot(int32_t pid, bool create)
{
    for (uint32_t i = 0; i < TW_COLL_PROCS; i++) {
        tw_coll_proc *p = &page->procs[i];
        int32_t holder = __atomic_load_n(&p->pid, __ATOMIC_ACQUIRE);
        if (holder == pid)
            return p;
        if (holder == 0 && create) {
            int32_t zero = 0;
            if (__atomic_compare_exchange_n(&p->pid, &zero, pid, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                __atomic_store_n(&p->serviced, __atomic_load_n(&p->dirty, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
                uint32_t hw = __atomic_load_n(&page->proc_high_water, __ATOMIC_ACQUIRE);
                while (hw < i + 1 && !__atomic_compare_exchange_n(&page->proc_high_water, &hw, i + 1, 1,
                                                                  __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                }
                return p;
            }
        }
    }
    return NULL;
}

/* The run's clock stands still from a completion until every participant has caught up: the
 * catch-up is the emulator's work, which a GPU host would not do, and while it lasts no jump may
 * happen (a waiter's target is not known yet), so without the pause the clock would run on in
 * real time past targets, by as much as the host is loaded. */
static void pause_for(tw_coll_proc *p)
{
    uint32_t zero = 0;
    if (__atomic_compare_exchange_n(&p->paused, &zero, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        tw_clock_pause_begin();
}

static void resume_for(tw_coll_proc *p)
{
    uint32_t one = 1;
    if (__atomic_compare_exchange_n(&p->paused, &one, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        tw_clock_pause_end(0);
}

static void mark_dirty(int32_t pid)
{
    tw_coll_proc *p = proc_slot(pid, false);
    if (p == NULL)
        return;
    pause_for(p);
    __atomic_fetch_add(&p->dirty, 1, __ATOMIC_ACQ_REL);
    futex(&p->dirty, FUTEX_WAKE, INT_MAX, NULL);
}

bool tw_coll_any_dirty(void)
{
    if (page == NULL)
        return false;
    uint32_t n = __atomic_load_n(&page->proc_high_water, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < n && i < TW_COLL_PROCS; i++) {
        tw_coll_proc *p = &page->procs[i];
        int32_t pid = __atomic_load_n(&p->pid, __ATOMIC_ACQUIRE);
        uint32_t dirty = __atomic_load_n(&p->dirty, __ATOMIC_ACQUIRE);
        if (pid == 0 || dirty == __atomic_load_n(&p->serviced, __ATOMIC_ACQUIRE))
            continue;
        if (tw_process_alive(pid))
            return true;
        __atomic_store_n(&p->serviced, dirty, __ATOMIC_RELEASE);   /* a dead process never catches up */
        resume_for(p);
    }
    return false;
}

/* The progress thread of a process with multi-rank communicators: whenever a rendezvous of this
 * process completes elsewhere, recompute its timeline (timeline.c). It is no actor: while it
 * works the process is dirty, which holds the clock. */
static void *progress_thread(void *unused)
{
    (void)unused;
    tw_actor_exempt_self();
    for (;;) {
        uint32_t dirty = __atomic_load_n(&my_proc->dirty, __ATOMIC_ACQUIRE);
        if (dirty == __atomic_load_n(&my_proc->serviced, __ATOMIC_ACQUIRE)) {
            futex(&my_proc->dirty, FUTEX_WAIT, dirty, NULL);
            continue;
        }
        tw_timeline_progress();   /* wakes each waiter it gives a target (timeline.c) */
        __atomic_store_n(&my_proc->serviced, dirty, __ATOMIC_RELEASE);
        if (__atomic_load_n(&my_proc->dirty, __ATOMIC_ACQUIRE) == dirty)
            resume_for(my_proc);   /* caught up (a completion meanwhile keeps the pause: next round) */
        /* A jump refused while a process caught up was refused for the clock's pause (a dirty
         * process holds one), whose end wakes the refused (clock.c): kick only once the clock
         * runs, so that a run of N ranks does not wake every waiter N times per collective. */
        if (!tw_clock_paused())
            tw_actors_kick();
    }
    return NULL;
}

static pthread_mutex_t progress_lock = PTHREAD_MUTEX_INITIALIZER;
static bool progress_started;

static void start_progress_thread(void)
{
    pthread_mutex_lock(&progress_lock);
    if (!progress_started) {
        page_lock();
        my_proc = proc_slot(my_pid, true);
        page_unlock();
        if (my_proc == NULL) {
            TW_ERROR("collectives: process table full (%d processes)", TW_COLL_PROCS);
        } else {
            pthread_t thread;
            if (tw_thread_create_exempt(&thread, progress_thread, NULL) == 0)
                progress_started = true;
            else
                TW_ERROR("collectives: cannot start the progress thread");
        }
    }
    pthread_mutex_unlock(&progress_lock);
}

void tw_coll_after_fork(void)
{
    /* the child has no communicators (NCCL's cannot cross fork) and no progress thread */
    pthread_mutex_init(&progress_lock, NULL);
    progress_started = false;
    my_proc = NULL;
    my_pid = getpid();
}

/* ---- communicators ---- */

static tw_coll_comm *comm_find(uint64_t key)
{
    for (uint32_t i = 0; i < TW_COLL_COMMS; i++)
        if (page->comms[i].key == key)
            return &page->comms[i];
    return NULL;
}

int tw_coll_comm_join(uint64_t key, int nranks, int rank, int device, char *why, size_t why_len)
{
    ensure_page();
    if (nranks < 1 || nranks > TW_COLL_MAX_RANKS || rank < 0 || rank >= nranks) {
        snprintf(why, why_len, "rank %d of %d ranks (at most %d supported)", rank, nranks, TW_COLL_MAX_RANKS);
        return TW_ERR_INVALID;
    }
    page_lock();
    tw_coll_comm *c = comm_find(key);
    if (c == NULL) {
        c = comm_find(0);
        if (c == NULL) {
            page_unlock();
            snprintf(why, why_len, "the run has %d communicators already", TW_COLL_COMMS);
            return TW_ERR_NOMEM;
        }
        memset(c, 0, sizeof *c);
        c->nranks = (uint32_t)nranks;
        c->key = key;
    }
    int status = TW_OK;
    if ((int)c->nranks != nranks) {
        snprintf(why, why_len, "rank %d says %d ranks, an earlier rank said %u", rank, nranks, c->nranks);
        status = TW_ERR_INVALID;
    } else if (c->pid[rank] != 0 && c->pid[rank] != my_pid && tw_process_alive(c->pid[rank])) {
        snprintf(why, why_len, "rank %d joined twice (pid %d, then pid %d)", rank, c->pid[rank], my_pid);
        status = TW_ERR_INVALID;
    } else {
        if (c->pid[rank] == 0)
            c->joined++;
        c->pid[rank] = my_pid;
        c->device[rank] = device;
    }
    page_unlock();
    if (status == TW_OK) {
        bump_progress();
        if (nranks > 1)
            start_progress_thread();
    }
    return status;
}

typedef struct join_wait {
    uint64_t key;
} join_wait;

static bool all_joined(void *arg)
{
    tw_coll_comm *c = comm_find(((join_wait *)arg)->key);
    return c != NULL && __atomic_load_n(&c->joined, __ATOMIC_ACQUIRE) >= c->nranks;
}

void tw_coll_comm_wait_joined(uint64_t key)
{
    join_wait w = {key};
    tw_wait_for(all_joined, &w, &page->progress, "nccl:init");
}

uint32_t *tw_coll_progress_word(void)
{
    ensure_page();
    return &page->progress;
}

void tw_coll_comm_leave(uint64_t key)
{
    page_lock();
    tw_coll_comm *c = comm_find(key);
    if (c != NULL && ++c->left >= c->joined)
        c->key = 0;   /* every rank has left: the slot is free */
    page_unlock();
}

int tw_coll_comm_device(uint64_t key, int rank)
{
    tw_coll_comm *c = comm_find(key);
    return c != NULL && rank >= 0 && rank < TW_COLL_MAX_RANKS ? c->device[rank] : -1;
}

/* ---- rendezvous entries ---- */

static tw_coll_entry *entry_at(uint32_t index)
{
    return &page->entries[index];
}

static tw_coll_entry *entry_find(uint64_t comm_key, uint64_t op_key)
{
    for (uint32_t i = 0; i < TW_COLL_ENTRIES; i++) {
        tw_coll_entry *e = &page->entries[i];
        if (e->comm_key == comm_key && e->op_key == op_key)
            return e;
    }
    return NULL;
}

/* A staging area of `bytes` that no live entry uses, from the wrapping bump allocator. */
static bool data_alloc(uint64_t bytes, uint64_t *offset)
{
    if (data_base == NULL || bytes == 0 || bytes > TW_COLL_DATA_BYTES / 4)
        return false;
    uint64_t at = page->data_head;
    if (at + bytes > TW_COLL_DATA_BYTES)
        at = 0;
    for (uint32_t i = 0; i < TW_COLL_ENTRIES; i++) {
        tw_coll_entry *e = &page->entries[i];
        if (e->comm_key == 0 || e->data_stride == 0)
            continue;
        uint64_t lo = e->data_offset, hi = lo + e->data_stride * e->expected;
        if (at < hi && lo < at + bytes)
            return false;   /* still in use: this op moves no data (logged by the caller) */
    }
    *offset = at;
    page->data_head = at + bytes;
    return true;
}

static const char *const kind_names[] = {"?", "allreduce", "allgather", "reducescatter", "broadcast", "reduce",
                                         "send", "recv", "alltoall", "gather", "scatter", "send/recv", "split",
                                         "kernel"};

const char *tw_coll_kind_name(int kind)
{
    return kind >= 0 && kind < (int)(sizeof kind_names / sizeof kind_names[0]) ? kind_names[kind] : "?";
}

static void describe_op(char *out, size_t len, const tw_coll_op *op)
{
    if (op->kind == TW_COLL_KERNEL)   /* kernels meeting through peers' memory (kernel_sync.c) */
        snprintf(out, len, "kernel %s (name hash %016llx)", op->kernel_name ? op->kernel_name : "of another name",
                 (unsigned long long)op->count);
    else
        snprintf(out, len, "%s(count %llu, dtype %u, root %d, redop %u)", tw_coll_kind_name(op->kind),
                 (unsigned long long)op->count, op->dtype, op->root, op->redop);
}

static bool same_op(const tw_coll_entry *e, const tw_coll_op *op)
{
    if (e->kind != op->kind)
        return false;
    if (e->kind == TW_COLL_P2P)   /* a send pairs with a receive of the same bytes */
        return e->count * tw_nccl_dtype_bytes((int)e->dtype) == op->count * tw_nccl_dtype_bytes(op->dtype);
    return e->count == op->count && e->dtype == op->dtype && e->root == op->root &&
           (e->kind == TW_COLL_ALLGATHER || e->kind == TW_COLL_BROADCAST || e->redop == op->redop ||
            op->redop >= 5 || e->redop >= 5);   /* dynamic (pre-mul-sum) operators have per-rank ids */
}

/* The mismatch ends the run: both sides are named, as NCCL itself would hang. */
static void report_mismatch(const tw_coll_entry *e, const tw_coll_op *op, int index)
{
    tw_coll_op theirs = {.kind = e->kind, .dtype = e->dtype, .count = e->count, .root = e->root, .redop = e->redop};
    char mine[400], other[160], text[700];
    describe_op(mine, sizeof mine, op);
    describe_op(other, sizeof other, &theirs);
    snprintf(text, sizeof text,
             "collective mismatch on communicator %016llx, op %llu: participant %d called %s, participant %u "
             "called %s",
             (unsigned long long)e->comm_key, (unsigned long long)(e->op_key & 0xffffffffffffULL), index, mine,
             e->created_by_rank, other);
    uint32_t zero = 0;
    if (__atomic_compare_exchange_n(&page->error, &zero, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        snprintf(page->error_text, sizeof page->error_text, "%.*s", (int)sizeof page->error_text - 1, text);
    page_unlock();
    tw_fatal(text);
}

int tw_coll_open(const tw_coll_op *op, tw_coll_ref *out)
{
    ensure_page();
    page_lock();
    tw_coll_entry *e = entry_find(op->comm_key, op->op_key);
    if (e == NULL) {
        e = entry_find(0, 0);
        for (uint32_t i = 0; e == NULL && i < TW_COLL_ENTRIES; i++)
            if (page->entries[i].comm_key == 0)
                e = &page->entries[i];
        if (e == NULL) {
            page_unlock();
            return TW_ERR_NOMEM;
        }
        memset(e, 0, offsetof(tw_coll_entry, arrival_ns));
        e->kind = op->kind;
        e->dtype = op->dtype;
        e->count = op->count;
        e->root = op->root;
        e->peer = op->peer;
        e->redop = op->redop;
        e->expected = op->expected;
        e->created_by_rank = (uint32_t)op->index;
        e->created_host_ns = tw_host_mono_ns();
        if (op->stage_bytes_per_rank > 0 && data_alloc(op->stage_bytes_per_rank * op->expected, &e->data_offset))
            e->data_stride = op->stage_bytes_per_rank;
        e->op_key = op->op_key;
        __atomic_store_n(&e->comm_key, op->comm_key, __ATOMIC_RELEASE);
    } else if (!same_op(e, op)) {
        report_mismatch(e, op, op->index);
    }
    out->entry = (uint32_t)(e - page->entries);
    out->comm_key = op->comm_key;
    out->op_key = op->op_key;
    out->index = op->index;
    page_unlock();
    return TW_OK;
}

static tw_coll_entry *ref_entry(const tw_coll_ref *ref)
{
    tw_coll_entry *e = entry_at(ref->entry);
    return e->comm_key == ref->comm_key && e->op_key == ref->op_key ? e : NULL;
}

void *tw_coll_stage(const tw_coll_ref *ref, uint64_t *bytes)
{
    tw_coll_entry *e = ref_entry(ref);
    if (e == NULL || e->data_stride == 0) {
        *bytes = 0;
        return NULL;
    }
    *bytes = e->data_stride;
    return data_base + e->data_offset + e->data_stride * (uint64_t)ref->index;
}

void tw_coll_deposit(const tw_coll_ref *ref, int64_t aux)
{
    page_lock();
    tw_coll_entry *e = ref_entry(ref);
    uint64_t bit = 1ULL << ref->index;
    if (e != NULL && !(e->deposited_mask & bit)) {
        /* readers test `deposited` without the lock, then read aux and the staged bytes: the
         * count is published last, with release */
        e->aux[ref->index] = aux;
        e->deposited_mask |= bit;
        __atomic_store_n(&e->deposited, e->deposited + 1, __ATOMIC_RELEASE);
    }
    page_unlock();
    bump_progress();
}

bool tw_coll_all_deposited(const tw_coll_ref *ref)
{
    tw_coll_entry *e = ref_entry(ref);
    return e == NULL || __atomic_load_n(&e->deposited, __ATOMIC_ACQUIRE) >= e->expected;
}

int64_t tw_coll_aux(const tw_coll_ref *ref, int index)
{
    tw_coll_entry *e = ref_entry(ref);
    return e != NULL && index >= 0 && index < TW_COLL_MAX_RANKS ? e->aux[index] : 0;
}

const void *tw_coll_staged(const tw_coll_ref *ref, int index)
{
    tw_coll_entry *e = ref_entry(ref);
    if (e == NULL || e->data_stride == 0 || index < 0 || (uint32_t)index >= e->expected)
        return NULL;
    return data_base + e->data_offset + e->data_stride * (uint64_t)index;
}

/* The processes of an entry's participants, to mark dirty on completion. */
static void participants_dirty(const tw_coll_entry *e)
{
    tw_coll_comm *c = comm_find(e->comm_key);
    if (c == NULL)
        return;
    int32_t pids[TW_COLL_MAX_RANKS];
    int count = 0;
    for (uint32_t i = 0; i < e->expected && i < TW_COLL_MAX_RANKS; i++) {
        int rank = e->kind == TW_COLL_P2P ? (i == 0 ? e->root : e->peer) : (int)i;
        int32_t pid = rank >= 0 && rank < TW_COLL_MAX_RANKS ? c->pid[rank] : 0;
        bool seen = false;
        for (int k = 0; k < count; k++)
            seen |= pids[k] == pid;
        if (pid != 0 && !seen)
            pids[count++] = pid;
    }
    for (int k = 0; k < count; k++)
        mark_dirty(pids[k]);
}

bool tw_coll_arrive(const tw_coll_ref *ref, int64_t arrival_ns)
{
    page_lock();
    tw_coll_entry *e = ref_entry(ref);
    bool completed = false;
    uint64_t bit = 1ULL << ref->index;
    if (e != NULL && !(e->arrived_mask & bit)) {
        e->arrival_ns[ref->index] = arrival_ns;
        e->arrived_mask |= bit;
        if (arrival_ns > e->start_ns || e->arrived == 0)
            e->start_ns = arrival_ns;
        uint32_t arrived = e->arrived + 1;
        __atomic_store_n(&e->arrived, arrived, __ATOMIC_RELEASE);   /* start_ns is read after it, lock-free */
        if (arrived == e->expected) {
            completed = true;
            page->completed++;
            participants_dirty(e);
        }
    }
    page_unlock();
    bump_progress();
    return completed;
}

bool tw_coll_start(const tw_coll_ref *ref, int64_t *start_ns)
{
    tw_coll_entry *e = ref_entry(ref);
    if (e == NULL || __atomic_load_n(&e->arrived, __ATOMIC_ACQUIRE) < e->expected)
        return false;
    *start_ns = e->start_ns;
    return true;
}

uint64_t tw_coll_completed_count(void)
{
    return page != NULL ? __atomic_load_n(&page->completed, __ATOMIC_ACQUIRE) : 0;
}

void tw_coll_release(const tw_coll_ref *ref)
{
    page_lock();
    tw_coll_entry *e = ref_entry(ref);
    uint64_t bit = 1ULL << ref->index;
    if (e != NULL && !(e->released_mask & bit)) {
        e->released_mask |= bit;
        if (++e->released >= e->expected)
            e->comm_key = 0;   /* every participant is done: the entry (and its staging) is free */
    }
    page_unlock();
}

/* ---- diagnosis ---- */

size_t tw_coll_describe_pending(char *out, size_t len)
{
    if (page == NULL || len == 0)
        return 0;
    size_t used = 0;
    int64_t host = tw_host_mono_ns();
    for (uint32_t i = 0; i < TW_COLL_ENTRIES && used + 200 < len; i++) {
        tw_coll_entry *e = &page->entries[i];
        if (e->comm_key == 0 || e->arrived >= e->expected)
            continue;
        used += (size_t)snprintf(out + used, len - used,
                                 "  nccl %s #%llu on communicator %016llx (count %llu, dtype %u): %u of %u "
                                 "participants arrived, waiting %.1f s; missing:",
                                 tw_coll_kind_name((int)e->kind), (unsigned long long)(e->op_key & 0xffffffffffffULL),
                                 (unsigned long long)e->comm_key, (unsigned long long)e->count, e->dtype, e->arrived,
                                 e->expected, (double)(host - e->created_host_ns) / 1e9);
        for (uint32_t k = 0; k < e->expected && used + 16 < len; k++)
            if (!(e->arrived_mask & (1ULL << k)))
                used += (size_t)snprintf(out + used, len - used, " %u", k);
        used += (size_t)snprintf(out + used, len - used, "\n");
    }
    return used;
}
