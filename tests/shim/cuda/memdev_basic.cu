// Device properties, allocation accounting, OOM, copies through backed memory, pointer
// attributes and the driver's VMM family, checked from a program's point of view.
// Prints "key=value" lines that tests/shim/test_memory_device.py compares with the spec.
#include <cuda_runtime.h>
#include <cuda.h>
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#define CHECK(call)                                                                        \
    do {                                                                                   \
        cudaError_t e_ = (call);                                                           \
        if (e_ != cudaSuccess) {                                                           \
            fprintf(stderr, "%s failed: %d\n", #call, (int)e_);                            \
            return 1;                                                                      \
        }                                                                                  \
    } while (0)

template <typename F> static F driver(const char *name)
{
    return (F)dlsym(RTLD_DEFAULT, name);
}

int main()
{
    int count = 0;
    CHECK(cudaGetDeviceCount(&count));
    printf("count=%d\n", count);
    cudaDeviceProp prop;
    CHECK(cudaGetDeviceProperties(&prop, 0));
    printf("name=%s\nsm_count=%d\ncc=%d.%d\ntotal=%zu\n", prop.name, prop.multiProcessorCount,
           prop.major, prop.minor, prop.totalGlobalMem);
    int sms = 0;
    CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    printf("attr_sm_count=%d\n", sms);
    int bogus = 0;
    printf("bad_attr=%d\n", (int)cudaDeviceGetAttribute(&bogus, (cudaDeviceAttr)100000, 0));
    if (count > 1) {
        CHECK(cudaSetDevice(1));
        int cur = -1;
        CHECK(cudaGetDevice(&cur));
        printf("set_device=%d\n", cur);
        CHECK(cudaSetDevice(0));
    }

    // small: host-backed, so a round trip keeps the bytes
    int host_in[256], host_out[256];
    for (int i = 0; i < 256; i++)
        host_in[i] = i * 7 + 1;
    void *small;
    CHECK(cudaMalloc(&small, sizeof(host_in)));
    CHECK(cudaMemcpy(small, host_in, sizeof(host_in), cudaMemcpyHostToDevice));
    memset(host_out, 0, sizeof(host_out));
    CHECK(cudaMemcpy(host_out, small, sizeof(host_out), cudaMemcpyDeviceToHost));
    printf("roundtrip=%d\n", memcmp(host_in, host_out, sizeof(host_in)) == 0);
    size_t free0, total;
    CHECK(cudaMemGetInfo(&free0, &total));

    // large: unbacked, counted against capacity
    void *big;
    size_t big_bytes = (size_t)1 << 30;
    CHECK(cudaMalloc(&big, big_bytes));
    size_t free1;
    CHECK(cudaMemGetInfo(&free1, &total));
    printf("free_drop=%zu\n", free0 - free1);
    cudaPointerAttributes pa;
    CHECK(cudaPointerGetAttributes(&pa, big));
    printf("big_type=%d\n", (int)pa.type);
    CHECK(cudaPointerGetAttributes(&pa, host_in));
    printf("host_type=%d\n", (int)pa.type);

    void *too_big = NULL;
    cudaError_t oom = cudaMalloc(&too_big, total);
    printf("oom=%d\n", (int)oom);
    CHECK(cudaFree(big));
    size_t free2;
    CHECK(cudaMemGetInfo(&free2, &total));
    printf("free_restored=%d\n", free2 == free0);
    CHECK(cudaFree(small));

    // driver: host pointers fail DEVICE_POINTER (Triton relies on it), device ones succeed
    typedef CUresult (*attr_fn)(void *, CUpointer_attribute, CUdeviceptr);
    attr_fn get_attr = driver<attr_fn>("cuPointerGetAttribute");
    CUdeviceptr out;
    printf("host_devptr=%d\n", (int)get_attr(&out, CU_POINTER_ATTRIBUTE_DEVICE_POINTER,
                                             (CUdeviceptr)host_in));

    // VMM: reserve a large range, map 2 MiB (backed) and 20 MiB (unbacked) chunks
    typedef CUresult (*reserve_fn)(CUdeviceptr *, size_t, size_t, CUdeviceptr, unsigned long long);
    typedef CUresult (*create_fn)(CUmemGenericAllocationHandle *, size_t, const CUmemAllocationProp *,
                                  unsigned long long);
    typedef CUresult (*map_fn)(CUdeviceptr, size_t, size_t, CUmemGenericAllocationHandle,
                               unsigned long long);
    typedef CUresult (*unmap_fn)(CUdeviceptr, size_t);
    typedef CUresult (*release_fn)(CUmemGenericAllocationHandle);
    typedef CUresult (*afree_fn)(CUdeviceptr, size_t);
    typedef CUresult (*range_fn)(CUdeviceptr *, size_t *, CUdeviceptr);
    CUdeviceptr va = 0;
    size_t reserve_bytes = (size_t)80 << 30;
    CUresult r = driver<reserve_fn>("cuMemAddressReserve")(&va, reserve_bytes, 0, 0, 0);
    CUmemAllocationProp mp;
    memset(&mp, 0, sizeof(mp));
    mp.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    mp.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    mp.location.id = 0;
    CUmemGenericAllocationHandle h_small = 0, h_big = 0;
    size_t before_create;
    CHECK(cudaMemGetInfo(&before_create, &total));
    r = (CUresult)(r | driver<create_fn>("cuMemCreate")(&h_small, 2u << 20, &mp, 0));
    r = (CUresult)(r | driver<create_fn>("cuMemCreate")(&h_big, 20u << 20, &mp, 0));
    size_t after_create;
    CHECK(cudaMemGetInfo(&after_create, &total));
    r = (CUresult)(r | driver<map_fn>("cuMemMap")(va, 2u << 20, 0, h_small, 0));
    r = (CUresult)(r | driver<map_fn>("cuMemMap")(va + (2u << 20), 20u << 20, 0, h_big, 0));
    printf("vmm_status=%d\n", (int)r);
    printf("vmm_charged=%zu\n", before_create - after_create);
    ((int *)va)[5] = 42;  // the 2 MiB chunk is backed: the host may touch it
    printf("vmm_backed_value=%d\n", ((int *)va)[5]);
    CUdeviceptr base = 0;
    size_t size = 0;
    driver<range_fn>("cuMemGetAddressRange_v2")(&base, &size, va + (3u << 20));
    printf("vmm_range_ok=%d\n", base == va + (2u << 20) && size == (20u << 20));
    CHECK(cudaPointerGetAttributes(&pa, (void *)(va + (4u << 20))));
    printf("vmm_type=%d\n", (int)pa.type);
    r = driver<unmap_fn>("cuMemUnmap")(va, 22u << 20);
    r = (CUresult)(r | driver<release_fn>("cuMemRelease")(h_small));
    r = (CUresult)(r | driver<release_fn>("cuMemRelease")(h_big));
    r = (CUresult)(r | driver<afree_fn>("cuMemAddressFree")(va, reserve_bytes));
    size_t after_release;
    CHECK(cudaMemGetInfo(&after_release, &total));
    printf("vmm_release_status=%d\nvmm_restored=%d\n", (int)r, after_release == before_create);
    return 0;
}
