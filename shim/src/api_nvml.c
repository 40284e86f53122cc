/* NVML: what vLLM, SGLang and torch ask of the management library (platform detection,
 * names, memory, PCI/UUID lookups, P2P/NVLink topology, utilisation, power). Answers come from
 * the spec, this process's memory accounting and the run's virtual timeline; what the
 * emulation does not model (temperature, fabric) says not-supported. */
#define _GNU_SOURCE
#include <cuda.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tw_core.h"
#include "vendor/nvml.h"

/* device.c, api_driver_device.c, beyond tw_core.h */

/* The driver branch that ships CUDA 13.0 (nvidia-smi prints the same). */
#define TW_DRIVER_VERSION "580.65.06"

struct nvmlDevice_st {
    int index;
};

#define TW_NVML_MAX_DEVICES 256
static struct nvmlDevice_st g_devices[TW_NVML_MAX_DEVICES];
static atomic_int g_init_count;

static nvmlDevice_t handle_of(int index)
{
    g_devices[index].index = index;  /* idempotent */
    return &g_devices[index];
}

/* The device a handle names, or -1 (bad handle, or NVML not initialised). */
static int index_of(nvmlDevice_t device)
{
    if (device < &g_devices[0] || device >= &g_devices[TW_NVML_MAX_DEVICES])
        return -1;
    int i = (int)(device - g_devices);
    return tw_device_valid(i) ? i : -1;
}

#define REQUIRE_INIT()                                  \
    do {                                                \
        if (atomic_load(&g_init_count) <= 0)            \
            return NVML_ERROR_UNINITIALIZED;            \
    } while (0)

#define REQUIRE_DEVICE(dev, idx)                        \
    REQUIRE_INIT();                                     \
    int idx = index_of(dev);                            \
    if (idx < 0)                                        \
        return NVML_ERROR_INVALID_ARGUMENT

static nvmlReturn_t copy_string(char *dst, unsigned int length, const char *src)
{
    if (dst == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(src) + 1 > length)
        return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(dst, src, strlen(src) + 1);
    return NVML_SUCCESS;
}

TW_EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int flags)
{
    (void)tw_device_count();
    atomic_fetch_add(&g_init_count, 1);
    return NVML_SUCCESS;
}

TW_EXPORT nvmlReturn_t nvmlInit_v2(void)
{
    return nvmlInitWithFlags(0);
}

TW_EXPORT nvmlReturn_t nvmlInit(void)
{
    return nvmlInitWithFlags(0);
}

TW_EXPORT nvmlReturn_t nvmlShutdown(void)
{
    REQUIRE_INIT();
    atomic_fetch_sub(&g_init_count, 1);
    return NVML_SUCCESS;
}

TW_EXPORT const char *nvmlErrorString(nvmlReturn_t result)
{
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
    case NVML_ERROR_ALREADY_INITIALIZED: return "Already Initialized";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    case NVML_ERROR_MEMORY: return "Insufficient Memory";
    case NVML_ERROR_NO_DATA: return "No data";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument version mismatch";
    default: return "Unknown Error";
    }
}

TW_EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
    REQUIRE_INIT();
    return copy_string(version, length, TW_DRIVER_VERSION);
}

TW_EXPORT nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length)
{
    char v[64];
    snprintf(v, sizeof(v), "%d.%s", CUDA_VERSION / 1000, TW_DRIVER_VERSION);
    return copy_string(version, length, v);
}

