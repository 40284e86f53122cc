/* Runs a sequence of CUDA runtime calls read from stdin, one per line, against whatever
 * provides libcudart (the shim under LD_PRELOAD), and prints each call's status as
 * "index name status". Handles live in small slot tables so that a sequence can name them;
 * tests/shim/test_fuzz_runtime.py generates the sequences and checks the statuses.
 *
 *   stream_create S FLAGS | stream_destroy S | stream_sync S | stream_query S
 *   event_create E | event_record E S | event_sync E | event_query E | event_elapsed E E
 *   stream_wait S E | host_func S | device_sync | set_device D
 *   malloc B BYTES | free B | malloc_async B BYTES S | free_async B S | free_host_pointer
 *   memcpy B B BYTES KIND | memcpy_async B B BYTES S | memcpy_d2h B BYTES | memcpy_h2d B BYTES
 *   memset B BYTES | memset_async B BYTES S | memcpy_null | malloc_null
 *   begin_capture S MODE | end_capture S G | instantiate G X | graph_launch X S | graph_destroy G
 *   event_null_record | stream_is_capturing S
 * Slot S = -1 names the legacy default stream. */
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 8
static cudaStream_t streams[SLOTS];
static cudaEvent_t events[SLOTS];
static void *buffers[SLOTS];
static size_t buffer_bytes[SLOTS];
static cudaGraph_t graphs[SLOTS];
static cudaGraphExec_t execs[SLOTS];
static char host[1 << 16];
static unsigned long host_calls;

static void count_host_call(void *user) { (void)user; host_calls++; }

static int slot(int s) { return s < 0 ? -1 : s % SLOTS; }
static cudaStream_t stream_of(int s) { return s < 0 ? (cudaStream_t)0 : streams[slot(s)]; }

static int run(const char *op, int a, int b, long long c, int d)
{
    if (!strcmp(op, "stream_create")) return cudaStreamCreateWithFlags(&streams[slot(a)], (unsigned)b);
    if (!strcmp(op, "stream_destroy")) { int r = cudaStreamDestroy(streams[slot(a)]); streams[slot(a)] = NULL; return r; }
    if (!strcmp(op, "stream_sync")) return cudaStreamSynchronize(stream_of(a));
    if (!strcmp(op, "stream_query")) return cudaStreamQuery(stream_of(a));
    if (!strcmp(op, "stream_is_capturing")) { enum cudaStreamCaptureStatus st; return cudaStreamIsCapturing(stream_of(a), &st); }
    if (!strcmp(op, "event_create")) return cudaEventCreate(&events[slot(a)]);
    if (!strcmp(op, "event_record")) return cudaEventRecord(events[slot(a)], stream_of(b));
    if (!strcmp(op, "event_sync")) return cudaEventSynchronize(events[slot(a)]);
    if (!strcmp(op, "event_query")) return cudaEventQuery(events[slot(a)]);
    if (!strcmp(op, "event_elapsed")) { float ms; return cudaEventElapsedTime(&ms, events[slot(a)], events[slot(b)]); }
    if (!strcmp(op, "event_null_record")) return cudaEventRecord(NULL, 0);
    if (!strcmp(op, "stream_wait")) return cudaStreamWaitEvent(stream_of(a), events[slot(b)], 0);
    if (!strcmp(op, "host_func")) return cudaLaunchHostFunc(stream_of(a), count_host_call, NULL);
    if (!strcmp(op, "device_sync")) return cudaDeviceSynchronize();
    if (!strcmp(op, "set_device")) return cudaSetDevice(a);
    if (!strcmp(op, "malloc")) { buffer_bytes[slot(a)] = (size_t)c; return cudaMalloc(&buffers[slot(a)], (size_t)c); }
    if (!strcmp(op, "malloc_null")) return cudaMalloc(NULL, 64);
    if (!strcmp(op, "free")) { int r = cudaFree(buffers[slot(a)]); if (r == 0) buffers[slot(a)] = NULL; return r; }
    if (!strcmp(op, "free_host_pointer")) return cudaFree(host + 64);
    if (!strcmp(op, "malloc_async")) { buffer_bytes[slot(a)] = (size_t)c; return cudaMallocAsync(&buffers[slot(a)], (size_t)c, stream_of(b)); }
    if (!strcmp(op, "free_async")) { int r = cudaFreeAsync(buffers[slot(a)], stream_of(b)); if (r == 0) buffers[slot(a)] = NULL; return r; }
    if (!strcmp(op, "memcpy")) return cudaMemcpy(buffers[slot(a)], buffers[slot(b)], (size_t)c, (enum cudaMemcpyKind)d);
    if (!strcmp(op, "memcpy_async")) return cudaMemcpyAsync(buffers[slot(a)], buffers[slot(b)], (size_t)c, cudaMemcpyDefault, stream_of(d));
    if (!strcmp(op, "memcpy_d2h")) return cudaMemcpy(host, buffers[slot(a)], (size_t)c, cudaMemcpyDeviceToHost);
    if (!strcmp(op, "memcpy_h2d")) return cudaMemcpy(buffers[slot(a)], host, (size_t)c, cudaMemcpyHostToDevice);
    if (!strcmp(op, "memcpy_null")) return cudaMemcpy(NULL, host, 16, cudaMemcpyHostToDevice);
    if (!strcmp(op, "memset")) return cudaMemset(buffers[slot(a)], 7, (size_t)c);
    if (!strcmp(op, "memset_async")) return cudaMemsetAsync(buffers[slot(a)], 7, (size_t)c, stream_of(b));
    if (!strcmp(op, "begin_capture")) return cudaStreamBeginCapture(stream_of(a), (enum cudaStreamCaptureMode)b);
    if (!strcmp(op, "end_capture")) return cudaStreamEndCapture(stream_of(a), &graphs[slot(b)]);
    if (!strcmp(op, "instantiate")) return cudaGraphInstantiate(&execs[slot(b)], graphs[slot(a)], 0);
    if (!strcmp(op, "graph_launch")) return cudaGraphLaunch(execs[slot(a)], stream_of(b));
    if (!strcmp(op, "graph_destroy")) { int r = cudaGraphDestroy(graphs[slot(a)]); graphs[slot(a)] = NULL; return r; }
    return -1;
}

int main(void)
{
    char line[256], op[64];
    for (int index = 0; fgets(line, sizeof line, stdin) != NULL; index++) {
        int a = 0, b = 0, d = 0;
        long long c = 0;
        if (sscanf(line, "%63s %d %d %lld %d", op, &a, &b, &c, &d) < 1)
            continue;
        int status = run(op, a, b, c, d);
        printf("%d %s %d\n", index, op, status);
        fflush(stdout);
    }
    printf("end host_calls=%lu\n", host_calls);
    return 0;
}
