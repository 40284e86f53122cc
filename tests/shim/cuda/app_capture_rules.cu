// Stream-capture rules as the CUDA programming guide states them, and host functions captured
// into a graph. Prints RESULT key=value lines with the error codes each case got.
#include <cstdio>
#include <cstring>
#include <pthread.h>
#include <cuda_runtime.h>

#include "check.h"

__global__ void touch(float *y, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] += 1.0f;
}

static char host_log[64];
static int host_log_len;
static void log_a(void *) { host_log[host_log_len++] = 'A'; }
static void log_b(void *) { host_log[host_log_len++] = 'B'; }

struct thread_call {
    cudaStream_t stream;
    int mode;        // cudaStreamCaptureMode of the calling thread
    int result;
    int op;          // 0 = cudaMalloc, 1 = cudaStreamEndCapture
};

static void *other_thread(void *arg) {
    thread_call *c = (thread_call *)arg;
    cudaStreamCaptureMode mode = (cudaStreamCaptureMode)c->mode;
    cudaThreadExchangeStreamCaptureMode(&mode);
    if (c->op == 0) {
        void *p = NULL;
        c->result = cudaMalloc(&p, 256);
        if (c->result == cudaSuccess)
            cudaFree(p);
    } else {
        cudaGraph_t g = NULL;
        c->result = cudaStreamEndCapture(c->stream, &g);
    }
    return NULL;
}

static int in_thread(cudaStream_t s, int mode, int op) {
    thread_call c = {s, mode, -1, op};
    pthread_t t;
    pthread_create(&t, NULL, other_thread, &c);
    pthread_join(t, NULL);
    return c.result;
}

// Capture one kernel on s, run `bad` inside, and report what ending the capture gives.
#define CAPTURE_CASE(label, s, mode, bad)                                                  \
    do {                                                                                   \
        CHECK(cudaStreamBeginCapture(s, mode));                                            \
        touch<<<1, 32, 0, s>>>(y, 32);                                                     \
        int bad_ = (int)(bad);                                                             \
        cudaStreamCaptureStatus st_ = cudaStreamCaptureStatusNone;                         \
        cudaStreamIsCapturing(s, &st_);                                                    \
        cudaGraph_t g_ = (cudaGraph_t)0x1;                                                 \
        int end_ = cudaStreamEndCapture(s, &g_);                                           \
        printf("RESULT case=%s call=%d status=%d end=%d graph_null=%d\n", label, bad_,     \
               (int)st_, end_, g_ == NULL);                                                \
        if (g_ != NULL && g_ != (cudaGraph_t)0x1)                                          \
            cudaGraphDestroy(g_);                                                          \
    } while (0)

