/* The driver API as Triton's launcher uses it: libcuda.so.1 opened by name, a module loaded
 * from a cubin, a function looked up and launched, events and stream queries around it.
 * Prints "name value" lines for tests/shim/test_driver_api.py and exits nonzero on the first
 * call that fails. Usage: drv_launch CUBIN */
#include <cuda.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SYM(name) static __typeof__(&name) p_##name
SYM(cuInit); SYM(cuDeviceGet); SYM(cuDevicePrimaryCtxRetain); SYM(cuCtxSetCurrent);
SYM(cuModuleLoadData); SYM(cuModuleGetFunction); SYM(cuModuleGetGlobal_v2); SYM(cuModuleUnload);
SYM(cuFuncGetAttribute); SYM(cuFuncSetAttribute); SYM(cuFuncGetParamInfo); SYM(cuFuncGetName);
SYM(cuMemAlloc_v2); SYM(cuMemcpyHtoD_v2); SYM(cuMemcpyDtoH_v2); SYM(cuMemsetD32_v2);
SYM(cuStreamCreate); SYM(cuStreamQuery); SYM(cuStreamSynchronize); SYM(cuStreamDestroy_v2);
SYM(cuEventCreate); SYM(cuEventRecord); SYM(cuEventSynchronize); SYM(cuEventElapsedTime_v2);
SYM(cuLaunchKernel); SYM(cuLaunchKernelEx); SYM(cuOccupancyMaxActiveBlocksPerMultiprocessor);
SYM(cuOccupancyMaxPotentialClusterSize);

