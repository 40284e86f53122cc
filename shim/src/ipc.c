/* Device memory shared across the run's processes (CUDA IPC).
 *
 * Host-backed device allocations live in one memfd per process (the "backed arena", mapped
 * MAP_SHARED), so another process can map the same bytes: a cudaIpcMemHandle names the
 * exporter's pid, the arena's descriptor number and the allocation's offset in it, and
 * cudaIpcOpenMemHandle maps that range from /proc/<pid>/fd/<n>. Writes on either side are seen
 * by the other, as on a GPU. Unbacked (large) allocations have no bytes: the importer gets a
 * range of its own of the same size. Either way the imported range remembers its owner (pid,
 * base address), which is how a kernel that reaches into peers' memory is recognised as a
 * collective (launch.c).
 *
 * The backed arena is not inherited across fork (MADV_DONTFORK): CUDA allocations are not
 * usable in a forked child, and a shared mapping would let parent and child overwrite each
 * other's allocations.
 *
 * A device's capacity is shared by every process of the run (records.h tw_devices_page): an
 * allocation fails when all live processes together would exceed it, and cudaMemGetInfo and
 * NVML report what all of them use. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "process_alive.h"
#include "tw_core.h"

#define BACKED_ARENA_BYTES (256ULL << 30)  /* address space and sparse memfd size: no RAM until used */
#define BACKED_ALIGN 512ULL
#define PAGE 4096ULL
#define IPC_MAGIC 0x32435049574754ULL      /* "TWGIPC2" */
#define IPC_HANDLE_BYTES 64

typedef struct ipc_handle {
    uint64_t magic;
    int32_t pid;           /* the exporter */
    int32_t device;
    uint64_t base;         /* the allocation in the exporter */
    uint64_t size;
    int32_t memfd;         /* the exporter's backed arena descriptor, -1: unbacked */
    uint32_t reserved;
    uint64_t offset;       /* the allocation's offset in that arena */
} ipc_handle;
_Static_assert(sizeof(ipc_handle) <= IPC_HANDLE_BYTES, "IPC handle larger than CUDA's 64 bytes");

static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;
static int32_t usage_pid;
static tw_device_usage *my_usage;
static tw_extents arena;
static int arena_fd = -1;

static int arena_open_locked(void)
{
    if (arena_fd >= 0)
        return TW_OK;
    int fd = memfd_create("timewarp-device-memory", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)BACKED_ARENA_BYTES) != 0) {
        TW_ERROR("cannot create the shared device-memory arena: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return TW_ERR_NOMEM;
    }
    void *p = mmap(NULL, BACKED_ARENA_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (p == MAP_FAILED) {
        close(fd);
        return TW_ERR_NOMEM;
    }
    madvise(p, BACKED_ARENA_BYTES, MADV_DONTFORK);
    if (tw_extents_init(&arena, (uint64_t)p, BACKED_ARENA_BYTES) != TW_OK) {
        munmap(p, BACKED_ARENA_BYTES);
        close(fd);
        return TW_ERR_NOMEM;
    }
    arena_fd = fd;
    return TW_OK;
}

void *tw_ipc_backed_alloc(uint64_t bytes)
{
    pthread_mutex_lock(&arena_lock);
    uint64_t base = 0;
    if (arena_open_locked() == TW_OK)
        base = tw_extents_take(&arena, (bytes + BACKED_ALIGN - 1) / BACKED_ALIGN * BACKED_ALIGN);
    pthread_mutex_unlock(&arena_lock);
    return (void *)base;
}

void tw_ipc_backed_free(void *p, uint64_t bytes)
{
    uint64_t base = (uint64_t)p, size = (bytes + BACKED_ALIGN - 1) / BACKED_ALIGN * BACKED_ALIGN;
    pthread_mutex_lock(&arena_lock);
    /* whole pages inside the range go back to the system (neighbours may share the edges) */
    uint64_t first = (base + PAGE - 1) / PAGE * PAGE, last = (base + size) / PAGE * PAGE;
    if (last > first)
        madvise((void *)first, last - first, MADV_REMOVE);
    tw_extents_give(&arena, base, size);
    pthread_mutex_unlock(&arena_lock);
}

/* Page-aligned bytes in the backed arena for a VMM handle (cuMemCreate): another process maps
 * them from the arena's descriptor at *offset. *taken is what tw_ipc_backed_free_pages gives
 * back. */
void *tw_ipc_backed_alloc_pages(uint64_t bytes, void **taken, int *fd, uint64_t *offset)
{
    void *p = tw_ipc_backed_alloc(bytes + PAGE);
    *taken = p;
    if (p == NULL)
        return NULL;
    uint64_t aligned = ((uint64_t)p + PAGE - 1) / PAGE * PAGE;
    *fd = arena_fd;
    *offset = aligned - arena.base;
    return (void *)aligned;
}

/* Gives back what tw_ipc_backed_alloc_pages took for `bytes`. */
void tw_ipc_backed_free_pages(void *taken, uint64_t bytes)
{
    tw_ipc_backed_free(taken, bytes + PAGE);
}

/* Another process's backed arena, opened here (the caller closes it): -1 and a warning if not. */
int tw_ipc_open_peer_arena(int32_t pid, int32_t fd_there)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", pid, fd_there);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        TW_WARN("shared device memory: cannot open %s (%s): the bytes are not shared", path, strerror(errno));
    return fd;
}