int main(void) {
    float *y = NULL;
    CHECK(cudaMalloc(&y, 1 << 20));
    cudaStream_t s, blocking;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    CHECK(cudaStreamCreate(&blocking));
    cudaEvent_t ev;
    CHECK(cudaEventCreate(&ev));
    void *p = NULL;

    // host functions captured into a graph run at each replay, in order
    cudaGraph_t graph;
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    touch<<<1, 32, 0, s>>>(y, 32);
    CHECK(cudaLaunchHostFunc(s, log_a, NULL));
    touch<<<1, 32, 0, s>>>(y, 32);
    CHECK(cudaLaunchHostFunc(s, log_b, NULL));
    const cudaGraphNode_t *deps = NULL;
    size_t dep_count = 0;
    cudaStreamCaptureStatus st;
    unsigned long long capture_id = 0;
    cudaGraph_t capturing_graph = NULL;
    CHECK(cudaStreamGetCaptureInfo(s, &st, &capture_id, &capturing_graph, &deps, NULL, &dep_count));
    cudaGraphNode_t last_dep = dep_count == 1 ? deps[0] : NULL;
    CHECK(cudaStreamEndCapture(s, &graph));
    cudaGraphNode_t nodes[8];
    size_t node_count = 8;
    CHECK(cudaGraphGetNodes(graph, nodes, &node_count));
    printf("RESULT capture_deps=%zu dep_is_last_node=%d graph_matches=%d\n", dep_count,
           node_count == 4 && last_dep == nodes[3], capturing_graph == graph);
    cudaGraphExec_t exec;
    CHECK(cudaGraphInstantiate(&exec, graph, 0));
    for (int i = 0; i < 3; i++)
        CHECK(cudaGraphLaunch(exec, s));
    CHECK(cudaStreamSynchronize(s));
    host_log[host_log_len] = 0;
    printf("RESULT host_log=%s\n", host_log);

    // what a capture forbids
    CAPTURE_CASE("sync_capturing", s, cudaStreamCaptureModeGlobal, cudaStreamSynchronize(s));
    CAPTURE_CASE("query_capturing", s, cudaStreamCaptureModeGlobal, cudaStreamQuery(s));
    CAPTURE_CASE("malloc_global", s, cudaStreamCaptureModeGlobal, cudaMalloc(&p, 256));
    CAPTURE_CASE("device_sync", s, cudaStreamCaptureModeGlobal, cudaDeviceSynchronize());
    CAPTURE_CASE("sync_memcpy", s, cudaStreamCaptureModeGlobal, cudaMemcpy(y, y + 64, 64, cudaMemcpyDefault));
    CAPTURE_CASE("legacy_vs_blocking", blocking, cudaStreamCaptureModeRelaxed,
                 cudaMemsetAsync(y, 0, 64, 0));
    CAPTURE_CASE("legacy_vs_nonblocking", s, cudaStreamCaptureModeRelaxed, cudaMemsetAsync(y, 0, 64, 0));
    CAPTURE_CASE("event_captured", s, cudaStreamCaptureModeRelaxed,
                 (cudaEventRecord(ev, s), cudaEventQuery(ev)));
    CAPTURE_CASE("other_thread_global", s, cudaStreamCaptureModeGlobal,
                 in_thread(s, cudaStreamCaptureModeGlobal, 0));
    CAPTURE_CASE("other_thread_threadlocal", s, cudaStreamCaptureModeThreadLocal,
                 in_thread(s, cudaStreamCaptureModeGlobal, 0));
    CAPTURE_CASE("other_thread_relaxed_mode", s, cudaStreamCaptureModeGlobal,
                 in_thread(s, cudaStreamCaptureModeRelaxed, 0));
    CAPTURE_CASE("launch_after_invalid", s, cudaStreamCaptureModeGlobal,
                 (cudaStreamSynchronize(s), cudaLaunchHostFunc(s, log_a, NULL)));

    // the legacy stream's capture status while a blocking stream captures
    CHECK(cudaStreamBeginCapture(blocking, cudaStreamCaptureModeRelaxed));
    cudaStreamCaptureStatus legacy_status;
    int legacy_query = cudaStreamIsCapturing(0, &legacy_status);
    cudaGraph_t g2 = NULL;
    CHECK(cudaStreamEndCapture(blocking, &g2));
    printf("RESULT legacy_is_capturing=%d\n", legacy_query);

    // a thread's relaxed mode allows cudaMalloc in its own global capture
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
    CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
    int relaxed_malloc = cudaMalloc(&p, 256);
    cudaStreamCaptureMode restored = mode;
    CHECK(cudaThreadExchangeStreamCaptureMode(&restored));
    CHECK(cudaStreamEndCapture(s, &g2));
    printf("RESULT relaxed_malloc=%d previous_mode=%d restored_mode=%d\n", relaxed_malloc, (int)mode,
           (int)restored);

    // a global capture cannot be ended by another thread
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    int wrong_thread = in_thread(s, cudaStreamCaptureModeRelaxed, 1);
    CHECK(cudaStreamEndCapture(s, &g2));
    printf("RESULT end_wrong_thread=%d\n", wrong_thread);
    return 0;
}