#define CHECK(call)                                                              \
    do {                                                                         \
        CUresult r_ = (call);                                                    \
        if (r_ != CUDA_SUCCESS) {                                                \
            fprintf(stderr, "%s failed: %d (line %d)\n", #call, (int)r_, __LINE__); \
            return 1;                                                            \
        }                                                                        \
    } while (0)

#define LOAD(lib, name)                                                   \
    do {                                                                  \
        *(void **)&p_##name = dlsym(lib, #name);                          \
        if (p_##name == NULL) {                                           \
            fprintf(stderr, "missing %s\n", #name);                       \
            return 1;                                                     \
        }                                                                 \
    } while (0)

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    void *lib = dlopen("libcuda.so.1", RTLD_NOW);
    if (lib == NULL) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    LOAD(lib, cuInit); LOAD(lib, cuDeviceGet); LOAD(lib, cuDevicePrimaryCtxRetain); LOAD(lib, cuCtxSetCurrent);
    LOAD(lib, cuModuleLoadData); LOAD(lib, cuModuleGetFunction); LOAD(lib, cuModuleGetGlobal_v2);
    LOAD(lib, cuModuleUnload); LOAD(lib, cuFuncGetAttribute); LOAD(lib, cuFuncSetAttribute);
    LOAD(lib, cuFuncGetParamInfo); LOAD(lib, cuFuncGetName); LOAD(lib, cuMemAlloc_v2);
    LOAD(lib, cuMemcpyHtoD_v2); LOAD(lib, cuMemcpyDtoH_v2); LOAD(lib, cuMemsetD32_v2);
    LOAD(lib, cuStreamCreate); LOAD(lib, cuStreamQuery); LOAD(lib, cuStreamSynchronize);
    LOAD(lib, cuStreamDestroy_v2); LOAD(lib, cuEventCreate); LOAD(lib, cuEventRecord);
    LOAD(lib, cuEventSynchronize); LOAD(lib, cuEventElapsedTime_v2); LOAD(lib, cuLaunchKernel);
    LOAD(lib, cuLaunchKernelEx); LOAD(lib, cuOccupancyMaxActiveBlocksPerMultiprocessor);
    LOAD(lib, cuOccupancyMaxPotentialClusterSize);

    FILE *f = fopen(argv[1], "rb");
    if (f == NULL)
        return 1;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *image = malloc((size_t)size);
    if (image == NULL || fread(image, 1, (size_t)size, f) != (size_t)size)
        return 1;
    fclose(f);

    CUdevice dev;
    CUcontext ctx;
    CHECK(p_cuInit(0));
    CHECK(p_cuDeviceGet(&dev, 0));
    CHECK(p_cuDevicePrimaryCtxRetain(&ctx, dev));
    CHECK(p_cuCtxSetCurrent(ctx));

    CUmodule mod;
    CUfunction fn;
    CHECK(p_cuModuleLoadData(&mod, image));
    memset(image, 0, (size_t)size); /* the driver keeps its own copy */
    free(image);
    CHECK(p_cuModuleGetFunction(&fn, mod, "scale"));
    printf("missing_function %d\n", (int)p_cuModuleGetFunction(&(CUfunction){0}, mod, "no_such_kernel"));
    const char *name = NULL;
    CHECK(p_cuFuncGetName(&name, fn));
    printf("name %s\n", name);
    int regs = 0, max_threads = 0, max_dyn = 0;
    CHECK(p_cuFuncGetAttribute(&regs, CU_FUNC_ATTRIBUTE_NUM_REGS, fn));
    CHECK(p_cuFuncGetAttribute(&max_threads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, fn));
    CHECK(p_cuFuncSetAttribute(fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 100 * 1024));
    CHECK(p_cuFuncGetAttribute(&max_dyn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, fn));
    printf("regs %d\nmax_threads %d\nmax_dynamic_smem %d\n", regs, max_threads, max_dyn);
    for (size_t i = 0; i < 3; i++) {
        size_t off = 0, sz = 0;
        CHECK(p_cuFuncGetParamInfo(fn, i, &off, &sz));
        printf("param %zu %zu %zu\n", i, off, sz);
    }
    int blocks = 0;
    CHECK(p_cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, fn, 256, 0));
    printf("occupancy_blocks %d\n", blocks);
    CUlaunchConfig cluster_config = {.gridDimX = 16, .gridDimY = 1, .gridDimZ = 1, .blockDimX = 256,
                                     .blockDimY = 1, .blockDimZ = 1};
    int cluster = -1;
    CHECK(p_cuOccupancyMaxPotentialClusterSize(&cluster, fn, &cluster_config));
    printf("cluster_size %d\n", cluster);

    CUdeviceptr gvar;
    size_t gbytes = 0;
    CHECK(p_cuModuleGetGlobal_v2(&gvar, &gbytes, mod, "gvar"));
    printf("global_bytes %zu\n", gbytes);

    enum { N = 1 << 18 };
    CUdeviceptr x;
    CHECK(p_cuMemAlloc_v2(&x, N * sizeof(float)));
    float *host = malloc(N * sizeof(float));
    for (int i = 0; i < N; i++)
        host[i] = (float)i;
    CHECK(p_cuMemcpyHtoD_v2(x, host, N * sizeof(float)));

    /* the launches work on 1 GiB (an unbacked allocation): long enough kernels that the
     * stream is surely still busy when queried */
    enum { BIG = 1 << 28 };
    CUdeviceptr big;
    CHECK(p_cuMemAlloc_v2(&big, (size_t)BIG * sizeof(float)));
    CUstream stream;
    CUevent start, end;
    CHECK(p_cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
    CHECK(p_cuEventCreate(&start, 0));
    CHECK(p_cuEventCreate(&end, 0));
    CHECK(p_cuEventRecord(start, stream));
    int n = BIG;
    float a = 2.0f;
    void *params[] = {&big, &n, &a};
    const int launches = 200;
    for (int i = 0; i < launches; i++)
        CHECK(p_cuLaunchKernel(fn, BIG / 256, 1, 1, 256, 1, 1, 0, stream, params, NULL));
    /* the `extra` form: one packed buffer laid out as the cubin says */
    struct { CUdeviceptr x; int n; float a; } packed = {big, n, a};
    size_t packed_size = sizeof packed;
    void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, &packed, CU_LAUNCH_PARAM_BUFFER_SIZE, &packed_size,
                     CU_LAUNCH_PARAM_END};
    CHECK(p_cuLaunchKernel(fn, BIG / 256, 1, 1, 256, 1, 1, 0, stream, NULL, extra));
    CUlaunchAttribute attr = {.id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE, .value.cooperative = 1};
    CUlaunchConfig config = {.gridDimX = 132, .gridDimY = 1, .gridDimZ = 1, .blockDimX = 256, .blockDimY = 1,
                             .blockDimZ = 1, .sharedMemBytes = 64 * 1024, .hStream = stream,
                             .attrs = &attr, .numAttrs = 1};
    CHECK(p_cuLaunchKernelEx(&config, fn, params, NULL));
    printf("bad_block %d\n", (int)p_cuLaunchKernel(fn, 1, 1, 1, 2048, 1, 1, 0, stream, params, NULL));
    CHECK(p_cuEventRecord(end, stream));
    CUresult before = p_cuStreamQuery(stream);
    printf("query_before %d\n", (int)before);
    CHECK(p_cuStreamSynchronize(stream));
    printf("query_after %d\n", (int)p_cuStreamQuery(stream));
    float ms = 0.0f;
    CHECK(p_cuEventSynchronize(end));
    CHECK(p_cuEventElapsedTime_v2(&ms, start, end));
    printf("elapsed_ms %.6f\n", ms);

    float *back = malloc(N * sizeof(float));
    CHECK(p_cuMemcpyDtoH_v2(back, x, N * sizeof(float)));
    printf("roundtrip %d\n", memcmp(back, host, N * sizeof(float)) == 0);
    CHECK(p_cuMemsetD32_v2(x, 0x3f800000u, 16)); /* 1.0f */
    CHECK(p_cuMemcpyDtoH_v2(back, x, 16 * sizeof(float)));
    printf("memset_d32 %.1f %.1f\n", back[0], back[15]);

    CHECK(p_cuStreamDestroy_v2(stream));
    CHECK(p_cuModuleUnload(mod));
    printf("launches %d\n", launches + 2);
    return 0;
}
