/* Driver API: allocation, host memory, pointer attributes, IPC and the virtual-memory family
 * (cuMemAddressReserve / Create / Map) that PyTorch's expandable segments use. */
#define _GNU_SOURCE
#include <cuda.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tw_core.h"

/* memory.c, device.c and api_runtime_memory.c, beyond tw_core.h */

static CUresult cu_status(int rc)
{
    switch (rc) {
    case TW_OK: return CUDA_SUCCESS;
    case TW_ERR_NOMEM: return CUDA_ERROR_OUT_OF_MEMORY;
    case TW_ERR_NOT_FOUND: return CUDA_ERROR_NOT_FOUND;
    default: return CUDA_ERROR_INVALID_VALUE;
    }
}

/* The driver allocates on the current context's device. */
static int ctx_device(void)
{
    void *c = tw_ctx_current();
    return c ? tw_ctx_device(c) : tw_device_current();
}

static bool is_device_kind(int kind)
{
    return kind == TW_MEM_DEVICE || kind == TW_MEM_MANAGED || kind == TW_MEM_VMM_PHYSICAL;
}

TW_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize)
{
    if (dptr == NULL || bytesize == 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (tw_capture_check_unsafe() != TW_OK)
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED; /* not stream-ordered: unsafe in a capture */
    void *p = NULL;
    int d = ctx_device();
    tw_ctx_primary_activate(d);
    int rc = tw_mem_alloc(d, bytesize, TW_MEM_DEVICE, &p);
    *dptr = (CUdeviceptr)p;
    return cu_status(rc);
}

TW_EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr *dptr, size_t *pPitch, size_t width,
                                      size_t height, unsigned int elementSize)
{
    if (pPitch == NULL || (elementSize != 4 && elementSize != 8 && elementSize != 16))
        return CUDA_ERROR_INVALID_VALUE;
    size_t pitch = (width + 511) / 512 * 512;
    CUresult r = cuMemAlloc_v2(dptr, pitch * height);
    if (r == CUDA_SUCCESS)
        *pPitch = pitch;
    return r;
}

TW_EXPORT CUresult cuMemAllocManaged(CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
    if (dptr == NULL || bytesize == 0)
        return CUDA_ERROR_INVALID_VALUE;
    void *p = NULL;
    int rc = tw_mem_alloc(ctx_device(), bytesize, TW_MEM_MANAGED, &p);
    *dptr = (CUdeviceptr)p;
    return cu_status(rc);
}

TW_EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr)
{
    tw_alloc a;
    void *p = (void *)dptr;
    if (p == NULL)
        return CUDA_SUCCESS;
    if (tw_capture_check_unsafe() != TW_OK)
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    if (!tw_mem_lookup(p, &a) || a.base != dptr ||
        (a.kind != TW_MEM_DEVICE && a.kind != TW_MEM_MANAGED))
        return CUDA_ERROR_INVALID_VALUE;
    tw_device_synchronize(a.device); /* the GPU may still use it: the free waits for the device */
    return cu_status(tw_mem_free(p));
}