bool tw_ipc_backed_contains(const void *p)
{
    return tw_extents_contains(&arena, (uint64_t)p);
}

void tw_ipc_after_fork(void)
{
    /* the child holds no device memory of its own yet: a slot of its own on first use */
    usage_pid = getpid();
    my_usage = NULL;
    /* the arena was not inherited (MADV_DONTFORK): the child starts its own on first use */
    pthread_mutex_init(&arena_lock, NULL);
    if (arena_fd >= 0)
        close(arena_fd);
    arena_fd = -1;
    memset(&arena, 0, sizeof arena);
}

/* ---- handles ---- */

int tw_ipc_get(const void *ptr, void *out_handle_bytes)
{
    tw_alloc a;
    if (!tw_mem_lookup(ptr, &a) || (a.kind != TW_MEM_DEVICE && a.kind != TW_MEM_MANAGED))
        return TW_ERR_INVALID;
    if (a.owner_pid != 0) {
        TW_WARN("cudaIpcGetMemHandle: %p was itself opened from another process's handle", ptr);
        return TW_ERR_INVALID;
    }
    ipc_handle h = {.magic = IPC_MAGIC, .pid = getpid(), .device = a.device, .base = a.base, .size = a.size,
                    .memfd = -1};
    if (a.backed && tw_ipc_backed_contains((void *)a.base)) {
        h.memfd = arena_fd;
        h.offset = a.base - arena.base;
    }
    memset(out_handle_bytes, 0, IPC_HANDLE_BYTES);
    memcpy(out_handle_bytes, &h, sizeof h);
    return TW_OK;
}

/* The exporter's bytes mapped here (page-aligned around the allocation), NULL if they cannot be. */
static void *map_exported(const ipc_handle *h, uint64_t *map_base, uint64_t *map_bytes)
{
    int fd = tw_ipc_open_peer_arena(h->pid, h->memfd);
    if (fd < 0)
        return NULL;
    uint64_t first = h->offset / PAGE * PAGE;
    uint64_t bytes = (h->offset + h->size + PAGE - 1) / PAGE * PAGE - first;
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)first);
    close(fd);
    if (p == MAP_FAILED)
        return NULL;
    *map_base = (uint64_t)p;
    *map_bytes = bytes;
    return (uint8_t *)p + (h->offset - first);
}

int tw_ipc_open(const void *handle_bytes, void **out_ptr)
{
    ipc_handle h;
    memcpy(&h, handle_bytes, sizeof h);
    if (h.magic != IPC_MAGIC || h.size == 0 || !tw_device_valid(h.device))
        return TW_ERR_INVALID;
    if (h.pid == getpid()) {
        TW_WARN("cudaIpcOpenMemHandle: a handle cannot be opened by the process that made it");
        return TW_ERR_INVALID;
    }
    tw_foreign foreign = {.owner_pid = h.pid, .owner_base = h.base};
    if (h.memfd >= 0)
        foreign.host = map_exported(&h, &foreign.map_base, &foreign.map_bytes);
    int rc = tw_mem_map_foreign(h.device, h.size, &foreign, out_ptr);
    if (rc != TW_OK && foreign.host != NULL)
        munmap((void *)foreign.map_base, foreign.map_bytes);
    return rc;
}

/* ---- a device's capacity across the run's processes ---- */

static tw_devices_page *usage_page;
static pthread_once_t usage_once = PTHREAD_ONCE_INIT;