TW_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *cudaDriverVersion)
{
    if (cudaDriverVersion == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    *cudaDriverVersion = CUDA_VERSION;
    return NVML_SUCCESS;
}

TW_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *cudaDriverVersion)
{
    return nvmlSystemGetCudaDriverVersion(cudaDriverVersion);
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *deviceCount)
{
    REQUIRE_INIT();
    if (deviceCount == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    int n = tw_device_count();
    *deviceCount = (unsigned)(n < TW_NVML_MAX_DEVICES ? n : TW_NVML_MAX_DEVICES);
    return NVML_SUCCESS;
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetCount(unsigned int *deviceCount)
{
    return nvmlDeviceGetCount_v2(deviceCount);
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
    REQUIRE_INIT();
    if (device == NULL || index >= TW_NVML_MAX_DEVICES || !tw_device_valid((int)index))
        return NVML_ERROR_INVALID_ARGUMENT;
    *device = handle_of((int)index);
    return NVML_SUCCESS;
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device)
{
    return nvmlDeviceGetHandleByIndex_v2(index, device);
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *pciBusId, nvmlDevice_t *device)
{
    REQUIRE_INIT();
    if (pciBusId == NULL || device == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    int d = tw_device_parse_pci_bus_id(pciBusId);
    if (d < 0 || d >= TW_NVML_MAX_DEVICES)
        return NVML_ERROR_NOT_FOUND;
    *device = handle_of(d);
    return NVML_SUCCESS;
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetHandleByPciBusId(const char *pciBusId, nvmlDevice_t *device)
{
    return nvmlDeviceGetHandleByPciBusId_v2(pciBusId, device);
}

static void uuid_string(int index, char *out, size_t size)
{
    unsigned char u[16];
    tw_device_uuid(index, u);
    snprintf(out, size,
             "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
             u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
             u[15]);
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device)
{
    REQUIRE_INIT();
    if (uuid == NULL || device == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    char s[NVML_DEVICE_UUID_BUFFER_SIZE];
    for (int d = 0; d < tw_device_count() && d < TW_NVML_MAX_DEVICES; d++) {
        uuid_string(d, s, sizeof(s));
        if (strcasecmp(s, uuid) == 0) {
            *device = handle_of(d);
            return NVML_SUCCESS;
        }
    }
    return NVML_ERROR_NOT_FOUND;
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length)
{
    REQUIRE_DEVICE(device, d);
    (void)d;
    return copy_string(name, length, tw_spec()->name);
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length)
{
    REQUIRE_DEVICE(device, d);
    char s[NVML_DEVICE_UUID_BUFFER_SIZE];
    uuid_string(d, s, sizeof(s));
    return copy_string(uuid, length, s);
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index)
{
    REQUIRE_DEVICE(device, d);
    if (index == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    *index = (unsigned)d;
    return NVML_SUCCESS;
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int *minorNumber)
{
    REQUIRE_DEVICE(device, d);
    if (minorNumber == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    *minorNumber = (unsigned)d;
    return NVML_SUCCESS;
}

/* Used memory is this process's allocations plus what the driver keeps (reserved): other
 * processes' allocations on the same virtual device are not visible here. */
TW_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory)
{
    REQUIRE_DEVICE(device, d);
    if (memory == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    const tw_gpu_spec *s = tw_spec();
    uint64_t used = tw_ipc_device_used(d);   /* every process of the run, their contexts included */
    memory->total = s->memory_bytes;
    memory->used = used < s->memory_bytes ? used : s->memory_bytes;
    memory->free = s->memory_bytes - memory->used;
    return NVML_SUCCESS;
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory)
{
    REQUIRE_DEVICE(device, d);
    if (memory == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (memory->version != nvmlMemory_v2)
        return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    const tw_gpu_spec *s = tw_spec();
    int32_t pids[64];
    uint64_t bytes[64];
    int contexts = tw_ipc_device_processes(d, pids, bytes, 64);
    uint64_t reserved = (uint64_t)contexts * s->reserved_bytes;
    uint64_t in_use = tw_ipc_device_used(d);
    memory->total = s->memory_bytes;
    memory->reserved = reserved;
    memory->used = in_use > reserved ? in_use - reserved : 0;
    memory->free = s->memory_bytes > in_use ? s->memory_bytes - in_use : 0;
    return NVML_SUCCESS;
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major,
                                                          int *minor)
{
    REQUIRE_DEVICE(device, d);
    (void)d;
    if (major == NULL || minor == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    *major = tw_spec()->cc_major;
    *minor = tw_spec()->cc_minor;
    return NVML_SUCCESS;
}

static void fill_pci(int d, nvmlPciInfo_t *pci)
{
    memset(pci, 0, sizeof(*pci));
    pci->domain = 0;
    pci->bus = (unsigned)tw_device_pci_bus(d);
    pci->device = 0;
    pci->pciDeviceId = tw_device_pci_id();
    pci->pciSubSystemId = tw_device_pci_id();
    snprintf(pci->busId, sizeof(pci->busId), "00000000:%02X:00.0", pci->bus);
    snprintf(pci->busIdLegacy, sizeof(pci->busIdLegacy), "0000:%02X:00.0", pci->bus);
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
    REQUIRE_DEVICE(device, d);
    if (pci == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    fill_pci(d, pci);
    return NVML_SUCCESS;
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
    return nvmlDeviceGetPciInfo_v3(device, pci);
}

/* The original layout: a 16-byte bus id first, then the numbers and four reserved words. */
typedef struct nvml_pci_info_v1 {
    char busId[16];
    unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
    unsigned int reserved[4];
} nvml_pci_info_v1;

TW_EXPORT nvmlReturn_t nvmlDeviceGetPciInfo(nvmlDevice_t device, nvml_pci_info_v1 *pci)
{
    REQUIRE_DEVICE(device, d);
    if (pci == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    nvmlPciInfo_t full;
    fill_pci(d, &full);
    memset(pci, 0, sizeof(*pci));
    memcpy(pci->busId, full.busIdLegacy, sizeof(pci->busId));
    pci->domain = full.domain;
    pci->bus = full.bus;
    pci->pciDeviceId = full.pciDeviceId;
    pci->pciSubSystemId = full.pciSubSystemId;
    return NVML_SUCCESS;
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetP2PStatus(nvmlDevice_t device1, nvmlDevice_t device2,
                                              nvmlGpuP2PCapsIndex_t p2pIndex,
                                              nvmlGpuP2PStatus_t *p2pStatus)
{
    REQUIRE_INIT();
    int a = index_of(device1), b = index_of(device2);
    if (a < 0 || b < 0 || p2pStatus == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    bool nvlink = tw_device_can_access_peer(a, b);
    switch (p2pIndex) {
    case NVML_P2P_CAPS_INDEX_READ:
    case NVML_P2P_CAPS_INDEX_WRITE:
    case NVML_P2P_CAPS_INDEX_ATOMICS:
    case NVML_P2P_CAPS_INDEX_NVLINK:
        *p2pStatus = nvlink ? NVML_P2P_STATUS_OK : NVML_P2P_STATUS_NOT_SUPPORTED;
        break;
    case NVML_P2P_CAPS_INDEX_PCI:
        *p2pStatus = NVML_P2P_STATUS_OK;
        break;
    default: return NVML_ERROR_INVALID_ARGUMENT;
    }
    return NVML_SUCCESS;
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetNvLinkState(nvmlDevice_t device, unsigned int link,
                                                nvmlEnableState_t *isActive)
{
    REQUIRE_DEVICE(device, d);
    (void)d;
    if (isActive == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (tw_spec()->nvlink_links == 0)
        return NVML_ERROR_NOT_SUPPORTED;
    if (link >= (unsigned)tw_spec()->nvlink_links)
        return NVML_ERROR_INVALID_ARGUMENT;
    *isActive = tw_device_count() > 1 ? NVML_FEATURE_ENABLED : NVML_FEATURE_DISABLED;
    return NVML_SUCCESS;
}

/* PCIe placement as on an 8-GPU HGX board: two halves, one per CPU socket. */
TW_EXPORT nvmlReturn_t nvmlDeviceGetTopologyCommonAncestor(nvmlDevice_t device1,
                                                           nvmlDevice_t device2,
                                                           nvmlGpuTopologyLevel_t *pathInfo)
{
    REQUIRE_INIT();
    int a = index_of(device1), b = index_of(device2);
    if (a < 0 || b < 0 || pathInfo == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (a == b)
        *pathInfo = NVML_TOPOLOGY_INTERNAL;
    else
        *pathInfo = a / 4 == b / 4 ? NVML_TOPOLOGY_NODE : NVML_TOPOLOGY_SYSTEM;
    return NVML_SUCCESS;
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetCpuAffinity(nvmlDevice_t device, unsigned int cpuSetSize,
                                                unsigned long *cpuSet)
{
    REQUIRE_DEVICE(device, d);
    (void)d;
    if (cpuSet == NULL || cpuSetSize == 0)
        return NVML_ERROR_INVALID_ARGUMENT;
    memset(cpuSet, 0, cpuSetSize * sizeof(unsigned long));
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0)
        return NVML_ERROR_UNKNOWN;
    size_t bits = 8 * sizeof(unsigned long);
    for (size_t cpu = 0; cpu < CPU_SETSIZE && cpu < cpuSetSize * bits; cpu++)
        if (CPU_ISSET(cpu, &set))
            cpuSet[cpu / bits] |= 1ul << (cpu % bits);
    return NVML_SUCCESS;
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetNumaNodeId(nvmlDevice_t device, unsigned int *node)
{
    REQUIRE_DEVICE(device, d);
    (void)d;
    if (node == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    *node = 0;  /* the host's first node always exists */
    return NVML_SUCCESS;
}

/* Utilisation and power come from the virtual timeline (gpu_activity.c): the busy fraction of
 * the device over NVML's sample period, and a board power between idle and TDP by that
 * fraction. The sample period is between 1/6 s and 1 s depending on the product (NVML docs):
 * 1 s here. An idle board draws a tenth of its TDP (an H100 SXM idles near 70 W of 700 W). */
#define SAMPLE_PERIOD_NS (1000LL * 1000 * 1000)
#define IDLE_POWER_FRACTION 0.1

static unsigned percent(double fraction)
{
    double p = fraction * 100.0 + 0.5;
    return p <= 0 ? 0u : p >= 100 ? 100u : (unsigned)p;
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power)
{
    REQUIRE_DEVICE(device, d);
    if (power == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    double busy, memory;
    tw_gpu_activity(d, SAMPLE_PERIOD_NS, &busy, &memory);
    double tdp_mw = tw_spec()->tdp_watts * 1000.0;
    *power = (unsigned)(tdp_mw * (IDLE_POWER_FRACTION + (1 - IDLE_POWER_FRACTION) * busy) + 0.5);
    return NVML_SUCCESS;
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int *limit)
{
    REQUIRE_DEVICE(device, d);
    (void)d;
    if (limit == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    *limit = (unsigned)tw_spec()->tdp_watts * 1000;
    return NVML_SUCCESS;
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device,
                                                     nvmlUtilization_t *utilization)
{
    REQUIRE_DEVICE(device, d);
    if (utilization == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    double busy, memory;
    tw_gpu_activity(d, SAMPLE_PERIOD_NS, &busy, &memory);
    utilization->gpu = percent(busy);
    utilization->memory = percent(memory);
    return NVML_SUCCESS;
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, nvmlClockType_t type,
                                              unsigned int *clock)
{
    REQUIRE_DEVICE(device, d);
    (void)d;
    if (clock == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    switch (type) {
    case NVML_CLOCK_GRAPHICS:
    case NVML_CLOCK_SM: *clock = (unsigned)tw_spec()->clock_khz / 1000; break;
    case NVML_CLOCK_MEM: *clock = (unsigned)tw_spec()->mem_clock_khz / 1000; break;
    default: return NVML_ERROR_NOT_SUPPORTED;
    }
    return NVML_SUCCESS;
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t device, nvmlClockType_t type,
                                                 unsigned int *clock)
{
    return nvmlDeviceGetClockInfo(device, type, clock);
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device,
                                                nvmlTemperatureSensors_t sensorType,
                                                unsigned int *temp)
{
    REQUIRE_DEVICE(device, d);
    (void)d;
    return NVML_ERROR_NOT_SUPPORTED;  /* no thermal model */
}

/* Every process of the run that holds memory (a context) on the device. */
static nvmlReturn_t running_processes(int d, unsigned int *infoCount, void *infos, size_t stride)
{
    if (infoCount == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    int32_t pids[64];
    uint64_t bytes[64];
    unsigned n = (unsigned)tw_ipc_device_processes(d, pids, bytes, 64);
    if (*infoCount < n || (n && infos == NULL)) {
        *infoCount = n;
        return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    *infoCount = n;
    for (unsigned i = 0; i < n; i++) {
        nvmlProcessInfo_t p = {(unsigned)pids[i], bytes[i], 0xffffffffu, 0xffffffffu};
        memcpy((char *)infos + i * stride, &p, stride);
    }
    return NVML_SUCCESS;
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device,
                                                               unsigned int *infoCount,
                                                               nvmlProcessInfo_t *infos)
{
    REQUIRE_DEVICE(device, d);
    return running_processes(d, infoCount, infos, sizeof(nvmlProcessInfo_t));
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device,
                                                               unsigned int *infoCount,
                                                               nvmlProcessInfo_t *infos)
{
    REQUIRE_DEVICE(device, d);
    return running_processes(d, infoCount, infos, sizeof(nvmlProcessInfo_t));
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device,
                                                            unsigned int *infoCount,
                                                            nvmlProcessInfo_v1_t *infos)
{
    REQUIRE_DEVICE(device, d);
    return running_processes(d, infoCount, infos, sizeof(nvmlProcessInfo_v1_t));
}

/* Multi-node NVLink fabrics (GB200 NVL) are not emulated. */
/* No NVLink fabric (NVSwitch/IMEX) is emulated: like a GPU outside a fabric, the call succeeds
 * and reports the state NVML_GPU_FABRIC_STATE_NOT_SUPPORTED (0); torch's expandable segments
 * require the success. v1 layout: uuid[16], status, cliqueId, state (28 bytes). */
TW_EXPORT nvmlReturn_t nvmlDeviceGetGpuFabricInfo(nvmlDevice_t device, void *gpuFabricInfo)
{
    REQUIRE_DEVICE(device, d);
    (void)d;
    if (gpuFabricInfo == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    memset(gpuFabricInfo, 0, 28);
    return NVML_SUCCESS;
}

/* Versioned form: the first word is the version, whose low 24 bits are the struct size. */
TW_EXPORT nvmlReturn_t nvmlDeviceGetGpuFabricInfoV(nvmlDevice_t device, void *gpuFabricInfo)
{
    REQUIRE_DEVICE(device, d);
    (void)d;
    if (gpuFabricInfo == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    unsigned int version;
    memcpy(&version, gpuFabricInfo, sizeof version);
    size_t size = version & 0xffffffu;
    if (size < 28 || size > 256)
        return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    memset((char *)gpuFabricInfo + sizeof version, 0, size - sizeof version);
    return NVML_SUCCESS;
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *currentMode,
                                            unsigned int *pendingMode)
{
    REQUIRE_DEVICE(device, d);
    (void)d;
    if (currentMode == NULL || pendingMode == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    *currentMode = *pendingMode = 0;  /* NVML_DEVICE_MIG_DISABLE */
    return NVML_SUCCESS;
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetBrand(nvmlDevice_t device, nvmlBrandType_t *type)
{
    REQUIRE_DEVICE(device, d);
    (void)d;
    if (type == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    *type = NVML_BRAND_NVIDIA;
    return NVML_SUCCESS;
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetArchitecture(nvmlDevice_t device,
                                                 nvmlDeviceArchitecture_t *arch)
{
    REQUIRE_DEVICE(device, d);
    (void)d;
    if (arch == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    const tw_gpu_spec *s = tw_spec();
    int cc = s->cc_major * 10 + s->cc_minor;
    *arch = cc >= 100 ? NVML_DEVICE_ARCH_BLACKWELL
            : cc >= 90 ? NVML_DEVICE_ARCH_HOPPER
            : cc == 89 ? NVML_DEVICE_ARCH_ADA
            : cc >= 80 ? NVML_DEVICE_ARCH_AMPERE
            : cc >= 75 ? NVML_DEVICE_ARCH_TURING
            : cc >= 70 ? NVML_DEVICE_ARCH_VOLTA
                       : NVML_DEVICE_ARCH_UNKNOWN;
    return NVML_SUCCESS;
}

/* NVLink peers as torch's NVLink detector asks: every link reaches another GPU. */
TW_EXPORT nvmlReturn_t nvmlDeviceGetNvLinkRemoteDeviceType(nvmlDevice_t device, unsigned int link,
                                                           unsigned int *pNvLinkDeviceType)
{
    REQUIRE_DEVICE(device, d);
    (void)d;
    if (pNvLinkDeviceType == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (tw_spec()->nvlink_links == 0 || tw_device_count() < 2)
        return NVML_ERROR_NOT_SUPPORTED;
    if (link >= (unsigned)tw_spec()->nvlink_links)
        return NVML_ERROR_INVALID_ARGUMENT;
    *pNvLinkDeviceType = 0;  /* NVML_NVLINK_DEVICE_TYPE_GPU */
    return NVML_SUCCESS;
}

TW_EXPORT nvmlReturn_t nvmlDeviceGetNvLinkRemotePciInfo_v2(nvmlDevice_t device, unsigned int link,
                                                           nvmlPciInfo_t *pci)
{
    REQUIRE_DEVICE(device, d);
    if (pci == NULL)
        return NVML_ERROR_INVALID_ARGUMENT;
    int n = tw_device_count();
    if (tw_spec()->nvlink_links == 0 || n < 2)
        return NVML_ERROR_NOT_SUPPORTED;
    if (link >= (unsigned)tw_spec()->nvlink_links)
        return NVML_ERROR_INVALID_ARGUMENT;
    /* links spread over the other GPUs in turn (through NVSwitches on real boards) */
    int peer = (d + 1 + (int)link % (n - 1)) % n;
    fill_pci(peer, pci);
    return NVML_SUCCESS;
}
