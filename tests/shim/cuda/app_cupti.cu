// A CUPTI activity client, as a profiler is one: buffers registered, kernel / memcpy / memset /
// runtime-API / external-correlation activity enabled, work issued inside an external
// correlation range, flushed. Prints one RESULT line per record it receives and the host's
// virtual CLOCK_REALTIME around the work.
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <cuda_runtime.h>

#include "check.h"
#include <cupti.h>

#define CUPTI_CHECK(call)                                                                  \
    do {                                                                                   \
        CUptiResult r_ = (call);                                                           \
        if (r_ != CUPTI_SUCCESS) {                                                         \
            fprintf(stderr, "FAIL %s:%d %s -> %d\n", __FILE__, __LINE__, #call, (int)r_);  \
            return 1;                                                                      \
        }                                                                                  \
    } while (0)

__global__ void cupti_scale(float *y, float a, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] *= a;
}

static int buffers_requested, buffers_completed;

static void CUPTIAPI requested(uint8_t **buffer, size_t *size, size_t *max_records) {
    *size = 4096; // small: the records span several buffers
    *buffer = (uint8_t *)aligned_alloc(8, *size);
    *max_records = 0;
    buffers_requested++;
}

static void CUPTIAPI completed(CUcontext, uint32_t, uint8_t *buffer, size_t, size_t valid) {
    buffers_completed++;
    CUpti_Activity *record = NULL;
    while (cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
        switch (record->kind) {
        case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
            CUpti_ActivityKernel10 *k = (CUpti_ActivityKernel10 *)record;
            printf("RESULT rec=kernel corr=%u start=%llu end=%llu stream=%u grid=%d block=%d name=%s\n",
                   k->correlationId, (unsigned long long)k->start, (unsigned long long)k->end, k->streamId,
                   k->gridX, k->blockX, k->name);
            break;
        }
        case CUPTI_ACTIVITY_KIND_MEMCPY: {
            CUpti_ActivityMemcpy6 *m = (CUpti_ActivityMemcpy6 *)record;
            printf("RESULT rec=memcpy corr=%u start=%llu end=%llu copy_kind=%d src_kind=%d bytes=%llu\n",
                   m->correlationId, (unsigned long long)m->start, (unsigned long long)m->end, m->copyKind,
                   m->srcKind, (unsigned long long)m->bytes);
            break;
        }
        case CUPTI_ACTIVITY_KIND_MEMSET: {
            CUpti_ActivityMemset4 *m = (CUpti_ActivityMemset4 *)record;
            printf("RESULT rec=memset corr=%u start=%llu end=%llu bytes=%llu\n", m->correlationId,
                   (unsigned long long)m->start, (unsigned long long)m->end, (unsigned long long)m->bytes);
            break;
        }
        case CUPTI_ACTIVITY_KIND_RUNTIME: {
            CUpti_ActivityAPI *a = (CUpti_ActivityAPI *)record;
            const char *name = "?";
            cuptiGetCallbackName(CUPTI_CB_DOMAIN_RUNTIME_API, a->cbid, &name);
            printf("RESULT rec=runtime corr=%u start=%llu end=%llu cbid=%u api=%s\n", a->correlationId,
                   (unsigned long long)a->start, (unsigned long long)a->end, a->cbid, name);
            break;
        }
        case CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION: {
            CUpti_ActivityExternalCorrelation *x = (CUpti_ActivityExternalCorrelation *)record;
            printf("RESULT rec=external corr=%u external=%llu ext_kind=%d\n", x->correlationId,
                   (unsigned long long)x->externalId, (int)x->externalKind);
            break;
        }
        default:
            printf("RESULT rec=other kind=%d\n", (int)record->kind);
        }
    }
    free(buffer);
}

static unsigned long long realtime_ns(void) {
    timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (unsigned long long)t.tv_sec * 1000000000ull + (unsigned long long)t.tv_nsec;
}

int main(void) {
    const size_t n = 1 << 24; // 64 MiB: kernels of tens of microseconds
    float *y = NULL, *pinned = NULL;
    CHECK(cudaMalloc(&y, n * sizeof(float)));
    CHECK(cudaMallocHost(&pinned, 1 << 20));
    cudaStream_t s;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    cupti_scale<<<(unsigned)(n / 256), 256, 0, s>>>(y, 2.0f, n); // before collection: not reported
    CHECK(cudaStreamSynchronize(s));

    CUPTI_CHECK(cuptiActivityRegisterCallbacks(requested, completed));
    CUpti_ActivityKind kinds[] = {CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_MEMCPY,
                                  CUPTI_ACTIVITY_KIND_MEMSET, CUPTI_ACTIVITY_KIND_RUNTIME,
                                  CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION};
    for (CUpti_ActivityKind k : kinds)
        CUPTI_CHECK(cuptiActivityEnable(k));
    printf("RESULT unknown_kind=%d\n", (int)cuptiActivityEnable(CUPTI_ACTIVITY_KIND_PC_SAMPLING));

    unsigned long long before = realtime_ns();
    CUPTI_CHECK(cuptiActivityPushExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, 42));
    for (int i = 0; i < 4; i++)
        cupti_scale<<<(unsigned)(n / 256), 256, 0, s>>>(y, 1.5f, n);
    uint64_t popped = 0;
    CUPTI_CHECK(cuptiActivityPopExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, &popped));
    CHECK(cudaMemcpyAsync(y, pinned, 1 << 20, cudaMemcpyHostToDevice, s));
    CHECK(cudaMemsetAsync(y, 0, 1 << 20, s));
    CHECK(cudaStreamSynchronize(s));
    unsigned long long after = realtime_ns();
    printf("RESULT popped=%llu empty_pop=%d\n", (unsigned long long)popped,
           (int)cuptiActivityPopExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, NULL));
    timespec mono;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    unsigned long long real = realtime_ns();
    printf("RESULT window_begin=%llu window_end=%llu realtime_minus_mono=%lld\n", before, after,
           (long long)(real - ((unsigned long long)mono.tv_sec * 1000000000ull + (unsigned long long)mono.tv_nsec)));

    CUPTI_CHECK(cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED));
    for (CUpti_ActivityKind k : kinds)
        CUPTI_CHECK(cuptiActivityDisable(k));
    cupti_scale<<<(unsigned)(n / 256), 256, 0, s>>>(y, 2.0f, n); // after collection: not reported
    CHECK(cudaStreamSynchronize(s));
    CUPTI_CHECK(cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED));
    size_t dropped = 99;
    CUPTI_CHECK(cuptiActivityGetNumDroppedRecords(NULL, 0, &dropped));
    printf("RESULT buffers_requested=%d buffers_completed=%d dropped=%zu\n", buffers_requested,
           buffers_completed, dropped);
    return 0;
}