static void usage_map(void)
{
    usage_pid = getpid();
    const char *run_dir = tw_config_get()->run_dir;
    if (run_dir != NULL) {
        char path[4200];
        snprintf(path, sizeof path, "%s/devices.page", run_dir);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 &&
            ((size_t)st.st_size >= sizeof(tw_devices_page) || ftruncate(fd, sizeof(tw_devices_page)) == 0)) {
            void *p = mmap(NULL, sizeof(tw_devices_page), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (p != MAP_FAILED)
                usage_page = p;
        }
        if (fd >= 0)
            close(fd);
    }
    if (usage_page == NULL)   /* outside a run: this process alone */
        usage_page = mmap(NULL, sizeof(tw_devices_page), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static bool alive(int32_t pid)
{
    return pid == usage_pid || tw_process_alive(pid);
}

static void usage_lock(void)
{
    for (uint32_t spins = 0;; spins++) {
        uint32_t holder = 0;
        if (__atomic_compare_exchange_n(&usage_page->lock, &holder, (uint32_t)usage_pid, 0, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return;
        if (spins > 20000 && holder != (uint32_t)usage_pid && !tw_process_alive((int32_t)holder))
            __atomic_compare_exchange_n(&usage_page->lock, &holder, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
        if (spins % 64 == 63)
            syscall(SYS_sched_yield);
    }
}

static void usage_unlock(void)
{
    __atomic_store_n(&usage_page->lock, 0, __ATOMIC_RELEASE);
}

/* This process's slot (lock held), claimed on first use; dead processes' slots are freed. */
static tw_device_usage *usage_slot_locked(void)
{
    if (my_usage != NULL && my_usage->pid == usage_pid)
        return my_usage;
    tw_device_usage *free_slot = NULL;
    for (uint32_t i = 0; i < TW_USAGE_PROCS; i++) {
        tw_device_usage *u = &usage_page->procs[i];
        if (u->pid != 0 && !alive(u->pid))
            memset(u, 0, sizeof *u);   /* its memory went with it */
        if (u->pid == 0 && free_slot == NULL)
            free_slot = u;
    }
    if (free_slot == NULL)
        return NULL;
    free_slot->pid = usage_pid;
    uint32_t index = (uint32_t)(free_slot - usage_page->procs) + 1;
    if (index > usage_page->high_water)
        usage_page->high_water = index;
    return my_usage = free_slot;
}

static uint64_t device_use_locked(int device)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < usage_page->high_water && i < TW_USAGE_PROCS; i++) {
        tw_device_usage *u = &usage_page->procs[i];
        if (u->pid != 0 && alive(u->pid))
            total += u->used_bytes[device];
    }
    return total;
}

int tw_ipc_capacity_charge(int device, uint64_t bytes, uint64_t capacity)
{
    if (device < 0 || device >= TW_USAGE_DEVICES)
        return TW_ERR_INVALID;
    pthread_once(&usage_once, usage_map);
    usage_lock();
    int rc = TW_ERR_NOMEM;
    tw_device_usage *mine = usage_slot_locked();
    if (mine != NULL) {
        /* a process's first memory on a device comes with its context's reserve */
        uint64_t reserve = mine->used_bytes[device] == 0 ? tw_spec()->reserved_bytes : 0;
        uint64_t in_use = device_use_locked(device);
        if (in_use <= capacity && bytes + reserve <= capacity - in_use) {
            mine->used_bytes[device] += bytes + reserve;
            rc = TW_OK;
        }
    }
    usage_unlock();
    return rc;
}

void tw_ipc_capacity_uncharge(int device, uint64_t bytes)
{
    if (device < 0 || device >= TW_USAGE_DEVICES)
        return;
    pthread_once(&usage_once, usage_map);
    usage_lock();
    tw_device_usage *mine = usage_slot_locked();
    if (mine != NULL) {
        uint64_t floor = tw_spec()->reserved_bytes;   /* the context stays */
        mine->used_bytes[device] = mine->used_bytes[device] > floor + bytes ? mine->used_bytes[device] - bytes : floor;
    }
    usage_unlock();
}

uint64_t tw_ipc_device_used(int device)
{
    if (device < 0 || device >= TW_USAGE_DEVICES)
        return 0;
    pthread_once(&usage_once, usage_map);
    usage_lock();
    uint64_t used = device_use_locked(device);
    usage_unlock();
    return used;
}

int tw_ipc_device_processes(int device, int32_t *pids, uint64_t *bytes, int max)
{
    if (device < 0 || device >= TW_USAGE_DEVICES)
        return 0;
    pthread_once(&usage_once, usage_map);
    usage_lock();
    int n = 0;
    for (uint32_t i = 0; i < usage_page->high_water && i < TW_USAGE_PROCS && n < max; i++) {
        tw_device_usage *u = &usage_page->procs[i];
        if (u->pid != 0 && u->used_bytes[device] > 0 && alive(u->pid)) {
            pids[n] = u->pid;
            bytes[n] = u->used_bytes[device];
            n++;
        }
    }
    usage_unlock();
    return n;
}
