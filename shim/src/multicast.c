/* NVLink multicast objects (cuMulticastCreate, cuMulticastAddDevice, cuMulticastBind*) across the
 * run's processes: what FlashInfer's MNNVL all-reduce and torch symmetric memory set up on an
 * NVSwitch node.
 *
 * A multicast object is one page of shared memory (a memfd, mapped by every process that holds
 * the object): its size, how many devices it was made for and the (process, device) pairs added
 * so far. Its shareable handle is that memfd, so importing it in another process (the fd passed
 * over a Unix socket) maps the same page. Mapping the object (cuMemMap) gives an address range
 * that carries no bytes: a multimem store or reduction only happens inside kernels, which never
 * run; the unicast memory bound to it is what holds data (memory.c), and kernels that use the
 * object also reach their peers' unicast buffers, which is how launch.c meets them. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tw_core.h"

#define MCAST_MAGIC 0x5453434d54574754ULL  /* "TGWTMCST" */
#define MCAST_MAX_MEMBERS 64

typedef struct mcast_member {
    int32_t pid;
    int32_t device;
} mcast_member;

struct tw_mcast_group {
    uint64_t magic;
    uint64_t size;
    uint32_t devices;          /* CUmulticastObjectProp.numDevices */
    _Atomic uint32_t count;    /* members added */
    mcast_member members[MCAST_MAX_MEMBERS];
};
_Static_assert(sizeof(tw_mcast_group) <= 4096, "a multicast object is one page");

static tw_mcast_group *map_group(int fd)
{
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    return p == MAP_FAILED ? NULL : p;
}

int tw_mcast_create(uint64_t size, uint32_t devices, int *out_fd, tw_mcast_group **out_group)
{
    if (size == 0 || size % tw_vmm_granularity() != 0 || devices == 0 || devices > MCAST_MAX_MEMBERS)
        return TW_ERR_INVALID;
    int fd = memfd_create("timewarp-multicast", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, 4096) != 0) {
        if (fd >= 0)
            close(fd);
        return TW_ERR_NOMEM;
    }
    tw_mcast_group *g = map_group(fd);
    if (g == NULL) {
        close(fd);
        return TW_ERR_NOMEM;
    }
    g->size = size;
    g->devices = devices;
    atomic_store(&g->count, 0);
    __atomic_store_n(&g->magic, MCAST_MAGIC, __ATOMIC_RELEASE);
    *out_fd = fd;
    *out_group = g;
    return TW_OK;
}

/* The object behind a shareable fd (kept open by the caller's dup), or TW_ERR_NOT_FOUND when the
 * fd is no multicast object. */
int tw_mcast_open(int fd, int *out_fd, tw_mcast_group **out_group, uint64_t *size)
{
    uint64_t magic = 0;
    if (pread(fd, &magic, sizeof magic, 0) != (ssize_t)sizeof magic || magic != MCAST_MAGIC)
        return TW_ERR_NOT_FOUND;
    int mine = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    tw_mcast_group *g = mine >= 0 ? map_group(mine) : NULL;
    if (g == NULL) {
        if (mine >= 0)
            close(mine);
        return TW_ERR_NOMEM;
    }
    *out_fd = mine;
    *out_group = g;
    *size = g->size;
    return TW_OK;
}

void tw_mcast_close(int fd, tw_mcast_group *g)
{
    if (g != NULL)
        munmap(g, 4096);
    if (fd >= 0)
        close(fd);
}

/* cuMulticastAddDevice: this process's device joins; more devices than the object was made for
 * is an error, as on the GPU. Adding the same device again is a no-op. */
int tw_mcast_add_device(tw_mcast_group *g, int device)
{
    int32_t pid = getpid();
    uint32_t n = atomic_load(&g->count);
    for (uint32_t i = 0; i < n && i < MCAST_MAX_MEMBERS; i++)
        if (g->members[i].pid == pid && g->members[i].device == device)
            return TW_OK;
    uint32_t slot = atomic_fetch_add(&g->count, 1);
    if (slot >= g->devices) {
        atomic_fetch_sub(&g->count, 1);
        return TW_ERR_INVALID;
    }
    g->members[slot] = (mcast_member){pid, device};
    return TW_OK;
}

uint64_t tw_mcast_size(const tw_mcast_group *g)
{
    return g->size;
}
