/* CUDA runtime: allocation, host memory, pointer attributes, IPC handles, stream-ordered
 * allocation and memory pools. Copies and memsets live with the timeline (not here).
 * cudaFree synchronises the device; cudaFreeAsync is stream-ordered: the memory stays the
 * pool's until the stream reaches the free (later allocations on that stream may take it at
 * once, others once the free's point has passed in virtual time). */
#include <cuda_runtime_api.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tw_core.h"

/* memory.c and device.c, beyond tw_core.h */

static cudaError_t rt_status(int rc)
{
    switch (rc) {
    case TW_OK: return cudaSuccess;
    case TW_ERR_NOMEM: return (cudaError_t)tw_runtime_status(cudaErrorMemoryAllocation);
    default: return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    }
}

/* ---- stream-ordered frees: pending until their stream reaches them ---- */
typedef struct pending_free {
    void *ptr;
    tw_stream *stream;
    tw_event *reached;       /* recorded on the stream after the free */
} pending_free;

static pthread_mutex_t pending_lock = PTHREAD_MUTEX_INITIALIZER;
static pending_free *pending;
static size_t pending_count, pending_capacity;

static bool pending_contains_locked(const void *ptr)
{
    for (size_t i = 0; i < pending_count; i++)
        if (pending[i].ptr == ptr)
            return true;
    return false;
}

static int pending_add(void *ptr, tw_stream *s)
{
    tw_event *e = tw_event_create(0);
    if (e == NULL)
        return TW_ERR_NOMEM;
    pthread_mutex_lock(&pending_lock);
    if (pending_count == pending_capacity) {
        size_t capacity = pending_capacity ? pending_capacity * 2 : 64;
        pending_free *grown = realloc(pending, capacity * sizeof *grown);
        if (grown == NULL) {
            pthread_mutex_unlock(&pending_lock);
            return TW_ERR_NOMEM;
        }
        pending = grown;
        pending_capacity = capacity;
    }
    tw_event_record(e, s);
    pending[pending_count++] = (pending_free){ptr, s, e};
    pthread_mutex_unlock(&pending_lock);
    return TW_OK;
}

/* Give back the pending frees an allocation on `s` may reuse: those of s itself (stream order
 * makes them safe), those whose point the timeline has passed, and, with `wait_for_rest`, all
 * others after making s wait for them (the pool's internal dependencies). s NULL: a
 * non-stream-ordered allocation, which only gets the passed ones. */
static void pending_release(tw_stream *s, bool wait_for_rest)
{
    pthread_mutex_lock(&pending_lock);
    size_t kept = 0;
    for (size_t i = 0; i < pending_count; i++) {
        pending_free p = pending[i];
        bool reusable = p.stream == s || tw_event_query_done(p.reached);
        if (!reusable && wait_for_rest && s != NULL) {
            tw_stream_wait_event(s, p.reached);
            reusable = true;
        }
        if (reusable)
            tw_mem_free(p.ptr);
        else
            pending[kept++] = p;
    }
    pending_count = kept;
    pthread_mutex_unlock(&pending_lock);
}

static bool has_pending(void)
{
    return __atomic_load_n(&pending_count, __ATOMIC_RELAXED) != 0;
}

