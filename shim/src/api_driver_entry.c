/* Driver entry points handed out by name: cuGetProcAddress(_v2) and the runtime's
 * cudaGetDriverEntryPoint(ByVersion). torch, Triton, cuda-python and the vendor libraries reach
 * most of the driver this way rather than by linking libcuda. The (name, version, flavour) ->
 * symbol table is generated from cudaTypedefs.h (shim/gen/out/driver_table.c); its pointers
 * name exported symbols, so a hand-written override of a weak stub is what gets handed out. */
#include <stdbool.h>
#include <string.h>

#include <cuda.h>
#include <cuda_runtime_api.h>

#include "driver_table.h"
#include "tw_core.h"

/* The legacy four-argument entry point and the runtime's per-thread flavours are declared by
 * the headers only in the vendor's internal build mode. */
#undef cuGetProcAddress
CUresult cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags);
cudaError_t cudaGetDriverEntryPoint_ptsz(const char *symbol, void **funcPtr,
                                         unsigned long long flags,
                                         enum cudaDriverEntryPointQueryResult *driverStatus);
cudaError_t cudaGetDriverEntryPointByVersion_ptsz(const char *symbol, void **funcPtr,
                                                  unsigned int cudaVersion,
                                                  unsigned long long flags,
                                                  enum cudaDriverEntryPointQueryResult *driverStatus);

enum lookup_result { LOOKUP_FOUND = 0, LOOKUP_NOT_FOUND = 1, LOOKUP_VERSION_TOO_LOW = 2 };

/* First table index whose name is >= symbol (the table is sorted by name, then flavour and
 * version). */
static unsigned lower_bound(const char *symbol)
{
    unsigned lo = 0, hi = tw_driver_table_len;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        if (strcmp(tw_driver_table[mid].name, symbol) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Newest entry with version <= requested. A per-thread request may take a per-thread entry
 * and prefers it at equal version; a legacy request never does (cuGetProcAddress docs). */
static int lookup(const char *symbol, int version, bool per_thread, void **out_fn)
{
    *out_fn = NULL;
    if (symbol == NULL)
        return LOOKUP_NOT_FOUND;
    const tw_driver_entry *best = NULL;
    bool any = false;
    for (unsigned i = lower_bound(symbol);
         i < tw_driver_table_len && strcmp(tw_driver_table[i].name, symbol) == 0; i++) {
        const tw_driver_entry *e = &tw_driver_table[i];
        any = true;
        if (e->version > version || (e->per_thread && !per_thread))
            continue;
        if (best == NULL || e->version > best->version ||
            (e->version == best->version && e->per_thread))
            best = e;
    }
    if (best == NULL)
        return any ? LOOKUP_VERSION_TOO_LOW : LOOKUP_NOT_FOUND;
    *out_fn = best->fn;
    return LOOKUP_FOUND;
}

static int driver_lookup(const char *symbol, void **pfn, int version, cuuint64_t flags)
{
    bool per_thread = (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0;
    void *fn = NULL;
    int found = lookup(symbol, version, per_thread, &fn);
    if (found != LOOKUP_FOUND)
        /* torch and cuda-python probe names that may be absent: not an error */
        TW_DEBUG("cuGetProcAddress: %s (version %d) %s", symbol ? symbol : "(null)", version,
                 found == LOOKUP_NOT_FOUND ? "not found" : "needs a newer version");
    *pfn = fn;
    return found;
}

/* CUDA 12+: an unknown name is CUDA_SUCCESS with pfn NULL and the reason in symbolStatus. */
TW_EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion,
                                       cuuint64_t flags, CUdriverProcAddressQueryResult *symbolStatus)
{
    if (pfn == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    int found = driver_lookup(symbol, pfn, cudaVersion, flags);
    if (symbolStatus != NULL)
        *symbolStatus = found == LOOKUP_FOUND ? CU_GET_PROC_ADDRESS_SUCCESS
                        : found == LOOKUP_NOT_FOUND ? CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND
                                                    : CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT;
    return CUDA_SUCCESS;
}

/* CUDA 11.3 entry point: no status out-parameter, so a miss is CUDA_ERROR_NOT_FOUND. */
TW_EXPORT CUresult cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion,
                                    cuuint64_t flags)
{
    if (pfn == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    return driver_lookup(symbol, pfn, cudaVersion, flags) == LOOKUP_FOUND ? CUDA_SUCCESS
                                                                          : CUDA_ERROR_NOT_FOUND;
}

static cudaError_t runtime_lookup(const char *symbol, void **funcPtr, unsigned int version,
                                  unsigned long long flags, bool ptsz_flavour,
                                  enum cudaDriverEntryPointQueryResult *driverStatus)
{
    if (funcPtr == NULL)
        return cudaErrorInvalidValue;
    /* cudaEnableDefault means per-thread only in code built for the per-thread default
     * stream, which is what calls the _ptsz flavour */
    cuuint64_t driver_flags = flags & cudaEnablePerThreadDefaultStream
                                  ? CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM
                              : flags & cudaEnableLegacyStream ? CU_GET_PROC_ADDRESS_LEGACY_STREAM
                              : ptsz_flavour ? CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM
                                             : CU_GET_PROC_ADDRESS_DEFAULT;
    int found = driver_lookup(symbol, funcPtr, (int)version, driver_flags);
    if (driverStatus != NULL)
        *driverStatus = found == LOOKUP_FOUND ? cudaDriverEntryPointSuccess
                        : found == LOOKUP_NOT_FOUND ? cudaDriverEntryPointSymbolNotFound
                                                    : cudaDriverEntryPointVersionNotSufficent;
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaGetDriverEntryPointByVersion(const char *symbol, void **funcPtr,
                                                       unsigned int cudaVersion,
                                                       unsigned long long flags,
                                                       enum cudaDriverEntryPointQueryResult *driverStatus)
{
    return runtime_lookup(symbol, funcPtr, cudaVersion, flags, false, driverStatus);
}

TW_EXPORT cudaError_t cudaGetDriverEntryPointByVersion_ptsz(
    const char *symbol, void **funcPtr, unsigned int cudaVersion, unsigned long long flags,
    enum cudaDriverEntryPointQueryResult *driverStatus)
{
    return runtime_lookup(symbol, funcPtr, cudaVersion, flags, true, driverStatus);
}

/* The version-less form resolves as the runtime's own CUDA version. */
TW_EXPORT cudaError_t cudaGetDriverEntryPoint(const char *symbol, void **funcPtr,
                                              unsigned long long flags,
                                              enum cudaDriverEntryPointQueryResult *driverStatus)
{
    return runtime_lookup(symbol, funcPtr, CUDART_VERSION, flags, false, driverStatus);
}

TW_EXPORT cudaError_t cudaGetDriverEntryPoint_ptsz(const char *symbol, void **funcPtr,
                                                   unsigned long long flags,
                                                   enum cudaDriverEntryPointQueryResult *driverStatus)
{
    return runtime_lookup(symbol, funcPtr, CUDART_VERSION, flags, true, driverStatus);
}