TW_EXPORT CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total_bytes)
{
    uint64_t f, t;
    tw_mem_info(ctx_device(), &f, &t);
    if (free_bytes)
        *free_bytes = f;
    if (total_bytes)
        *total_bytes = t;
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuMemHostAlloc(void **pp, size_t bytesize, unsigned int Flags)
{
    if (pp == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    int rc = tw_mem_alloc(ctx_device(), bytesize, TW_MEM_HOST_PINNED, pp);
    if (rc == TW_OK && *pp)
        tw_mem_set_flags(*pp, Flags);
    return cu_status(rc);
}

TW_EXPORT CUresult cuMemAllocHost_v2(void **pp, size_t bytesize)
{
    return cuMemHostAlloc(pp, bytesize, 0);
}

TW_EXPORT CUresult cuMemFreeHost(void *p)
{
    tw_alloc a;
    if (!tw_mem_lookup(p, &a) || a.base != (uint64_t)p || a.kind != TW_MEM_HOST_PINNED)
        return CUDA_ERROR_INVALID_VALUE;
    return cu_status(tw_mem_free(p));
}

TW_EXPORT CUresult cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int Flags)
{
    tw_alloc a;
    if (p == NULL || bytesize == 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (tw_mem_lookup(p, &a))
        return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
    int rc = tw_mem_host_register(p, bytesize);
    if (rc == TW_OK)
        tw_mem_set_flags(p, Flags);
    return rc == TW_OK ? CUDA_SUCCESS : CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
}

#undef cuMemHostRegister
TW_EXPORT CUresult cuMemHostRegister(void *p, size_t bytesize, unsigned int Flags)
{
    return cuMemHostRegister_v2(p, bytesize, Flags);
}

TW_EXPORT CUresult cuMemHostUnregister(void *p)
{
    return tw_mem_host_unregister(p) == TW_OK ? CUDA_SUCCESS
                                              : CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
}

TW_EXPORT CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr *pdptr, void *p, unsigned int Flags)
{
    tw_alloc a;
    if (pdptr == NULL || Flags != 0 || !tw_mem_lookup(p, &a) ||
        (a.kind != TW_MEM_HOST_PINNED && a.kind != TW_MEM_HOST_REGISTERED))
        return CUDA_ERROR_INVALID_VALUE;
    *pdptr = (CUdeviceptr)p;
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuMemGetAddressRange_v2(CUdeviceptr *pbase, size_t *psize, CUdeviceptr dptr)
{
    tw_alloc a;
    if (!tw_mem_lookup((void *)dptr, &a))
        return CUDA_ERROR_NOT_FOUND;
    if (pbase)
        *pbase = a.base;
    if (psize)
        *psize = a.size;
    return CUDA_SUCCESS;
}

/* ---- pointer attributes ---- */
static CUresult pointer_attribute(void *data, CUpointer_attribute attribute, CUdeviceptr ptr,
                                  bool known, const tw_alloc *a)
{
    bool dev = known && is_device_kind(a->kind);
    bool host = known && (a->kind == TW_MEM_HOST_PINNED || a->kind == TW_MEM_HOST_REGISTERED);
    int device = dev ? a->device : tw_device_current();
    switch (attribute) {
    case CU_POINTER_ATTRIBUTE_CONTEXT:
        *(CUcontext *)data = (CUcontext)tw_ctx_primary(device);
        return known ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
        if (!known)
            return CUDA_ERROR_INVALID_VALUE;
        *(unsigned int *)data = dev ? CU_MEMORYTYPE_DEVICE : CU_MEMORYTYPE_HOST;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
        /* Triton tells CPU tensors apart by this failing for plain host memory */
        if (!known)
            return CUDA_ERROR_INVALID_VALUE;
        *(CUdeviceptr *)data = ptr;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
        if (!host && !(known && a->kind == TW_MEM_MANAGED))
            return CUDA_ERROR_INVALID_VALUE;
        *(void **)data = (void *)ptr;
        return CUDA_SUCCESS;
    case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS: *(int *)data = 1; break;
    case CU_POINTER_ATTRIBUTE_BUFFER_ID: *(unsigned long long *)data = known ? a->id : 0; break;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED: *(int *)data = known && a->kind == TW_MEM_MANAGED; break;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: *(int *)data = device; break;
    case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE:
        *(int *)data = known && a->kind == TW_MEM_DEVICE;
        break;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR: *(CUdeviceptr *)data = known ? a->base : 0; break;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE: *(size_t *)data = known ? a->size : 0; break;
    case CU_POINTER_ATTRIBUTE_MAPPED: *(int *)data = known; break;
    case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES:
        *(unsigned long long *)data = known && a->kind == TW_MEM_VMM_PHYSICAL
                                          ? CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR
                                          : CU_MEM_HANDLE_TYPE_NONE;
        break;
    case CU_POINTER_ATTRIBUTE_IS_GPU_DIRECT_RDMA_CAPABLE: *(int *)data = dev; break;
    case CU_POINTER_ATTRIBUTE_ACCESS_FLAGS:
        *(unsigned int *)data = known ? CU_POINTER_ATTRIBUTE_ACCESS_FLAG_READWRITE
                                      : CU_POINTER_ATTRIBUTE_ACCESS_FLAG_NONE;
        break;
    case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE: {
        void *pool = NULL;
        if (dev && a->kind == TW_MEM_DEVICE)
            tw_mem_pool_default(a->device, &pool);
        *(CUmemoryPool *)data = (CUmemoryPool)pool;
        break;
    }
    case CU_POINTER_ATTRIBUTE_MAPPING_SIZE: *(size_t *)data = known ? a->size : 0; break;
    case CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR: *(void **)data = known ? (void *)a->base : NULL; break;
    case CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID: *(unsigned long long *)data = known ? a->id : 0; break;
    default:
        TW_WARN("cuPointerGetAttribute: attribute %d not supported", (int)attribute);
        return CUDA_ERROR_INVALID_VALUE;
    }
    return known ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

TW_EXPORT CUresult cuPointerGetAttribute(void *data, CUpointer_attribute attribute, CUdeviceptr ptr)
{
    if (data == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    tw_alloc a;
    bool known = tw_mem_lookup((void *)ptr, &a);
    return pointer_attribute(data, attribute, ptr, known, &a);
}

/* Unlike the singular call, unknown pointers succeed with zeroed values (driver docs). */
TW_EXPORT CUresult cuPointerGetAttributes(unsigned int numAttributes,
                                          CUpointer_attribute *attributes, void **data,
                                          CUdeviceptr ptr)
{
    if (attributes == NULL || data == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    tw_alloc a;
    bool known = tw_mem_lookup((void *)ptr, &a);
    for (unsigned i = 0; i < numAttributes; i++) {
        if (data[i] == NULL)
            continue;
        if (pointer_attribute(data[i], attributes[i], ptr, known, &a) != CUDA_SUCCESS) {
            if (!known && attributes[i] == CU_POINTER_ATTRIBUTE_MEMORY_TYPE)
                *(unsigned int *)data[i] = 0;
            else if (!known && attributes[i] == CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL)
                *(int *)data[i] = -2;
            else if (!known)
                *(void **)data[i] = NULL;
        }
    }
    return CUDA_SUCCESS;
}

/* ---- IPC (shared with the runtime's handles) ---- */
TW_EXPORT CUresult cuIpcGetMemHandle(CUipcMemHandle *pHandle, CUdeviceptr dptr)
{
    if (pHandle == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    return tw_ipc_get((void *)dptr, pHandle->reserved) == TW_OK ? CUDA_SUCCESS
                                                                : CUDA_ERROR_INVALID_VALUE;
}

TW_EXPORT CUresult cuIpcOpenMemHandle_v2(CUdeviceptr *pdptr, CUipcMemHandle handle,
                                         unsigned int Flags)
{
    if (pdptr == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    void *p = NULL;
    int rc = tw_ipc_open(handle.reserved, &p);
    *pdptr = (CUdeviceptr)p;
    return rc == TW_OK ? CUDA_SUCCESS : rc == TW_ERR_NOMEM ? CUDA_ERROR_OUT_OF_MEMORY
                                                           : CUDA_ERROR_INVALID_HANDLE;
}

#undef cuIpcOpenMemHandle
TW_EXPORT CUresult cuIpcOpenMemHandle(CUdeviceptr *pdptr, CUipcMemHandle handle,
                                      unsigned int Flags)
{
    return cuIpcOpenMemHandle_v2(pdptr, handle, Flags);
}

TW_EXPORT CUresult cuIpcCloseMemHandle(CUdeviceptr dptr)
{
    return tw_mem_free((void *)dptr) == TW_OK ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* ---- virtual memory management ---- */
TW_EXPORT CUresult cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment,
                                       CUdeviceptr addr, unsigned long long flags)
{
    if (ptr == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    void *p = NULL;
    int rc = tw_vmm_reserve(size, alignment, addr, &p);
    *ptr = (CUdeviceptr)p;
    return cu_status(rc);
}

TW_EXPORT CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size)
{
    return cu_status(tw_vmm_release((void *)ptr, size)) == CUDA_ERROR_NOT_FOUND
               ? CUDA_ERROR_INVALID_VALUE
               : CUDA_SUCCESS;
}

TW_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                               const CUmemAllocationProp *prop, unsigned long long flags)
{
    if (handle == NULL || prop == NULL || prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
        return CUDA_ERROR_INVALID_VALUE;
    if (!tw_device_valid(prop->location.id))
        return CUDA_ERROR_INVALID_DEVICE;
    uint64_t h = 0;
    int rc = tw_vmm_create(prop->location.id, size, &h);
    *handle = h;
    return cu_status(rc);
}

TW_EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle handle)
{
    return tw_vmm_release_handle(handle) == TW_OK ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

TW_EXPORT CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
                            CUmemGenericAllocationHandle handle, unsigned long long flags)
{
    return cu_status(tw_vmm_map((void *)ptr, size, offset, handle));
}

TW_EXPORT CUresult cuMemUnmap(CUdeviceptr ptr, size_t size)
{
    return cu_status(tw_vmm_unmap((void *)ptr, size));
}

TW_EXPORT CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc,
                                  size_t count)
{
    tw_alloc a;
    if (desc == NULL || count == 0 || !tw_mem_lookup((void *)ptr, &a) ||
        a.kind != TW_MEM_VMM_PHYSICAL)
        return CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; i < count; i++)
        if (desc[i].location.type == CU_MEM_LOCATION_TYPE_DEVICE &&
            !tw_device_valid(desc[i].location.id))
            return CUDA_ERROR_INVALID_DEVICE;
    return CUDA_SUCCESS;  /* every device may access every mapping (NVLink, UVA) */
}

TW_EXPORT CUresult cuMemGetAccess(unsigned long long *flags, const CUmemLocation *location,
                                  CUdeviceptr ptr)
{
    tw_alloc a;
    if (flags == NULL || !tw_mem_lookup((void *)ptr, &a))
        return CUDA_ERROR_INVALID_VALUE;
    *flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuMemGetAllocationGranularity(size_t *granularity,
                                                 const CUmemAllocationProp *prop,
                                                 CUmemAllocationGranularity_flags option)
{
    if (granularity == NULL || prop == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *granularity = tw_vmm_granularity();
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle *handle, void *addr)
{
    uint64_t h = 0;
    if (handle == NULL || tw_vmm_retain_at(addr, &h) != TW_OK)
        return CUDA_ERROR_INVALID_VALUE;
    *handle = h;
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp *prop,
                                                          CUmemGenericAllocationHandle handle)
{
    int device;
    if (prop == NULL || tw_vmm_handle_info(handle, &device, NULL) != TW_OK)
        return CUDA_ERROR_INVALID_VALUE;
    memset(prop, 0, sizeof(*prop));
    prop->type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop->requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
    prop->location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop->location.id = device;
    return CUDA_SUCCESS;
}

/* Shareable handles are memfds holding a record of the handle: its device and size, the process
 * that made it and where its bytes are (memory.c tw_vmm_share). Importing one in another process
 * gives a handle of that size on that device, charged to its maker, mapping the same bytes. */
#define TW_SHARE_MAGIC 0x32485354u
typedef struct tw_share_record {
    uint32_t magic;
    int32_t device;
    uint64_t size;
    tw_vmm_share share;
} tw_share_record;

TW_EXPORT CUresult cuMemExportToShareableHandle(void *shareableHandle,
                                                CUmemGenericAllocationHandle handle,
                                                CUmemAllocationHandleType handleType,
                                                unsigned long long flags)
{
    int device;
    uint64_t size;
    tw_vmm_share share;
    if (shareableHandle == NULL || tw_vmm_handle_info(handle, &device, &size) != TW_OK ||
        tw_vmm_share_info(handle, &share) != TW_OK)
        return CUDA_ERROR_INVALID_VALUE;
    if (handleType != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) {
        TW_WARN("cuMemExportToShareableHandle: handle type %d not supported (POSIX fds only)",
                (int)handleType);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    int mcast_fd;
    if (tw_vmm_multicast(handle, &mcast_fd) != NULL) {   /* a multicast object: its shared page */
        int fd = fcntl(mcast_fd, F_DUPFD_CLOEXEC, 0);
        if (fd < 0)
            return CUDA_ERROR_OPERATING_SYSTEM;
        *(int *)shareableHandle = fd;
        return CUDA_SUCCESS;
    }
    int fd = memfd_create("timewarp-vmm", MFD_CLOEXEC);
    if (fd < 0)
        return CUDA_ERROR_OPERATING_SYSTEM;
    tw_share_record r = {TW_SHARE_MAGIC, device, size, share};
    if (pwrite(fd, &r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        close(fd);
        return CUDA_ERROR_OPERATING_SYSTEM;
    }
    *(int *)shareableHandle = fd;
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuMemImportFromShareableHandle(CUmemGenericAllocationHandle *handle,
                                                  void *osHandle,
                                                  CUmemAllocationHandleType shHandleType)
{
    if (handle == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    if (shHandleType != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) {
        TW_WARN("cuMemImportFromShareableHandle: handle type %d not supported (POSIX fds only)",
                (int)shHandleType);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    /* the fd travels in the pointer-sized argument itself */
    int fd = (int)(intptr_t)osHandle;
    uint64_t h = 0;
    int rc = tw_vmm_multicast_import(ctx_device(), fd, &h);
    if (rc != TW_ERR_NOT_FOUND) {
        *handle = h;
        return cu_status(rc);
    }
    tw_share_record r;
    if (pread(fd, &r, sizeof(r), 0) != (ssize_t)sizeof(r) || r.magic != TW_SHARE_MAGIC)
        return CUDA_ERROR_INVALID_HANDLE;
    rc = tw_vmm_import(r.device, r.size, &r.share, &h);
    *handle = h;
    return cu_status(rc);
}

/* ---- NVLink multicast objects (multicast.c): supported where the node has NVSwitch ---- */

TW_EXPORT CUresult cuMulticastGetGranularity(size_t *granularity, const CUmulticastObjectProp *prop,
                                             CUmulticastGranularity_flags option)
{
    if (granularity == NULL || prop == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *granularity = tw_vmm_granularity();
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuMulticastCreate(CUmemGenericAllocationHandle *mcHandle, const CUmulticastObjectProp *prop)
{
    if (mcHandle == NULL || prop == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    if (!tw_multicast_supported())
        return CUDA_ERROR_NOT_SUPPORTED;
    if (prop->handleTypes & ~(unsigned long long)CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) {
        TW_WARN("cuMulticastCreate: handle types 0x%llx not supported (POSIX fds only)",
                (unsigned long long)prop->handleTypes);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    uint64_t h = 0;
    int rc = tw_vmm_multicast_create(ctx_device(), prop->size, prop->numDevices, &h);
    *mcHandle = h;
    return cu_status(rc);
}

TW_EXPORT CUresult cuMulticastAddDevice(CUmemGenericAllocationHandle mcHandle, CUdevice dev)
{
    tw_mcast_group *g = tw_vmm_multicast(mcHandle, NULL);
    if (g == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    if (!tw_device_valid(dev))
        return CUDA_ERROR_INVALID_DEVICE;
    return cu_status(tw_mcast_add_device(g, dev));
}

/* Binding memory to the object: checked, nothing to move (multicast.c says why). */
static CUresult check_bind(CUmemGenericAllocationHandle mcHandle, size_t mcOffset, size_t size)
{
    tw_mcast_group *g = tw_vmm_multicast(mcHandle, NULL);
    if (g == NULL || size == 0 || mcOffset % tw_vmm_granularity() || size % tw_vmm_granularity() ||
        mcOffset + size > tw_mcast_size(g))
        return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuMulticastBindMem(CUmemGenericAllocationHandle mcHandle, size_t mcOffset,
                                      CUmemGenericAllocationHandle memHandle, size_t memOffset, size_t size,
                                      unsigned long long flags)
{
    uint64_t mem_size = 0;
    if (tw_vmm_handle_info(memHandle, NULL, &mem_size) != TW_OK || memOffset + size > mem_size)
        return CUDA_ERROR_INVALID_VALUE;
    return check_bind(mcHandle, mcOffset, size);
}

TW_EXPORT CUresult cuMulticastBindAddr(CUmemGenericAllocationHandle mcHandle, size_t mcOffset, CUdeviceptr memptr,
                                       size_t size, unsigned long long flags)
{
    tw_alloc a;
    if (!tw_mem_lookup((const void *)memptr, &a) || memptr + size > a.base + a.size)
        return CUDA_ERROR_INVALID_VALUE;
    return check_bind(mcHandle, mcOffset, size);
}

TW_EXPORT CUresult cuMulticastUnbind(CUmemGenericAllocationHandle mcHandle, CUdevice dev, size_t mcOffset,
                                     size_t size)
{
    return check_bind(mcHandle, mcOffset, size);
}
