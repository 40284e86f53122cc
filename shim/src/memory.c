/* Split-state device memory (DESIGN §2 memory).
 *
 * Device allocations up to backed_threshold live in host memory, so copies into and out of
 * them are real. Larger ones are unique 2 MiB-aligned ranges carved out of a per-device
 * PROT_NONE reservation (MAP_NORESERVE): they cost no host memory and a host dereference
 * faults; the SIGSEGV handler below names the allocation. Every allocation sits in a sorted
 * table published under a seqlock, so tw_mem_lookup (on the launch path) takes no lock and
 * allocates nothing. Capacity per device = spec memory_bytes - reserved_bytes.
 *
 * VMM (cuMemAddressReserve/Create/Map): reserves are their own PROT_NONE mappings, physical
 * handles charge capacity, a mapped range is device memory for lookups (backed, made RW,
 * when its handle is no larger than backed_threshold). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tw_core.h"

#define MIB (1024ull * 1024ull)
#define GIB (1024ull * MIB)
#define TW_VMM_GRANULARITY (2 * MIB)
#define TW_BACKED_ALIGN 512ull

static inline uint64_t round_up(uint64_t x, uint64_t a)
{
    return (x + a - 1) / a * a;
}

/* ---- where an allocation's memory came from, to give it back the same way ---- */
enum origin { ORIGIN_HEAP = 1, ORIGIN_ARENA, ORIGIN_MMAP, ORIGIN_CALLER, ORIGIN_VMM_MAP,
              ORIGIN_VMM_RESERVE, ORIGIN_SHARED, ORIGIN_FOREIGN_MAP };

typedef struct mem_entry {
    tw_alloc a;
    uint64_t charged_bytes;  /* against the device's capacity; 0 for host kinds and IPC maps */
    uint64_t vmm_handle;     /* mapped VMM range: its physical handle */
    uint32_t user_flags;     /* cudaHostAlloc / cudaHostRegister flags */
    uint8_t origin;          /* enum origin */
    bool foreign;            /* opened from another process's IPC handle */
    uint64_t map_base, map_bytes;  /* ORIGIN_FOREIGN_MAP: the page-aligned mapping to undo */
} mem_entry;

/* A sorted array (by base) with a seqlock: writers hold g_lock and make seq odd while they
 * edit; readers retry when seq moved. Grown arrays are never freed, so a reader holding an
 * old pointer reads stale but mapped memory and retries. */
typedef struct mem_table {
    _Atomic uint64_t seq;
    mem_entry *_Atomic entries;
    _Atomic size_t count;
    size_t capacity;
} mem_table;

static mem_table g_allocs;    /* device, host pinned/registered, managed, mapped VMM ranges */
static mem_table g_reserves;  /* cuMemAddressReserve ranges */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t g_serial;

static bool table_find(mem_table *t, uint64_t addr, mem_entry *out, int max_tries)
{
    for (int tries = 0; max_tries <= 0 || tries < max_tries; tries++) {
        uint64_t s1 = atomic_load_explicit(&t->seq, memory_order_acquire);
        if (s1 & 1) {
            __builtin_ia32_pause();
            continue;
        }
        const mem_entry *e = atomic_load_explicit(&t->entries, memory_order_acquire);
        size_t n = atomic_load_explicit(&t->count, memory_order_acquire);
        size_t lo = 0, hi = n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (e[mid].a.base <= addr)
                lo = mid + 1;
            else
                hi = mid;
        }
        bool found = false;
        mem_entry hit;
        if (lo > 0) {
            hit = e[lo - 1];
            found = addr - hit.a.base < hit.a.size;
        }
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&t->seq, memory_order_relaxed) == s1) {
            if (found && out)
                *out = hit;
            return found;
        }
    }
    return false;
}