static cudaError_t device_alloc_on(void **devPtr, size_t size, int device, int kind, tw_stream *ordered)
{
    if (devPtr == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    tw_ctx_primary_activate(device);
    if (has_pending())
        pending_release(ordered, false);
    int rc = tw_mem_alloc(device, size, kind, devPtr);
    if (rc == TW_ERR_NOMEM && ordered != NULL && has_pending()) {
        pending_release(ordered, true);
        rc = tw_mem_alloc(device, size, kind, devPtr);
    }
    if (rc == TW_ERR_NOMEM)
        TW_INFO("out of device memory on device %d: %zu bytes requested, %llu in use", device,
                size, (unsigned long long)tw_mem_used(device));
    return rt_status(rc);
}

/* Allocations outside stream order are potentially unsafe calls while a capture runs. */
static cudaError_t device_alloc(void **devPtr, size_t size, int device, int kind)
{
    int capture = tw_capture_check_unsafe();
    if (capture != TW_OK)
        return (cudaError_t)tw_runtime_status(cudaErrorStreamCaptureUnsupported);
    return device_alloc_on(devPtr, size, device, kind, NULL);
}

TW_EXPORT cudaError_t cudaMalloc(void **devPtr, size_t size)
{
    return device_alloc(devPtr, size, tw_device_current(), TW_MEM_DEVICE);
}

static bool pending_free_of(const void *ptr)
{
    if (!has_pending())
        return false;
    pthread_mutex_lock(&pending_lock);
    bool found = pending_contains_locked(ptr);
    pthread_mutex_unlock(&pending_lock);
    return found;
}

/* cudaFree synchronises the device before the memory goes (the GPU may still use it). */
TW_EXPORT cudaError_t cudaFree(void *devPtr)
{
    if (tw_capture_check_unsafe() != TW_OK)
        return (cudaError_t)tw_runtime_status(cudaErrorStreamCaptureUnsupported);
    tw_ctx_primary_activate(tw_device_current());  /* cudaFree(0) is the classic init */
    if (devPtr == NULL)
        return cudaSuccess;
    tw_alloc a;
    if (!tw_mem_lookup(devPtr, &a) || a.base != (uint64_t)devPtr ||
        (a.kind != TW_MEM_DEVICE && a.kind != TW_MEM_MANAGED) || pending_free_of(devPtr))
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    tw_device_synchronize(a.device);
    return rt_status(tw_mem_free(devPtr));
}

TW_EXPORT cudaError_t cudaMallocManaged(void **devPtr, size_t size, unsigned int flags)
{
    if (flags & ~(unsigned)(cudaMemAttachGlobal | cudaMemAttachHost))
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    return device_alloc(devPtr, size, tw_device_current(), TW_MEM_MANAGED);
}

TW_EXPORT cudaError_t cudaMallocPitch(void **devPtr, size_t *pitch, size_t width, size_t height)
{
    if (pitch == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    size_t p = (width + 511) / 512 * 512;  /* the texture pitch the hardware wants */
    cudaError_t err = device_alloc(devPtr, p * height, tw_device_current(), TW_MEM_DEVICE);
    if (err == cudaSuccess)
        *pitch = p;
    return err;
}

TW_EXPORT cudaError_t cudaMalloc3D(struct cudaPitchedPtr *pitchedDevPtr, struct cudaExtent extent)
{
    if (pitchedDevPtr == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    size_t p = (extent.width + 511) / 512 * 512;
    void *ptr = NULL;
    cudaError_t err = device_alloc(&ptr, p * extent.height * extent.depth, tw_device_current(),
                                   TW_MEM_DEVICE);
    if (err == cudaSuccess)
        *pitchedDevPtr = (struct cudaPitchedPtr){ptr, p, extent.width, extent.height};
    return err;
}

TW_EXPORT cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes)
{
    uint64_t f, t;
    int d = tw_device_current();
    tw_ctx_primary_activate(d);
    tw_mem_info(d, &f, &t);
    if (free_bytes)
        *free_bytes = f;
    if (total_bytes)
        *total_bytes = t;
    return cudaSuccess;
}

/* ---- host memory ---- */
TW_EXPORT cudaError_t cudaHostAlloc(void **pHost, size_t size, unsigned int flags)
{
    if (tw_capture_check_unsafe() != TW_OK)
        return (cudaError_t)tw_runtime_status(cudaErrorStreamCaptureUnsupported);
    if (pHost == NULL || flags & ~(unsigned)(cudaHostAllocPortable | cudaHostAllocMapped |
                                             cudaHostAllocWriteCombined))
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    int rc = tw_mem_alloc(tw_device_current(), size, TW_MEM_HOST_PINNED, pHost);
    if (rc == TW_OK && *pHost)
        tw_mem_set_flags(*pHost, flags);
    return rt_status(rc);
}

TW_EXPORT cudaError_t cudaMallocHost(void **ptr, size_t size)
{
    return cudaHostAlloc(ptr, size, cudaHostAllocDefault);
}

TW_EXPORT cudaError_t cudaFreeHost(void *ptr)
{
    if (tw_capture_check_unsafe() != TW_OK)
        return (cudaError_t)tw_runtime_status(cudaErrorStreamCaptureUnsupported);
    if (ptr == NULL)
        return cudaSuccess;
    tw_alloc a;
    if (!tw_mem_lookup(ptr, &a) || a.base != (uint64_t)ptr || a.kind != TW_MEM_HOST_PINNED)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    return rt_status(tw_mem_free(ptr));
}

TW_EXPORT cudaError_t cudaHostRegister(void *ptr, size_t size, unsigned int flags)
{
    if (ptr == NULL || size == 0)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    tw_alloc a;
    if (tw_mem_lookup(ptr, &a))
        return (cudaError_t)tw_runtime_status(cudaErrorHostMemoryAlreadyRegistered);
    int rc = tw_mem_host_register(ptr, size);
    if (rc == TW_OK)
        tw_mem_set_flags(ptr, flags);
    return rc == TW_OK ? cudaSuccess : cudaErrorHostMemoryAlreadyRegistered;
}

TW_EXPORT cudaError_t cudaHostUnregister(void *ptr)
{
    return tw_mem_host_unregister(ptr) == TW_OK ? cudaSuccess : cudaErrorHostMemoryNotRegistered;
}

/* Unified addressing: a pinned or registered host pointer is its own device pointer. */
TW_EXPORT cudaError_t cudaHostGetDevicePointer(void **pDevice, void *pHost, unsigned int flags)
{
    tw_alloc a;
    if (pDevice == NULL || flags != 0 || !tw_mem_lookup(pHost, &a) ||
        (a.kind != TW_MEM_HOST_PINNED && a.kind != TW_MEM_HOST_REGISTERED))
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    *pDevice = pHost;
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaHostGetFlags(unsigned int *pFlags, void *pHost)
{
    tw_alloc a;
    uint32_t flags = 0;
    if (pFlags == NULL || !tw_mem_lookup(pHost, &a) || a.kind != TW_MEM_HOST_PINNED)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    tw_mem_get_flags(pHost, &flags);
    *pFlags = flags | cudaHostAllocMapped;  /* always mapped under unified addressing */
    return cudaSuccess;
}

/* Host memory the runtime never saw reports "unregistered" without an error (CUDA >= 11). */
TW_EXPORT cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *attributes,
                                               const void *ptr)
{
    if (attributes == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    memset(attributes, 0, sizeof(*attributes));
    tw_alloc a;
    if (!tw_mem_lookup(ptr, &a)) {
        attributes->type = cudaMemoryTypeUnregistered;
        attributes->device = -2;
        return cudaSuccess;
    }
    void *p = (void *)ptr;
    switch (a.kind) {
    case TW_MEM_HOST_PINNED:
    case TW_MEM_HOST_REGISTERED:
        attributes->type = cudaMemoryTypeHost;
        attributes->device = tw_device_current();
        attributes->devicePointer = p;
        attributes->hostPointer = p;
        break;
    case TW_MEM_MANAGED:
        attributes->type = cudaMemoryTypeManaged;
        attributes->device = a.device;
        attributes->devicePointer = p;
        attributes->hostPointer = p;
        break;
    default:
        attributes->type = cudaMemoryTypeDevice;
        attributes->device = a.device;
        attributes->devicePointer = p;
        break;
    }
    return cudaSuccess;
}

/* ---- IPC (ipc.c): the bytes of host-backed allocations are shared ---- */
TW_EXPORT cudaError_t cudaIpcGetMemHandle(cudaIpcMemHandle_t *handle, void *devPtr)
{
    if (handle == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    return tw_ipc_get(devPtr, handle->reserved) == TW_OK ? cudaSuccess : cudaErrorInvalidValue;
}

TW_EXPORT cudaError_t cudaIpcOpenMemHandle(void **devPtr, cudaIpcMemHandle_t handle,
                                           unsigned int flags)
{
    if (devPtr == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    int rc = tw_ipc_open(handle.reserved, devPtr);
    return rc == TW_ERR_NOMEM ? cudaErrorMemoryAllocation
           : rc == TW_OK      ? cudaSuccess
                              : cudaErrorInvalidResourceHandle;
}

TW_EXPORT cudaError_t cudaIpcCloseMemHandle(void *devPtr)
{
    return tw_mem_free(devPtr) == TW_OK ? cudaSuccess : cudaErrorInvalidValue;
}

/* ---- memory pools: a default pool per device plus created ones. Allocation is immediate;
 * usage attributes report the device's numbers (pools are not accounted apart). ---- */
#define TW_POOL_MAGIC 0x4c4f4f50u
typedef struct tw_pool {
    uint32_t magic;
    int device;
    _Atomic uint64_t release_threshold;
    _Atomic int reuse[3];   /* follow event deps, opportunistic, internal deps */
} tw_pool;

#define TW_MAX_POOL_DEVICES 256
static tw_pool g_default_pools[TW_MAX_POOL_DEVICES];
static tw_pool *_Atomic g_current_pools[TW_MAX_POOL_DEVICES];

static tw_pool *default_pool(int device)
{
    if (!tw_device_valid(device) || device >= TW_MAX_POOL_DEVICES)
        return NULL;
    tw_pool *p = &g_default_pools[device];
    if (p->magic != TW_POOL_MAGIC) {
        /* benign race: every writer stores the same values */
        p->device = device;
        for (int i = 0; i < 3; i++)
            p->reuse[i] = 1;
        p->magic = TW_POOL_MAGIC;
    }
    return p;
}

int tw_mem_pool_default(int device, void **out_pool)
{
    *out_pool = default_pool(device);
    return *out_pool ? TW_OK : TW_ERR_INVALID;
}

static tw_pool *as_pool(cudaMemPool_t pool)
{
    tw_pool *p = (tw_pool *)pool;
    return p && p->magic == TW_POOL_MAGIC ? p : NULL;
}

TW_EXPORT cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t *memPool, int device)
{
    if (memPool == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    tw_pool *p = default_pool(device);
    if (p == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidDevice);
    *memPool = (cudaMemPool_t)p;
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaDeviceGetMemPool(cudaMemPool_t *memPool, int device)
{
    if (memPool == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    tw_pool *p = default_pool(device);
    if (p == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidDevice);
    tw_pool *cur = g_current_pools[device];
    *memPool = (cudaMemPool_t)(cur ? cur : p);
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaDeviceSetMemPool(int device, cudaMemPool_t memPool)
{
    tw_pool *p = as_pool(memPool);
    if (default_pool(device) == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidDevice);
    if (p == NULL || p->device != device)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    g_current_pools[device] = p;
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaMemPoolCreate(cudaMemPool_t *memPool, const struct cudaMemPoolProps *props)
{
    if (memPool == NULL || props == NULL || props->location.type != cudaMemLocationTypeDevice ||
        !tw_device_valid(props->location.id))
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    tw_pool *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorMemoryAllocation);
    p->device = props->location.id;
    for (int i = 0; i < 3; i++)
        p->reuse[i] = 1;
    p->magic = TW_POOL_MAGIC;
    *memPool = (cudaMemPool_t)p;
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaMemPoolDestroy(cudaMemPool_t memPool)
{
    tw_pool *p = as_pool(memPool);
    if (p == NULL || p == default_pool(p->device))
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    if (g_current_pools[p->device] == p)
        g_current_pools[p->device] = NULL;
    p->magic = 0;
    free(p);
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t memPool, enum cudaMemPoolAttr attr,
                                              void *value)
{
    tw_pool *p = as_pool(memPool);
    if (p == NULL || value == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    switch (attr) {
    case cudaMemPoolReuseFollowEventDependencies:
    case cudaMemPoolReuseAllowOpportunistic:
    case cudaMemPoolReuseAllowInternalDependencies:
        p->reuse[attr - cudaMemPoolReuseFollowEventDependencies] = *(int *)value;
        return cudaSuccess;
    case cudaMemPoolAttrReleaseThreshold: p->release_threshold = *(uint64_t *)value; return cudaSuccess;
    case cudaMemPoolAttrReservedMemHigh:
    case cudaMemPoolAttrUsedMemHigh:
        return *(uint64_t *)value == 0 ? cudaSuccess : cudaErrorInvalidValue;  /* reset only */
    default: return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    }
}

TW_EXPORT cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t memPool, enum cudaMemPoolAttr attr,
                                              void *value)
{
    tw_pool *p = as_pool(memPool);
    if (p == NULL || value == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    switch (attr) {
    case cudaMemPoolReuseFollowEventDependencies:
    case cudaMemPoolReuseAllowOpportunistic:
    case cudaMemPoolReuseAllowInternalDependencies:
        *(int *)value = p->reuse[attr - cudaMemPoolReuseFollowEventDependencies];
        return cudaSuccess;
    case cudaMemPoolAttrReleaseThreshold: *(uint64_t *)value = p->release_threshold; return cudaSuccess;
    case cudaMemPoolAttrReservedMemCurrent:
    case cudaMemPoolAttrUsedMemCurrent: *(uint64_t *)value = tw_mem_used(p->device); return cudaSuccess;
    case cudaMemPoolAttrReservedMemHigh:
    case cudaMemPoolAttrUsedMemHigh: *(uint64_t *)value = tw_mem_peak(p->device); return cudaSuccess;
    default: return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    }
}

TW_EXPORT cudaError_t cudaMemPoolTrimTo(cudaMemPool_t memPool, size_t minBytesToKeep)
{
    if (as_pool(memPool) == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    if (has_pending())
        pending_release(NULL, false); /* frees the timeline has passed go back */
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaMemPoolSetAccess(cudaMemPool_t memPool,
                                           const struct cudaMemAccessDesc *descList, size_t count)
{
    return as_pool(memPool) ? cudaSuccess : cudaErrorInvalidValue;
}

TW_EXPORT cudaError_t cudaMemPoolGetAccess(enum cudaMemAccessFlags *flags, cudaMemPool_t memPool,
                                           struct cudaMemLocation *location)
{
    if (flags == NULL || as_pool(memPool) == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    *flags = cudaMemAccessFlagsProtReadWrite;
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaMallocFromPoolAsync(void **ptr, size_t size, cudaMemPool_t memPool,
                                              cudaStream_t stream)
{
    tw_pool *p = as_pool(memPool);
    if (p == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    return device_alloc_on(ptr, size, p->device, TW_MEM_DEVICE, tw_stream_resolve(stream));
}

/* Stream-ordered calls are work on their stream: the capture rules of enqueued work apply. */
static cudaError_t ordered_capture_check(tw_stream *s)
{
    switch (tw_capture_check_enqueue(s)) {
    case TW_OK: return cudaSuccess;
    case TW_ERR_CAPTURE_INVALIDATED: return (cudaError_t)tw_runtime_status(cudaErrorStreamCaptureInvalidated);
    default: return (cudaError_t)tw_runtime_status(cudaErrorStreamCaptureImplicit);
    }
}

TW_EXPORT cudaError_t cudaMallocAsync(void **devPtr, size_t size, cudaStream_t hStream)
{
    tw_stream *s = tw_stream_resolve(hStream);
    cudaError_t capture = ordered_capture_check(s);
    if (capture != cudaSuccess)
        return capture;
    return device_alloc_on(devPtr, size, tw_stream_device(s), TW_MEM_DEVICE, s);
}

/* Stream-ordered free: the memory is the pool's until the stream reaches this point. During a
 * capture the free is immediate (graph memory nodes are not modelled). */
TW_EXPORT cudaError_t cudaFreeAsync(void *devPtr, cudaStream_t hStream)
{
    if (devPtr == NULL)
        return cudaSuccess;
    tw_alloc a;
    if (!tw_mem_lookup(devPtr, &a) || a.base != (uint64_t)devPtr || a.kind != TW_MEM_DEVICE ||
        pending_free_of(devPtr))
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    tw_stream *s = tw_stream_resolve(hStream);
    cudaError_t capture = ordered_capture_check(s);
    if (capture != cudaSuccess)
        return capture;
    if (tw_stream_capture_graph(s) != NULL)
        return rt_status(tw_mem_free(devPtr));
    return rt_status(pending_add(devPtr, s));
}

/* Per-thread-default-stream spellings (nvcc --default-stream per-thread). */
cudaError_t cudaMallocAsync_ptsz(void **devPtr, size_t size, cudaStream_t hStream);
cudaError_t cudaFreeAsync_ptsz(void *devPtr, cudaStream_t hStream);
cudaError_t cudaMallocFromPoolAsync_ptsz(void **ptr, size_t size, cudaMemPool_t memPool,
                                         cudaStream_t stream);
TW_EXPORT cudaError_t cudaMallocAsync_ptsz(void **devPtr, size_t size, cudaStream_t hStream)
{
    return cudaMallocAsync(devPtr, size, hStream);
}

TW_EXPORT cudaError_t cudaFreeAsync_ptsz(void *devPtr, cudaStream_t hStream)
{
    return cudaFreeAsync(devPtr, hStream);
}

TW_EXPORT cudaError_t cudaMallocFromPoolAsync_ptsz(void **ptr, size_t size, cudaMemPool_t memPool,
                                                   cudaStream_t stream)
{
    return cudaMallocFromPoolAsync(ptr, size, memPool, stream);
}

/* Managed-memory hints: no migration to model, so they only validate. */
TW_EXPORT cudaError_t cudaMemAdvise(const void *devPtr, size_t count, enum cudaMemoryAdvise advice,
                                    struct cudaMemLocation location)
{
    return devPtr ? cudaSuccess : cudaErrorInvalidValue;
}

TW_EXPORT cudaError_t cudaMemPrefetchAsync(const void *devPtr, size_t count,
                                           struct cudaMemLocation location, unsigned int flags,
                                           cudaStream_t stream)
{
    return devPtr ? cudaSuccess : cudaErrorInvalidValue;
}

cudaError_t cudaMemPrefetchAsync_ptsz(const void *devPtr, size_t count,
                                      struct cudaMemLocation location, unsigned int flags,
                                      cudaStream_t stream);
TW_EXPORT cudaError_t cudaMemPrefetchAsync_ptsz(const void *devPtr, size_t count,
                                                struct cudaMemLocation location,
                                                unsigned int flags, cudaStream_t stream)
{
    return cudaMemPrefetchAsync(devPtr, count, location, flags, stream);
}
