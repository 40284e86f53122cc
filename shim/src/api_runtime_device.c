/* CUDA runtime: devices, properties, attributes, peers, limits, versions. Attribute values
 * come from the driver adapter's table (cudaDeviceAttr and CUdevice_attribute agree). */
#include <cuda_runtime_api.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "tw_core.h"

/* device.c and api_driver_device.c, beyond tw_core.h */

static int attr(int device, enum cudaDeviceAttr a)
{
    int v = 0;
    tw_device_attribute(device, (int)a, &v);
    return v;
}

TW_EXPORT cudaError_t cudaGetDeviceCount(int *count)
{
    if (count == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    *count = tw_device_count();
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaSetDevice(int device)
{
    return tw_device_select(device) == 0 ? cudaSuccess : cudaErrorInvalidDevice;
}

TW_EXPORT cudaError_t cudaGetDevice(int *device)
{
    if (device == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    *device = tw_device_current();
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaInitDevice(int device, unsigned int deviceFlags, unsigned int flags)
{
    if (!tw_device_valid(device))
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidDevice);
    if (deviceFlags)
        tw_ctx_set_flags(tw_ctx_primary(device), deviceFlags);
    tw_ctx_primary_activate(device);
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaSetValidDevices(int *device_arr, int len)
{
    for (int i = 0; device_arr && i < len; i++)
        if (!tw_device_valid(device_arr[i]))
            return (cudaError_t)tw_runtime_status(cudaErrorInvalidDevice);
    return cudaSuccess;
}

/* Ends the primary context's life: its work is waited for; allocations stay (documented). */
TW_EXPORT cudaError_t cudaDeviceReset(void)
{
    int d = tw_device_current();
    tw_device_synchronize(d);
    tw_ctx_primary_reset(d);
    TW_INFO("cudaDeviceReset(%d): allocations are kept", d);
    return cudaSuccess;
}

/* Every field from the spec (directly or through the attribute table). */
static void fill_props(struct cudaDeviceProp *p, int d)
{
    const tw_gpu_spec *s = tw_spec();
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", s->name);
    tw_device_uuid(d, (unsigned char *)p->uuid.bytes);
    p->totalGlobalMem = s->memory_bytes;
    p->sharedMemPerBlock = (size_t)s->smem_per_block_bytes;
    p->regsPerBlock = s->regs_per_block;
    p->warpSize = s->warp_size;
    p->memPitch = (size_t)attr(d, cudaDevAttrMaxPitch);
    p->maxThreadsPerBlock = s->max_threads_per_block;
    p->maxThreadsDim[0] = attr(d, cudaDevAttrMaxBlockDimX);
    p->maxThreadsDim[1] = attr(d, cudaDevAttrMaxBlockDimY);
    p->maxThreadsDim[2] = attr(d, cudaDevAttrMaxBlockDimZ);
    p->maxGridSize[0] = attr(d, cudaDevAttrMaxGridDimX);
    p->maxGridSize[1] = attr(d, cudaDevAttrMaxGridDimY);
    p->maxGridSize[2] = attr(d, cudaDevAttrMaxGridDimZ);
    p->totalConstMem = (size_t)attr(d, cudaDevAttrTotalConstantMemory);
    p->major = s->cc_major;
    p->minor = s->cc_minor;
    p->textureAlignment = (size_t)attr(d, cudaDevAttrTextureAlignment);
    p->texturePitchAlignment = (size_t)attr(d, cudaDevAttrTexturePitchAlignment);
    p->multiProcessorCount = s->sm_count;
    p->integrated = 0;
    p->canMapHostMemory = 1;
    p->maxTexture1D = attr(d, cudaDevAttrMaxTexture1DWidth);
    p->maxTexture1DMipmap = attr(d, cudaDevAttrMaxTexture1DMipmappedWidth);
    p->maxTexture2D[0] = attr(d, cudaDevAttrMaxTexture2DWidth);
    p->maxTexture2D[1] = attr(d, cudaDevAttrMaxTexture2DHeight);
    p->maxTexture2DMipmap[0] = attr(d, cudaDevAttrMaxTexture2DMipmappedWidth);
    p->maxTexture2DMipmap[1] = attr(d, cudaDevAttrMaxTexture2DMipmappedHeight);
    p->maxTexture2DLinear[0] = attr(d, cudaDevAttrMaxTexture2DLinearWidth);
    p->maxTexture2DLinear[1] = attr(d, cudaDevAttrMaxTexture2DLinearHeight);
    p->maxTexture2DLinear[2] = attr(d, cudaDevAttrMaxTexture2DLinearPitch);
    p->maxTexture2DGather[0] = attr(d, cudaDevAttrMaxTexture2DGatherWidth);
    p->maxTexture2DGather[1] = attr(d, cudaDevAttrMaxTexture2DGatherHeight);
    p->maxTexture3D[0] = attr(d, cudaDevAttrMaxTexture3DWidth);
    p->maxTexture3D[1] = attr(d, cudaDevAttrMaxTexture3DHeight);
    p->maxTexture3D[2] = attr(d, cudaDevAttrMaxTexture3DDepth);
    p->maxTexture3DAlt[0] = attr(d, cudaDevAttrMaxTexture3DWidthAlt);
    p->maxTexture3DAlt[1] = attr(d, cudaDevAttrMaxTexture3DHeightAlt);
    p->maxTexture3DAlt[2] = attr(d, cudaDevAttrMaxTexture3DDepthAlt);
    p->maxTextureCubemap = attr(d, cudaDevAttrMaxTextureCubemapWidth);
    p->maxTexture1DLayered[0] = attr(d, cudaDevAttrMaxTexture1DLayeredWidth);
    p->maxTexture1DLayered[1] = attr(d, cudaDevAttrMaxTexture1DLayeredLayers);
    p->maxTexture2DLayered[0] = attr(d, cudaDevAttrMaxTexture2DLayeredWidth);
    p->maxTexture2DLayered[1] = attr(d, cudaDevAttrMaxTexture2DLayeredHeight);
    p->maxTexture2DLayered[2] = attr(d, cudaDevAttrMaxTexture2DLayeredLayers);
    p->maxTextureCubemapLayered[0] = attr(d, cudaDevAttrMaxTextureCubemapLayeredWidth);
    p->maxTextureCubemapLayered[1] = attr(d, cudaDevAttrMaxTextureCubemapLayeredLayers);
    p->maxSurface1D = attr(d, cudaDevAttrMaxSurface1DWidth);
    p->maxSurface2D[0] = attr(d, cudaDevAttrMaxSurface2DWidth);
    p->maxSurface2D[1] = attr(d, cudaDevAttrMaxSurface2DHeight);
    p->maxSurface3D[0] = attr(d, cudaDevAttrMaxSurface3DWidth);
    p->maxSurface3D[1] = attr(d, cudaDevAttrMaxSurface3DHeight);
    p->maxSurface3D[2] = attr(d, cudaDevAttrMaxSurface3DDepth);
    p->maxSurface1DLayered[0] = attr(d, cudaDevAttrMaxSurface1DLayeredWidth);
    p->maxSurface1DLayered[1] = attr(d, cudaDevAttrMaxSurface1DLayeredLayers);
    p->maxSurface2DLayered[0] = attr(d, cudaDevAttrMaxSurface2DLayeredWidth);
    p->maxSurface2DLayered[1] = attr(d, cudaDevAttrMaxSurface2DLayeredHeight);
    p->maxSurface2DLayered[2] = attr(d, cudaDevAttrMaxSurface2DLayeredLayers);
    p->maxSurfaceCubemap = attr(d, cudaDevAttrMaxSurfaceCubemapWidth);
    p->maxSurfaceCubemapLayered[0] = attr(d, cudaDevAttrMaxSurfaceCubemapLayeredWidth);
    p->maxSurfaceCubemapLayered[1] = attr(d, cudaDevAttrMaxSurfaceCubemapLayeredLayers);
    p->surfaceAlignment = (size_t)attr(d, cudaDevAttrSurfaceAlignment);
    p->concurrentKernels = 1;
    p->ECCEnabled = attr(d, cudaDevAttrEccEnabled);
    p->pciBusID = tw_device_pci_bus(d);
    p->pciDeviceID = 0;
    p->pciDomainID = 0;
    p->tccDriver = 0;
    p->asyncEngineCount = attr(d, cudaDevAttrAsyncEngineCount);
    p->unifiedAddressing = 1;
    p->memoryBusWidth = s->mem_bus_width_bits;
    p->l2CacheSize = s->l2_bytes;
    p->persistingL2CacheMaxSize = attr(d, cudaDevAttrMaxPersistingL2CacheSize);
    p->maxThreadsPerMultiProcessor = s->max_threads_per_sm;
    p->streamPrioritiesSupported = 1;
    p->globalL1CacheSupported = 1;
    p->localL1CacheSupported = 1;
    p->sharedMemPerMultiprocessor = (size_t)s->smem_per_sm_bytes;
    p->regsPerMultiprocessor = s->regs_per_sm;
    p->managedMemory = 1;
    p->isMultiGpuBoard = 0;
    p->multiGpuBoardGroupID = d;
    p->hostNativeAtomicSupported = attr(d, cudaDevAttrHostNativeAtomicSupported);
    p->pageableMemoryAccess = attr(d, cudaDevAttrPageableMemoryAccess);
    p->concurrentManagedAccess = attr(d, cudaDevAttrConcurrentManagedAccess);
    p->computePreemptionSupported = 1;
    p->canUseHostPointerForRegisteredMem = attr(d, cudaDevAttrCanUseHostPointerForRegisteredMem);
    p->cooperativeLaunch = 1;
    p->sharedMemPerBlockOptin = (size_t)s->smem_per_block_optin_bytes;
    p->pageableMemoryAccessUsesHostPageTables =
        attr(d, cudaDevAttrPageableMemoryAccessUsesHostPageTables);
    p->directManagedMemAccessFromHost = attr(d, cudaDevAttrDirectManagedMemAccessFromHost);
    p->maxBlocksPerMultiProcessor = s->max_blocks_per_sm;
    p->accessPolicyMaxWindowSize = attr(d, cudaDevAttrMaxAccessPolicyWindowSize);
    p->reservedSharedMemPerBlock = (size_t)attr(d, cudaDevAttrReservedSharedMemoryPerBlock);
    p->hostRegisterSupported = 1;
    p->sparseCudaArraySupported = attr(d, cudaDevAttrSparseCudaArraySupported);
    p->hostRegisterReadOnlySupported = attr(d, cudaDevAttrHostRegisterReadOnlySupported);
    p->timelineSemaphoreInteropSupported = attr(d, cudaDevAttrTimelineSemaphoreInteropSupported);
    p->memoryPoolsSupported = 1;
    p->gpuDirectRDMASupported = attr(d, cudaDevAttrGPUDirectRDMASupported);
    p->gpuDirectRDMAFlushWritesOptions = (unsigned)attr(d, cudaDevAttrGPUDirectRDMAFlushWritesOptions);
    p->gpuDirectRDMAWritesOrdering = attr(d, cudaDevAttrGPUDirectRDMAWritesOrdering);
    p->memoryPoolSupportedHandleTypes = (unsigned)attr(d, cudaDevAttrMemoryPoolSupportedHandleTypes);
    p->deferredMappingCudaArraySupported = attr(d, cudaDevAttrDeferredMappingCudaArraySupported);
    p->ipcEventSupported = attr(d, cudaDevAttrIpcEventSupport);
    p->clusterLaunch = attr(d, cudaDevAttrClusterLaunch);
    p->unifiedFunctionPointers = 0;
    p->deviceNumaConfig = attr(d, cudaDevAttrNumaConfig);
    p->deviceNumaId = attr(d, cudaDevAttrNumaId);
    p->mpsEnabled = 0;
    p->hostNumaId = attr(d, cudaDevAttrHostNumaId);
    p->gpuPciDeviceID = (unsigned)attr(d, cudaDevAttrGpuPciDeviceId);
    p->gpuPciSubsystemID = (unsigned)attr(d, cudaDevAttrGpuPciSubsystemId);
    p->hostNumaMultinodeIpcSupported = 0;
}

TW_EXPORT cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device)
{
    if (prop == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    if (!tw_device_valid(device))
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidDevice);
    fill_props(prop, device);
    return cudaSuccess;
}

/* CUDA 12 headers named the same struct's getter _v2; binaries built against them ask for it. */
cudaError_t cudaGetDeviceProperties_v2(struct cudaDeviceProp *prop, int device);
TW_EXPORT cudaError_t cudaGetDeviceProperties_v2(struct cudaDeviceProp *prop, int device)
{
    return cudaGetDeviceProperties(prop, device);
}

TW_EXPORT cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr a, int device)
{
    if (value == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    if (!tw_device_valid(device))
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidDevice);
    return tw_device_attribute(device, (int)a, value) ? cudaSuccess : cudaErrorInvalidValue;
}

TW_EXPORT cudaError_t cudaChooseDevice(int *device, const struct cudaDeviceProp *prop)
{
    if (device == NULL || prop == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    *device = tw_device_current();  /* every virtual device is alike */
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaDeviceGetPCIBusId(char *pciBusId, int len, int device)
{
    if (pciBusId == NULL || len <= 0)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    if (!tw_device_valid(device))
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidDevice);
    snprintf(pciBusId, (size_t)len, "0000:%02x:00.0", tw_device_pci_bus(device));
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaDeviceGetByPCIBusId(int *device, const char *pciBusId)
{
    if (device == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    int d = tw_device_parse_pci_bus_id(pciBusId);
    if (d < 0)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidDevice);
    *device = d;
    return cudaSuccess;
}

/* ---- peers: enabled (current device -> peer) pairs, as bits ---- */
#define TW_MAX_PEER_DEVICES 64
static _Atomic uint64_t g_peer_enabled[TW_MAX_PEER_DEVICES];

TW_EXPORT cudaError_t cudaDeviceCanAccessPeer(int *canAccessPeer, int device, int peerDevice)
{
    if (canAccessPeer == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    if (!tw_device_valid(device) || !tw_device_valid(peerDevice))
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidDevice);
    *canAccessPeer = tw_device_can_access_peer(device, peerDevice);
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaDeviceEnablePeerAccess(int peerDevice, unsigned int flags)
{
    int d = tw_device_current();
    if (!tw_device_valid(peerDevice))
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidDevice);
    if (flags != 0)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    if (!tw_device_can_access_peer(d, peerDevice) || d >= TW_MAX_PEER_DEVICES ||
        peerDevice >= TW_MAX_PEER_DEVICES)
        return (cudaError_t)tw_runtime_status(cudaErrorPeerAccessUnsupported);
    uint64_t bit = 1ull << peerDevice;
    if (atomic_fetch_or(&g_peer_enabled[d], bit) & bit)
        return (cudaError_t)tw_runtime_status(cudaErrorPeerAccessAlreadyEnabled);
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaDeviceDisablePeerAccess(int peerDevice)
{
    int d = tw_device_current();
    if (!tw_device_valid(peerDevice) || d >= TW_MAX_PEER_DEVICES ||
        peerDevice >= TW_MAX_PEER_DEVICES)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidDevice);
    uint64_t bit = 1ull << peerDevice;
    if (!(atomic_fetch_and(&g_peer_enabled[d], ~bit) & bit))
        return (cudaError_t)tw_runtime_status(cudaErrorPeerAccessNotEnabled);
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaDeviceGetP2PAttribute(int *value, enum cudaDeviceP2PAttr a, int src,
                                                int dst)
{
    if (value == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    if (!tw_device_valid(src) || !tw_device_valid(dst))
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidDevice);
    bool can = tw_device_can_access_peer(src, dst);
    switch (a) {
    case cudaDevP2PAttrPerformanceRank: *value = 0; break;
    case cudaDevP2PAttrAccessSupported: *value = can; break;
    case cudaDevP2PAttrNativeAtomicSupported: *value = can; break;
    case cudaDevP2PAttrCudaArrayAccessSupported: *value = can; break;
    default: *value = 0; break;
    }
    return cudaSuccess;
}

/* ---- limits, caches, flags ---- */
TW_EXPORT cudaError_t cudaDeviceGetStreamPriorityRange(int *leastPriority, int *greatestPriority)
{
    if (leastPriority)
        *leastPriority = 0;
    if (greatestPriority)
        *greatestPriority = -5;
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaDeviceGetLimit(size_t *pValue, enum cudaLimit limit)
{
    uint64_t v;
    if (pValue == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    if (tw_device_limit_get((int)limit, &v) != 0)
        return (cudaError_t)tw_runtime_status(cudaErrorUnsupportedLimit);
    *pValue = v;
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaDeviceSetLimit(enum cudaLimit limit, size_t value)
{
    return tw_device_limit_set((int)limit, value) == 0 ? cudaSuccess : cudaErrorUnsupportedLimit;
}

TW_EXPORT cudaError_t cudaDeviceGetCacheConfig(enum cudaFuncCache *pCacheConfig)
{
    if (pCacheConfig == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    *pCacheConfig = (enum cudaFuncCache)tw_device_cache_config(-1);
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaDeviceSetCacheConfig(enum cudaFuncCache cacheConfig)
{
    if ((int)cacheConfig < 0 || cacheConfig > cudaFuncCachePreferEqual)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    tw_device_cache_config((int)cacheConfig);
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaSetDeviceFlags(unsigned int flags)
{
    if (flags & ~(unsigned)(cudaDeviceScheduleMask | cudaDeviceMapHost |
                            cudaDeviceLmemResizeToMax | cudaDeviceSyncMemops))
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    int d = tw_device_current();
    tw_ctx_set_flags(tw_ctx_primary(d), flags);
    tw_ctx_primary_activate(d);
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaGetDeviceFlags(unsigned int *flags)
{
    if (flags == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    /* host mapping is always on under unified addressing */
    *flags = tw_ctx_flags(tw_ctx_primary(tw_device_current())) | cudaDeviceMapHost;
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaDriverGetVersion(int *driverVersion)
{
    if (driverVersion == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    *driverVersion = CUDART_VERSION;
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaRuntimeGetVersion(int *runtimeVersion)
{
    if (runtimeVersion == NULL)
        return (cudaError_t)tw_runtime_status(cudaErrorInvalidValue);
    *runtimeVersion = CUDART_VERSION;
    return cudaSuccess;
}