/* Writers (g_lock held) below. */
static size_t table_index(const mem_table *t, uint64_t base)
{
    const mem_entry *e = t->entries;
    size_t lo = 0, hi = t->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (e[mid].a.base < base)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* True when [base, base+size) overlaps an entry. */
static bool table_overlaps(const mem_table *t, uint64_t base, uint64_t size)
{
    size_t i = table_index(t, base + size);  /* first entry starting at or after the end */
    if (i == 0)
        return false;
    const mem_entry *prev = &t->entries[i - 1];
    return prev->a.base + prev->a.size > base;
}

static int table_insert(mem_table *t, const mem_entry *m)
{
    if (t->count == t->capacity) {
        size_t cap = t->capacity ? t->capacity * 2 : 256;
        mem_entry *grown = malloc(cap * sizeof(*grown));
        if (grown == NULL)
            return TW_ERR_NOMEM;
        if (t->count)
            memcpy(grown, t->entries, t->count * sizeof(*grown));
        /* the old array stays allocated: lock-free readers may still hold it */
        atomic_store_explicit(&t->entries, grown, memory_order_release);
        t->capacity = cap;
    }
    size_t i = table_index(t, m->a.base);
    mem_entry *e = t->entries;
    atomic_fetch_add_explicit(&t->seq, 1, memory_order_acq_rel);
    memmove(&e[i + 1], &e[i], (t->count - i) * sizeof(*e));
    e[i] = *m;
    atomic_store_explicit(&t->count, t->count + 1, memory_order_release);
    atomic_fetch_add_explicit(&t->seq, 1, memory_order_release);
    return TW_OK;
}

/* Removes the entry starting at base; copies it to *out. */
static bool table_remove(mem_table *t, uint64_t base, mem_entry *out)
{
    size_t i = table_index(t, base);
    mem_entry *e = t->entries;
    if (i >= t->count || e[i].a.base != base)
        return false;
    if (out)
        *out = e[i];
    atomic_fetch_add_explicit(&t->seq, 1, memory_order_acq_rel);
    memmove(&e[i], &e[i + 1], (t->count - i - 1) * sizeof(*e));
    atomic_store_explicit(&t->count, t->count - 1, memory_order_release);
    atomic_fetch_add_explicit(&t->seq, 1, memory_order_release);
    return true;
}

/* ---- per-device accounting and the unbacked arena ---- */
typedef struct device_mem {
    uint64_t used_bytes;   /* charged: device allocations, managed memory, VMM handles */
    uint64_t peak_bytes;
    tw_extents arena;      /* unbacked ranges */
} device_mem;

static device_mem *g_dev;
static int g_dev_count;

static device_mem *dev_mem(int device)
{
    if (g_dev == NULL) {
        int n = tw_device_count();
        g_dev = calloc((size_t)n, sizeof(*g_dev));
        if (g_dev == NULL)
            return NULL;
        g_dev_count = n;
    }
    return device >= 0 && device < g_dev_count ? &g_dev[device] : NULL;
}

static void record_mem(uint16_t rec_kind, int device, int mem_kind, uint64_t addr, uint64_t bytes,
                       uint64_t used_after)
{
    tw_record *r = tw_trace_claim();
    if (r == NULL)
        return;
    r->device = (uint16_t)device;
    r->tid = tw_thread_id();
    r->issue_ns = r->begin_ns = r->end_ns = tw_now_ns();
    r->addr = addr;
    r->bytes = bytes;
    r->flags = (uint32_t)mem_kind;
    r->value = (int64_t)used_after;
    tw_trace_commit(r, rec_kind);
}

/* Charge `bytes` to a device: fails past its capacity, which the run's processes share
 * (ipc.c; g_lock held). */
static int charge(device_mem *d, uint64_t bytes)
{
    if (tw_ipc_capacity_charge((int)(d - g_dev), bytes, tw_spec()->memory_bytes) != TW_OK)
        return TW_ERR_NOMEM;
    d->used_bytes += bytes;
    if (d->used_bytes > d->peak_bytes)
        d->peak_bytes = d->used_bytes;
    return TW_OK;
}

static void uncharge(device_mem *d, uint64_t bytes)
{
    tw_ipc_capacity_uncharge((int)(d - g_dev), bytes);
    d->used_bytes = bytes > d->used_bytes ? 0 : d->used_bytes - bytes;
}

/* One reservation per device: room for 4x its memory so fragmentation never starves it
 * (address space is cheap: PROT_NONE + MAP_NORESERVE takes neither RAM nor swap). */
static int arena_init(device_mem *d)
{
    if (d->arena.bytes)
        return TW_OK;
    uint64_t bytes = round_up(4 * tw_spec()->memory_bytes, GIB);
    if (bytes < 64 * GIB)
        bytes = 64 * GIB;
    void *p = mmap(NULL, bytes + TW_VMM_GRANULARITY, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        TW_ERROR("cannot reserve %llu bytes of address space for device memory: %s",
                 (unsigned long long)bytes, strerror(errno));
        return TW_ERR_NOMEM;
    }
    return tw_extents_init(&d->arena, round_up((uint64_t)p, TW_VMM_GRANULARITY), bytes);
}

/* An unbacked device range: from the arena, else (fragmented) a mapping of its own. */
static int unbacked_take(device_mem *d, uint64_t bytes, uint64_t *base, uint8_t *origin)
{
    int rc = arena_init(d);
    if (rc != TW_OK)
        return rc;
    *base = tw_extents_take(&d->arena, bytes);
    *origin = ORIGIN_ARENA;
    if (*base)
        return TW_OK;
    void *p = mmap(NULL, bytes + TW_VMM_GRANULARITY, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return TW_ERR_NOMEM;
    *base = round_up((uint64_t)p, TW_VMM_GRANULARITY);
    *origin = ORIGIN_MMAP;
    return TW_OK;
}

static void unbacked_give(device_mem *d, uint64_t base, uint64_t bytes, uint8_t origin)
{
    if (origin == ORIGIN_ARENA)
        tw_extents_give(&d->arena, base, bytes);   /* never touched (PROT_NONE): nothing to discard */
    else
        munmap((void *)base, bytes);  /* the alignment slack stays reserved: harmless */
}

static bool in_arena(uint64_t addr, int *device)
{
    for (int i = 0; g_dev && i < g_dev_count; i++) {
        if (tw_extents_contains(&g_dev[i].arena, addr)) {
            *device = i;
            return true;
        }
    }
    return false;
}

/* ---- allocation ---- */
static uint64_t release_entry(const mem_entry *m);

int tw_mem_alloc(int device, uint64_t size, int kind, void **out_ptr)
{
    *out_ptr = NULL;
    if (size == 0)
        return TW_OK;
    if (kind != TW_MEM_HOST_PINNED && !tw_device_valid(device))
        return TW_ERR_INVALID;
    if (kind != TW_MEM_DEVICE && kind != TW_MEM_HOST_PINNED && kind != TW_MEM_MANAGED)
        return TW_ERR_INVALID;
    uint64_t threshold = tw_config_get()->backed_threshold;
    mem_entry m = {0};
    m.a.size = size;
    m.a.device = kind == TW_MEM_HOST_PINNED ? -1 : device;
    m.a.kind = kind;
    m.a.id = atomic_fetch_add(&g_serial, 1) + 1;

    pthread_mutex_lock(&g_lock);
    device_mem *d = kind == TW_MEM_HOST_PINNED ? NULL : dev_mem(device);
    int rc = TW_OK;
    if (kind == TW_MEM_DEVICE) {
        m.a.backed = size <= threshold;
        m.charged_bytes = m.a.backed ? round_up(size, TW_BACKED_ALIGN)
                                     : round_up(size, TW_VMM_GRANULARITY);
        rc = d ? charge(d, m.charged_bytes) : TW_ERR_INVALID;
        if (rc == TW_OK) {
            if (m.a.backed) {
                /* shared memory (ipc.c): another process may map the same bytes by IPC */
                void *p = tw_ipc_backed_alloc(m.charged_bytes);
                rc = p != NULL ? TW_OK : TW_ERR_NOMEM;
                m.a.base = (uint64_t)p;
                m.origin = ORIGIN_SHARED;
            } else {
                rc = unbacked_take(d, m.charged_bytes, &m.a.base, &m.origin);
            }
            if (rc != TW_OK)
                uncharge(d, m.charged_bytes);
        }
    } else {
        /* pinned and managed memory are real host memory, page-aligned like the driver's */
        m.a.backed = true;
        m.charged_bytes = kind == TW_MEM_MANAGED ? round_up(size, TW_VMM_GRANULARITY) : 0;
        rc = m.charged_bytes ? charge(d, m.charged_bytes) : TW_OK;
        if (rc == TW_OK) {
            void *p = mmap(NULL, round_up(size, 4096), PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) {
                if (m.charged_bytes)
                    uncharge(d, m.charged_bytes);
                rc = TW_ERR_NOMEM;
            } else {
                m.a.base = (uint64_t)p;
                m.origin = ORIGIN_MMAP;
            }
        }
    }
    if (rc == TW_OK && table_insert(&g_allocs, &m) != TW_OK) {
        TW_ERROR("allocation table cannot grow: out of host memory");
        release_entry(&m);
        rc = TW_ERR_NOMEM;
    }
    uint64_t used_after = d ? d->used_bytes : 0;
    pthread_mutex_unlock(&g_lock);
    if (rc != TW_OK)
        return rc;
    if (m.charged_bytes)
        record_mem(TW_REC_ALLOC, device, kind, m.a.base, size, used_after);
    *out_ptr = (void *)m.a.base;
    return TW_OK;
}

/* Gives an entry's memory back (g_lock held); returns the device's bytes in use after. */
static uint64_t release_entry(const mem_entry *m)
{
    device_mem *d = m->a.device >= 0 ? dev_mem(m->a.device) : NULL;
    switch (m->origin) {
    case ORIGIN_HEAP: free((void *)m->a.base); break;
    case ORIGIN_SHARED: tw_ipc_backed_free((void *)m->a.base, m->a.size); break;
    case ORIGIN_FOREIGN_MAP: munmap((void *)m->map_base, m->map_bytes); break;
    case ORIGIN_ARENA:
    case ORIGIN_MMAP:
        if (m->a.kind == TW_MEM_DEVICE)
            unbacked_give(d, m->a.base, round_up(m->a.size, TW_VMM_GRANULARITY), m->origin);
        else
            munmap((void *)m->a.base, round_up(m->a.size, 4096));
        break;
    default: break;
    }
    if (d && m->charged_bytes)
        uncharge(d, m->charged_bytes);
    return d ? d->used_bytes : 0;
}

int tw_mem_free(void *ptr)
{
    if (ptr == NULL)
        return TW_OK;
    mem_entry m;
    pthread_mutex_lock(&g_lock);
    size_t i = table_index(&g_allocs, (uint64_t)ptr);
    bool ok = i < g_allocs.count && g_allocs.entries[i].a.base == (uint64_t)ptr;
    int kind = ok ? g_allocs.entries[i].a.kind : 0;
    if (!ok || kind == TW_MEM_HOST_REGISTERED || kind == TW_MEM_VMM_PHYSICAL ||
        kind == TW_MEM_VMM_RESERVE) {
        pthread_mutex_unlock(&g_lock);
        return ok ? TW_ERR_INVALID : TW_ERR_NOT_FOUND;
    }
    table_remove(&g_allocs, (uint64_t)ptr, &m);
    uint64_t used_after = release_entry(&m);
    pthread_mutex_unlock(&g_lock);
    if (m.charged_bytes)
        record_mem(TW_REC_FREE, m.a.device, m.a.kind, m.a.base, m.a.size, used_after);
    return TW_OK;
}

bool tw_mem_lookup(const void *ptr, tw_alloc *out)
{
    mem_entry m;
    if (!table_find(&g_allocs, (uint64_t)ptr, &m, 0))
        return false;
    if (out)
        *out = m.a;
    return true;
}

/* IPC: another process's allocation opened here. With its bytes mapped (f->host, a backed
 * allocation of the owner's) the range is backed and shared; otherwise it is unbacked whatever
 * its size. It charges nothing (the owner holds it) and remembers its owner. */
int tw_mem_map_foreign(int device, uint64_t size, const tw_foreign *f, void **out_ptr)
{
    if (!tw_device_valid(device) || size == 0)
        return TW_ERR_INVALID;
    mem_entry m = {0};
    m.a.size = size;
    m.a.device = device;
    m.a.kind = TW_MEM_DEVICE;
    m.a.id = atomic_fetch_add(&g_serial, 1) + 1;
    m.a.owner_pid = f->owner_pid;
    m.a.owner_base = f->owner_base;
    m.foreign = true;
    pthread_mutex_lock(&g_lock);
    int rc = TW_OK;
    if (f->host != NULL) {
        m.a.base = (uint64_t)f->host;
        m.a.backed = true;
        m.origin = ORIGIN_FOREIGN_MAP;
        m.map_base = f->map_base;
        m.map_bytes = f->map_bytes;
    } else {
        rc = unbacked_take(dev_mem(device), round_up(size, TW_VMM_GRANULARITY), &m.a.base, &m.origin);
    }
    if (rc == TW_OK)
        rc = table_insert(&g_allocs, &m);
    pthread_mutex_unlock(&g_lock);
    if (rc == TW_OK)
        *out_ptr = (void *)m.a.base;
    return rc;
}

/* A forked child did not inherit the backed arena (ipc.c): its allocations are not the child's. */
void tw_mem_after_fork(void)
{
    pthread_mutex_init(&g_lock, NULL);
    for (size_t i = 0; i < g_allocs.count;) {
        if (g_allocs.entries[i].origin == ORIGIN_SHARED)
            table_remove(&g_allocs, g_allocs.entries[i].a.base, NULL);
        else
            i++;
    }
}

/* Free memory of a device as every process of the run uses it (this one's context included:
 * asking creates it, as on the GPU). */
void tw_mem_info(int device, uint64_t *free_bytes, uint64_t *total_bytes)
{
    const tw_gpu_spec *s = tw_spec();
    tw_ipc_capacity_charge(device, 0, s->memory_bytes);
    uint64_t used = tw_ipc_device_used(device);
    if (total_bytes)
        *total_bytes = s->memory_bytes;
    if (free_bytes)
        *free_bytes = used < s->memory_bytes ? s->memory_bytes - used : 0;
}

uint64_t tw_mem_used(int device)
{
    pthread_mutex_lock(&g_lock);
    device_mem *d = dev_mem(device);
    uint64_t used = d ? d->used_bytes : 0;
    pthread_mutex_unlock(&g_lock);
    return used;
}

uint64_t tw_mem_peak(int device)
{
    pthread_mutex_lock(&g_lock);
    device_mem *d = dev_mem(device);
    uint64_t peak = d ? d->peak_bytes : 0;
    pthread_mutex_unlock(&g_lock);
    return peak;
}

int tw_mem_host_register(void *ptr, uint64_t size)
{
    if (ptr == NULL || size == 0)
        return TW_ERR_INVALID;
    mem_entry m = {0};
    m.a.base = (uint64_t)ptr;
    m.a.size = size;
    m.a.device = -1;
    m.a.kind = TW_MEM_HOST_REGISTERED;
    m.a.backed = true;
    m.a.id = atomic_fetch_add(&g_serial, 1) + 1;
    m.origin = ORIGIN_CALLER;
    pthread_mutex_lock(&g_lock);
    int rc = table_overlaps(&g_allocs, m.a.base, size) ? TW_ERR_INVALID
                                                       : table_insert(&g_allocs, &m);
    pthread_mutex_unlock(&g_lock);
    return rc;
}

int tw_mem_host_unregister(void *ptr)
{
    pthread_mutex_lock(&g_lock);
    size_t i = table_index(&g_allocs, (uint64_t)ptr);
    int rc = TW_ERR_NOT_FOUND;
    if (i < g_allocs.count && g_allocs.entries[i].a.base == (uint64_t)ptr &&
        g_allocs.entries[i].a.kind == TW_MEM_HOST_REGISTERED) {
        table_remove(&g_allocs, (uint64_t)ptr, NULL);
        rc = TW_OK;
    }
    pthread_mutex_unlock(&g_lock);
    return rc;
}

/* Flags given to cudaHostAlloc / cudaHostRegister, kept for cudaHostGetFlags. */
int tw_mem_set_flags(const void *ptr, uint32_t flags)
{
    pthread_mutex_lock(&g_lock);
    size_t i = table_index(&g_allocs, (uint64_t)ptr);
    int rc = TW_ERR_NOT_FOUND;
    if (i < g_allocs.count && g_allocs.entries[i].a.base == (uint64_t)ptr) {
        g_allocs.entries[i].user_flags = flags;  /* not read by lookups: no seqlock bump */
        rc = TW_OK;
    }
    pthread_mutex_unlock(&g_lock);
    return rc;
}

bool tw_mem_get_flags(const void *ptr, uint32_t *flags)
{
    mem_entry m;
    if (!table_find(&g_allocs, (uint64_t)ptr, &m, 0))
        return false;
    *flags = m.user_flags;
    return true;
}

/* ---- copies ---- */
static bool is_device_kind(int kind)
{
    return kind == TW_MEM_DEVICE || kind == TW_MEM_MANAGED || kind == TW_MEM_VMM_PHYSICAL;
}

int tw_mem_copy_kind(const void *dst, const void *src)
{
    tw_alloc d, s;
    bool dst_known = tw_mem_lookup(dst, &d), src_known = tw_mem_lookup(src, &s);
    bool dst_dev = dst_known && is_device_kind(d.kind);
    bool src_dev = src_known && is_device_kind(s.kind);
    if (dst_dev && src_dev)
        return d.device == s.device ? TW_COPY_D2D : TW_COPY_PEER;
    if (dst_dev)
        return src_known ? TW_COPY_H2D_PINNED : TW_COPY_H2D_PAGEABLE;
    if (src_dev)
        return dst_known ? TW_COPY_D2H_PINNED : TW_COPY_D2H_PAGEABLE;
    return TW_COPY_H2H;
}

/* How many of `bytes` at p the host may touch: all of plain host memory; a backed
 * allocation up to its end; nothing of an unbacked one. */
uint64_t tw_mem_host_bytes(const void *p, uint64_t bytes)
{
    mem_entry m;
    if (!table_find(&g_allocs, (uint64_t)p, &m, 0))
        return bytes;
    if (!m.a.backed)
        return 0;
    uint64_t room = m.a.base + m.a.size - (uint64_t)p;
    return bytes < room ? bytes : room;
}

void tw_mem_copy_data(void *dst, const void *src, uint64_t bytes)
{
    /* a collective's received bytes land before anything reads or overwrites them */
    tw_coll_materialize_range(src, bytes);
    tw_coll_materialize_range(dst, bytes);
    uint64_t n = tw_mem_host_bytes(dst, bytes);
    uint64_t from = tw_mem_host_bytes(src, bytes);
    if (from < n)
        n = from;
    if (n)
        memmove(dst, src, n);
}

void tw_mem_set_data(void *dst, int value, uint64_t bytes)
{
    tw_coll_materialize_range(dst, bytes);
    uint64_t n = tw_mem_host_bytes(dst, bytes);
    if (n)
        memset(dst, value, n);
}

/* ---- VMM ---- */
typedef struct vmm_handle {
    int device;
    uint64_t size;
    int refs;          /* cuMemCreate / cuMemRetainAllocationHandle minus cuMemRelease */
    int maps;          /* live cuMemMap's of it */
    bool charged;      /* imported handles belong to another process */
    bool live;
    int32_t owner_pid; /* imported: the process that made it; 0: made here */
    int storage_fd;    /* backed: the memfd holding its bytes (this process's arena, or the
                          maker's opened here), -1: unbacked */
    uint64_t storage_offset;
    void *storage_taken; /* made here and backed: the arena range to give back */
    tw_mcast_group *mcast; /* a multicast object (multicast.c): its shared page, and its fd */
    int mcast_fd;
} vmm_handle;

static vmm_handle *g_handles;  /* handle id = index + 1; ids are never reused */
static size_t g_handle_count, g_handle_capacity;

static vmm_handle *handle_get(uint64_t id)
{
    if (id == 0 || id > g_handle_count || !g_handles[id - 1].live)
        return NULL;
    return &g_handles[id - 1];
}

/* What a handle holds besides its capacity: its bytes, or its multicast object. */
static void drop_storage(vmm_handle *h)
{
    if (h->storage_taken != NULL)
        tw_ipc_backed_free_pages(h->storage_taken, h->size);
    else if (h->storage_fd >= 0)
        close(h->storage_fd);
    if (h->mcast != NULL)
        tw_mcast_close(h->mcast_fd, h->mcast);
    h->storage_taken = NULL, h->storage_fd = -1, h->mcast = NULL, h->mcast_fd = -1;
}

/* Frees a handle's capacity once it is neither referenced nor mapped (g_lock held). */
static void handle_maybe_free(uint64_t id, vmm_handle *h)
{
    if (h->refs > 0 || h->maps > 0)
        return;
    h->live = false;
    drop_storage(h);
    if (!h->charged)
        return;
    device_mem *d = dev_mem(h->device);
    uncharge(d, h->size);
    uint64_t used_after = d->used_bytes;
    pthread_mutex_unlock(&g_lock);
    record_mem(TW_REC_FREE, h->device, TW_MEM_VMM_PHYSICAL, id, h->size, used_after);
    pthread_mutex_lock(&g_lock);
}

uint64_t tw_vmm_granularity(void)
{
    return TW_VMM_GRANULARITY;
}

int tw_vmm_reserve(uint64_t size, uint64_t alignment, uint64_t addr_hint, void **out_ptr)
{
    if (size == 0 || size % TW_VMM_GRANULARITY != 0)
        return TW_ERR_INVALID;
    if (alignment < TW_VMM_GRANULARITY)
        alignment = TW_VMM_GRANULARITY;
    if (alignment & (alignment - 1))
        return TW_ERR_INVALID;
    void *p = MAP_FAILED;
    if (addr_hint && addr_hint % alignment == 0) {
        p = mmap((void *)addr_hint, size, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
        if (p != MAP_FAILED && (uint64_t)p != addr_hint) {
            munmap(p, size);  /* old kernels ignore MAP_FIXED_NOREPLACE */
            p = MAP_FAILED;
        }
    }
    uint64_t base;
    if (p != MAP_FAILED) {
        base = (uint64_t)p;
    } else {
        uint64_t span = size + alignment;
        p = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED)
            return TW_ERR_NOMEM;
        base = round_up((uint64_t)p, alignment);
        /* trim the slack so the reserve is exactly its range */
        if (base > (uint64_t)p)
            munmap(p, base - (uint64_t)p);
        uint64_t end = (uint64_t)p + span;
        if (end > base + size)
            munmap((void *)(base + size), end - (base + size));
    }
    mem_entry m = {0};
    m.a.base = base;
    m.a.size = size;
    m.a.device = -1;
    m.a.kind = TW_MEM_VMM_RESERVE;
    m.a.id = atomic_fetch_add(&g_serial, 1) + 1;
    m.origin = ORIGIN_VMM_RESERVE;
    pthread_mutex_lock(&g_lock);
    int rc = table_insert(&g_reserves, &m);
    pthread_mutex_unlock(&g_lock);
    if (rc != TW_OK) {
        munmap((void *)base, size);
        return rc;
    }
    *out_ptr = (void *)base;
    return TW_OK;
}

/* Removes the mappings inside [base, base+size) (g_lock held). */
static void unmap_range(uint64_t base, uint64_t size)
{
    for (;;) {
        size_t i = table_index(&g_allocs, base);
        if (i >= g_allocs.count)
            return;
        mem_entry *e = &g_allocs.entries[i];
        if (e->a.base >= base + size || e->a.kind != TW_MEM_VMM_PHYSICAL)
            return;
        mem_entry m;
        table_remove(&g_allocs, e->a.base, &m);
        if (m.a.backed)  /* the reserve's hole again; the bytes stay with the handle */
            mmap((void *)m.a.base, m.a.size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
                 -1, 0);
        vmm_handle *h = handle_get(m.vmm_handle);
        if (h) {
            h->maps--;
            handle_maybe_free(m.vmm_handle, h);
        }
    }
}

int tw_vmm_release(void *ptr, uint64_t size)
{
    pthread_mutex_lock(&g_lock);
    mem_entry r;
    if (!table_remove(&g_reserves, (uint64_t)ptr, &r)) {
        pthread_mutex_unlock(&g_lock);
        return TW_ERR_NOT_FOUND;
    }
    unmap_range(r.a.base, r.a.size);  /* CUDA wants them unmapped first: be forgiving */
    pthread_mutex_unlock(&g_lock);
    munmap((void *)r.a.base, r.a.size);
    return TW_OK;
}

/* Enters a handle; its storage is dropped if it cannot be. */
static int handle_insert(vmm_handle *made, uint64_t *out_handle)
{
    pthread_mutex_lock(&g_lock);
    device_mem *d = dev_mem(made->device);
    int rc = made->charged ? charge(d, made->size) : TW_OK;
    if (rc == TW_OK && g_handle_count == g_handle_capacity) {
        size_t cap = g_handle_capacity ? 2 * g_handle_capacity : 256;
        vmm_handle *grown = realloc(g_handles, cap * sizeof(*grown));
        if (grown == NULL) {
            if (made->charged)
                uncharge(d, made->size);
            rc = TW_ERR_NOMEM;
        } else {
            g_handles = grown;
            g_handle_capacity = cap;
        }
    }
    uint64_t id = 0, used_after = d->used_bytes;
    if (rc == TW_OK) {
        g_handles[g_handle_count++] = *made;
        id = g_handle_count;
    }
    pthread_mutex_unlock(&g_lock);
    if (rc != TW_OK) {
        drop_storage(made);
        return rc;
    }
    if (made->charged)
        record_mem(TW_REC_ALLOC, made->device, TW_MEM_VMM_PHYSICAL, id, made->size, used_after);
    *out_handle = id;
    return TW_OK;
}

static int handle_add(int device, uint64_t size, bool charged, const tw_vmm_share *share, uint64_t *out_handle)
{
    if (!tw_device_valid(device) || size == 0 || size % TW_VMM_GRANULARITY != 0)
        return TW_ERR_INVALID;
    vmm_handle made = {.device = device, .size = size, .refs = 1, .charged = charged, .live = true,
                       .storage_fd = -1, .mcast_fd = -1};
    if (share != NULL) {
        made.owner_pid = share->owner_pid;
        made.storage_fd = share->storage_pid > 0 && share->storage_fd >= 0
                              ? tw_ipc_open_peer_arena(share->storage_pid, share->storage_fd) : -1;
        made.storage_offset = share->storage_offset;
    } else if (size <= tw_config_get()->backed_threshold &&
               tw_ipc_backed_alloc_pages(size, &made.storage_taken, &made.storage_fd, &made.storage_offset) == NULL) {
        return TW_ERR_NOMEM;
    }
    return handle_insert(&made, out_handle);
}

/* cuMulticastCreate: a multicast object (multicast.c) as a handle that charges nothing; mapping
 * it gives an unbacked range. */
int tw_vmm_multicast_create(int device, uint64_t size, uint32_t devices, uint64_t *out_handle)
{
    if (!tw_device_valid(device))
        return TW_ERR_INVALID;
    vmm_handle made = {.device = device, .size = size, .refs = 1, .live = true, .storage_fd = -1};
    int rc = tw_mcast_create(size, devices, &made.mcast_fd, &made.mcast);
    return rc == TW_OK ? handle_insert(&made, out_handle) : rc;
}

/* cuMemImportFromShareableHandle of a multicast object's fd; TW_ERR_NOT_FOUND: the fd is not one. */
int tw_vmm_multicast_import(int device, int fd, uint64_t *out_handle)
{
    vmm_handle made = {.device = device, .refs = 1, .live = true, .storage_fd = -1};
    int rc = tw_mcast_open(fd, &made.mcast_fd, &made.mcast, &made.size);
    return rc == TW_OK ? handle_insert(&made, out_handle) : rc;
}

/* The multicast object of a handle (NULL: none) and the descriptor that shares it. */
tw_mcast_group *tw_vmm_multicast(uint64_t handle, int *fd)
{
    pthread_mutex_lock(&g_lock);
    vmm_handle *h = handle_get(handle);
    tw_mcast_group *g = h ? h->mcast : NULL;
    if (fd)
        *fd = h ? h->mcast_fd : -1;
    pthread_mutex_unlock(&g_lock);
    return g;
}

/* A handle no larger than backed_threshold keeps its bytes in the backed arena (ipc.c), so every
 * mapping of it, here or in a process that imported it, is the same memory. */
int tw_vmm_create(int device, uint64_t size, uint64_t *out_handle)
{
    return handle_add(device, size, true, NULL, out_handle);
}

/* A handle imported from another process (cuMemImportFromShareableHandle): no charge; its
 * maker's bytes when they are backed; its mappings name their owner, as IPC-opened memory does. */
int tw_vmm_import(int device, uint64_t size, const tw_vmm_share *share, uint64_t *out_handle)
{
    return handle_add(device, size, false, share, out_handle);
}

/* What an export of the handle tells the importer. */
int tw_vmm_share_info(uint64_t handle, tw_vmm_share *out)
{
    pthread_mutex_lock(&g_lock);
    vmm_handle *h = handle_get(handle);
    if (h)
        *out = (tw_vmm_share){.owner_pid = h->owner_pid ? h->owner_pid : getpid(), .storage_pid = getpid(),
                              .storage_fd = h->storage_fd, .storage_offset = h->storage_offset};
    pthread_mutex_unlock(&g_lock);
    return h ? TW_OK : TW_ERR_INVALID;
}

int tw_vmm_release_handle(uint64_t handle)
{
    pthread_mutex_lock(&g_lock);
    vmm_handle *h = handle_get(handle);
    int rc = TW_ERR_INVALID;
    if (h && h->refs > 0) {
        h->refs--;
        handle_maybe_free(handle, h);
        rc = TW_OK;
    }
    pthread_mutex_unlock(&g_lock);
    return rc;
}

int tw_vmm_handle_info(uint64_t handle, int *device, uint64_t *size)
{
    pthread_mutex_lock(&g_lock);
    vmm_handle *h = handle_get(handle);
    if (h) {
        if (device)
            *device = h->device;
        if (size)
            *size = h->size;
    }
    pthread_mutex_unlock(&g_lock);
    return h ? TW_OK : TW_ERR_INVALID;
}

/* cuMemRetainAllocationHandle: the handle mapped at ptr, with one more reference. */
int tw_vmm_retain_at(const void *ptr, uint64_t *out_handle)
{
    mem_entry m;
    if (!table_find(&g_allocs, (uint64_t)ptr, &m, 0) || m.a.kind != TW_MEM_VMM_PHYSICAL)
        return TW_ERR_NOT_FOUND;
    pthread_mutex_lock(&g_lock);
    vmm_handle *h = handle_get(m.vmm_handle);
    if (h)
        h->refs++;
    pthread_mutex_unlock(&g_lock);
    if (h == NULL)
        return TW_ERR_NOT_FOUND;
    *out_handle = m.vmm_handle;
    return TW_OK;
}

int tw_vmm_map(void *ptr, uint64_t size, uint64_t offset, uint64_t handle)
{
    uint64_t base = (uint64_t)ptr;
    if (size == 0 || base % TW_VMM_GRANULARITY || size % TW_VMM_GRANULARITY)
        return TW_ERR_INVALID;
    mem_entry r;
    if (!table_find(&g_reserves, base, &r, 0) || base + size > r.a.base + r.a.size)
        return TW_ERR_INVALID;
    pthread_mutex_lock(&g_lock);
    vmm_handle *h = handle_get(handle);
    int rc = TW_OK;
    if (h == NULL || offset + size > h->size || offset % 4096 != 0 || table_overlaps(&g_allocs, base, size))
        rc = TW_ERR_INVALID;
    mem_entry m = {0};
    if (rc == TW_OK) {
        m.a.base = base;
        m.a.size = size;
        m.a.device = h->device;
        m.a.kind = TW_MEM_VMM_PHYSICAL;
        m.a.backed = h->storage_fd >= 0;
        m.a.owner_pid = h->owner_pid;
        m.a.id = atomic_fetch_add(&g_serial, 1) + 1;
        m.vmm_handle = handle;
        m.origin = ORIGIN_VMM_MAP;
        if (m.a.backed && mmap(ptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, h->storage_fd,
                               (off_t)(h->storage_offset + offset)) == MAP_FAILED)
            rc = TW_ERR_NOMEM;
    }
    if (rc == TW_OK) {
        rc = table_insert(&g_allocs, &m);
        if (rc == TW_OK)
            h->maps++;
    }
    pthread_mutex_unlock(&g_lock);
    return rc;
}

int tw_vmm_unmap(void *ptr, uint64_t size)
{
    mem_entry r;
    if (!table_find(&g_reserves, (uint64_t)ptr, &r, 0))
        return TW_ERR_INVALID;
    pthread_mutex_lock(&g_lock);
    unmap_range((uint64_t)ptr, size);
    pthread_mutex_unlock(&g_lock);
    return TW_OK;
}

/* ---- host dereference of device memory: name the allocation, then die as the GPU would not
 * let us live. Async-signal-safe: lookups are lock-free (bounded retries), snprintf formats
 * only integers. ---- */
static struct sigaction g_prev_segv, g_prev_bus;

static void die_with_message(int sig, const siginfo_t *info, const char *msg, int len)
{
    if (len > 0)
        (void)!write(STDERR_FILENO, msg, (size_t)len);
    tw_crash_report(sig, info, len > 0 ? msg : NULL);
    tw_trace_set_exit(128 + sig, sig);
    struct sigaction dfl = {0};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    _exit(128 + sig);
}

static void chain(int sig, siginfo_t *info, void *uctx)
{
    const struct sigaction *prev = sig == SIGBUS ? &g_prev_bus : &g_prev_segv;
    if (prev->sa_flags & SA_SIGINFO) {
        if (prev->sa_sigaction) {
            prev->sa_sigaction(sig, info, uctx);
            return;
        }
    } else if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
        prev->sa_handler(sig);
        return;
    }
    die_with_message(sig, info, NULL, 0);
}

static void on_fault(int sig, siginfo_t *info, void *uctx)
{
    uint64_t addr = (uint64_t)info->si_addr;
    char msg[320];
    int len = 0;
    mem_entry m;
    int device;
    if (info->si_code > 0 && table_find(&g_allocs, addr, &m, 1000) && !m.a.backed) {
        len = snprintf(msg, sizeof(msg),
                       "timewarp: host dereference of device memory at 0x%llx inside "
                       "allocation #%llu of %llu bytes on device %d (unbacked: larger than "
                       "TIMEWARP_BACKED_BYTES)\n",
                       (unsigned long long)addr, (unsigned long long)m.a.id,
                       (unsigned long long)m.a.size, m.a.device);
    } else if (info->si_code > 0 && table_find(&g_reserves, addr, &m, 1000)) {
        len = snprintf(msg, sizeof(msg),
                       "timewarp: host dereference of device memory at 0x%llx inside an "
                       "unmapped part of a cuMemAddressReserve range of %llu bytes\n",
                       (unsigned long long)addr, (unsigned long long)m.a.size);
    } else if (info->si_code > 0 && in_arena(addr, &device)) {
        len = snprintf(msg, sizeof(msg),
                       "timewarp: host dereference of device memory at 0x%llx on device %d: "
                       "no live allocation there (freed device memory?)\n",
                       (unsigned long long)addr, device);
    }
    if (len > 0)
        die_with_message(sig, info, msg, len < (int)sizeof(msg) ? len : (int)sizeof(msg) - 1);
    chain(sig, info, uctx);
}

__attribute__((constructor)) static void memory_install_fault_handler(void)
{
    struct sigaction sa = {0};
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_prev_segv);
    sigaction(SIGBUS, &sa, &g_prev_bus);
}
