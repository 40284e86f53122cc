/* cudart: streams, events, copies, memsets, kernel registration and launch, graphs, errors.
 * A thin translation onto the timeline, launch and graph core. The _ptsz/_ptds exports are
 * the per-thread-default-stream flavours: their NULL stream is cudaStreamPerThread. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>
#include <cupti_runtime_cbid.h>

#include "tw_core.h"

#define PER_THREAD_STREAM ((cudaStream_t)0x2)

static __thread cudaError_t last_error;

int tw_runtime_status(int status)
{
    if (status != cudaSuccess)
        last_error = (cudaError_t)status;
    return status;
}

static cudaError_t rt(cudaError_t status)
{
    return (cudaError_t)tw_runtime_status(status);
}

static cudaError_t from_core(int status)
{
    switch (status) {
    case TW_OK: return cudaSuccess;
    case TW_ERR_NOMEM: return rt(cudaErrorMemoryAllocation);
    case TW_ERR_NOT_FOUND: return rt(cudaErrorInvalidResourceHandle);
    default: return rt(cudaErrorInvalidValue);
    }
}

/* A capture rule's verdict (graph.c) as the runtime's error. */
static cudaError_t capture_error(int status)
{
    switch (status) {
    case TW_OK: return cudaSuccess;
    case TW_ERR_CAPTURE_UNSUPPORTED: return rt(cudaErrorStreamCaptureUnsupported);
    case TW_ERR_CAPTURE_INVALIDATED: return rt(cudaErrorStreamCaptureInvalidated);
    case TW_ERR_CAPTURE_IMPLICIT: return rt(cudaErrorStreamCaptureImplicit);
    case TW_ERR_CAPTURE_WRONG_THREAD: return rt(cudaErrorStreamCaptureWrongThread);
    case TW_ERR_CAPTURE_MERGE: return rt(cudaErrorStreamCaptureMerge);
    default: return rt(cudaErrorIllegalState);
    }
}

#define CAPTURE_CHECK(expr)                        \
    do {                                           \
        int capture_status_ = (expr);              \
        if (TW_UNLIKELY(capture_status_ != TW_OK)) \
            return capture_error(capture_status_); \
    } while (0)

static cudaStream_t per_thread(cudaStream_t s)
{
    return s == NULL ? PER_THREAD_STREAM : s;
}

/* CPU-side span of an API call in the trace. */
#define API_SPAN(label) \
    static uint32_t api_name_id_; \
    if (TW_UNLIKELY(api_name_id_ == 0)) api_name_id_ = tw_name_intern(label); \
    int64_t api_begin_ns_ = tw_now_ns()
#define API_END() tw_trace_api(api_name_id_, api_begin_ns_, tw_now_ns())

/* A CUPTI runtime-API record around a call, while a CUPTI client collects (api_cupti.c). */
#define CUPTI_BRACKET(cbid)                        \
    bool cupti_on_ = TW_UNLIKELY(tw_cupti_collecting); \
    if (cupti_on_)                                 \
        tw_cupti_api_enter(cbid, false)
#define CUPTI_DONE(status) (cupti_on_ ? (tw_cupti_api_exit(), (status)) : (status))

/* ---------------------------------------------------------------- errors */

TW_EXPORT cudaError_t cudaGetLastError(void)
{
    cudaError_t error = last_error;
    last_error = cudaSuccess;
    return error;
}

TW_EXPORT cudaError_t cudaPeekAtLastError(void)
{
    return last_error;
}

static const char *error_name(cudaError_t error)
{
    switch (error) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    case cudaErrorInvalidDeviceFunction: return "cudaErrorInvalidDeviceFunction";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidSymbol: return "cudaErrorInvalidSymbol";
    case cudaErrorSymbolNotFound: return "cudaErrorSymbolNotFound";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureImplicit: return "cudaErrorStreamCaptureImplicit";
    case cudaErrorStreamCaptureMerge: return "cudaErrorStreamCaptureMerge";
    case cudaErrorStreamCaptureWrongThread: return "cudaErrorStreamCaptureWrongThread";
    case cudaErrorIllegalState: return "cudaErrorIllegalState";
    case cudaErrorPeerAccessAlreadyEnabled: return "cudaErrorPeerAccessAlreadyEnabled";
    case cudaErrorPeerAccessNotEnabled: return "cudaErrorPeerAccessNotEnabled";
    case cudaErrorInvalidPitchValue: return "cudaErrorInvalidPitchValue";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    default: return "cudaErrorUnknown";
    }
}

TW_EXPORT const char *cudaGetErrorName(cudaError_t error)
{
    return error_name(error);
}

TW_EXPORT const char *cudaGetErrorString(cudaError_t error)
{
    switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorNotSupported: return "operation not supported (timewarp: not implemented)";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    default: return error_name(error);
    }
}

/* ---------------------------------------------------------------- streams */

TW_EXPORT cudaError_t cudaStreamCreateWithPriority(cudaStream_t *out, unsigned int flags, int priority)
{
    if (out == NULL || (flags & ~(unsigned)cudaStreamNonBlocking) != 0)
        return rt(cudaErrorInvalidValue);
    tw_ctx_primary_activate(tw_device_current());
    tw_stream *s = tw_stream_create(tw_device_current(),
                                    (flags & cudaStreamNonBlocking) ? TW_STREAM_NON_BLOCKING : 0, priority);
    if (s == NULL)
        return rt(cudaErrorMemoryAllocation);
    *out = (cudaStream_t)s;
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaStreamCreateWithFlags(cudaStream_t *out, unsigned int flags)
{
    return cudaStreamCreateWithPriority(out, flags, 0);
}

TW_EXPORT cudaError_t cudaStreamCreate(cudaStream_t *out)
{
    return cudaStreamCreateWithPriority(out, cudaStreamDefault, 0);
}

TW_EXPORT cudaError_t cudaStreamDestroy(cudaStream_t stream)
{
    if ((uintptr_t)stream <= 2)
        return rt(cudaErrorInvalidResourceHandle);
    tw_stream_destroy(tw_stream_resolve(stream));
    return cudaSuccess;
}

static cudaError_t cudaStreamSynchronize_impl(cudaStream_t stream)
{
    CAPTURE_CHECK(tw_capture_check_sync(tw_stream_resolve(stream)));
    API_SPAN("cudaStreamSynchronize");
    tw_stream_synchronize(tw_stream_resolve(stream));
    API_END();
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaStreamSynchronize(cudaStream_t stream)
{
    CUPTI_BRACKET(CUPTI_RUNTIME_TRACE_CBID_cudaStreamSynchronize_v3020);
    cudaError_t status = cudaStreamSynchronize_impl(stream);
    return CUPTI_DONE(status);
}

TW_EXPORT cudaError_t cudaStreamSynchronize_ptsz(cudaStream_t stream)
{
    return cudaStreamSynchronize(per_thread(stream));
}

TW_EXPORT cudaError_t cudaStreamQuery(cudaStream_t stream)
{
    CAPTURE_CHECK(tw_capture_check_sync(tw_stream_resolve(stream)));
    return tw_stream_query_done(tw_stream_resolve(stream)) ? cudaSuccess : cudaErrorNotReady;
}

TW_EXPORT cudaError_t cudaStreamQuery_ptsz(cudaStream_t stream)
{
    return cudaStreamQuery(per_thread(stream));
}

TW_EXPORT cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags)
{
    if (event == NULL)
        return rt(cudaErrorInvalidResourceHandle);
    CAPTURE_CHECK(tw_capture_check_wait(tw_stream_resolve(stream), (tw_event *)event));
    tw_stream_wait_event(tw_stream_resolve(stream), (tw_event *)event);
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaStreamWaitEvent_ptsz(cudaStream_t stream, cudaEvent_t event, unsigned int flags)
{
    return cudaStreamWaitEvent(per_thread(stream), event, flags);
}

TW_EXPORT cudaError_t cudaStreamGetPriority(cudaStream_t stream, int *priority)
{
    if (priority == NULL)
        return rt(cudaErrorInvalidValue);
    *priority = tw_stream_priority(tw_stream_resolve(stream));
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaStreamGetPriority_ptsz(cudaStream_t stream, int *priority)
{
    return cudaStreamGetPriority(per_thread(stream), priority);
}

TW_EXPORT cudaError_t cudaStreamGetFlags(cudaStream_t stream, unsigned int *flags)
{
    if (flags == NULL)
        return rt(cudaErrorInvalidValue);
    *flags = (tw_stream_flags(tw_stream_resolve(stream)) & TW_STREAM_NON_BLOCKING) ? cudaStreamNonBlocking : 0;
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaStreamGetFlags_ptsz(cudaStream_t stream, unsigned int *flags)
{
    return cudaStreamGetFlags(per_thread(stream), flags);
}

TW_EXPORT cudaError_t cudaStreamGetDevice(cudaStream_t stream, int *device)
{
    if (device == NULL)
        return rt(cudaErrorInvalidValue);
    *device = tw_stream_device(tw_stream_resolve(stream));
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaStreamGetDevice_ptsz(cudaStream_t stream, int *device)
{
    return cudaStreamGetDevice(per_thread(stream), device);
}

TW_EXPORT cudaError_t cudaStreamGetId(cudaStream_t stream, unsigned long long *id)
{
    if (id == NULL)
        return rt(cudaErrorInvalidValue);
    *id = tw_stream_id(tw_stream_resolve(stream));
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaStreamGetId_ptsz(cudaStream_t stream, unsigned long long *id)
{
    return cudaStreamGetId(per_thread(stream), id);
}

TW_EXPORT cudaError_t cudaLaunchHostFunc(cudaStream_t stream, cudaHostFn_t fn, void *user_data)
{
    if (fn == NULL)
        return rt(cudaErrorInvalidValue);
    CAPTURE_CHECK(tw_capture_check_enqueue(tw_stream_resolve(stream)));
    tw_submit_host_func(tw_stream_resolve(stream), fn, user_data);
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaLaunchHostFunc_ptsz(cudaStream_t stream, cudaHostFn_t fn, void *user_data)
{
    return cudaLaunchHostFunc(per_thread(stream), fn, user_data);
}

typedef struct stream_callback {
    cudaStreamCallback_t fn;
    cudaStream_t stream;
    void *user_data;
} stream_callback;

static void run_stream_callback(void *data)
{
    stream_callback cb = *(stream_callback *)data;
    free(data);
    cb.fn(cb.stream, cudaSuccess, cb.user_data);
}

/* A captured callback runs at every replay of its graph: its record outlives each run. */
static void run_captured_stream_callback(void *data)
{
    stream_callback *cb = data;
    cb->fn(cb->stream, cudaSuccess, cb->user_data);
}

TW_EXPORT cudaError_t cudaStreamAddCallback(cudaStream_t stream, cudaStreamCallback_t fn, void *user_data,
                                            unsigned int flags)
{
    stream_callback *cb = malloc(sizeof *cb);
    if (cb == NULL || fn == NULL) {
        free(cb);
        return rt(cudaErrorInvalidValue);
    }
    *cb = (stream_callback){fn, stream, user_data};
    tw_stream *s = tw_stream_resolve(stream);
    int status = tw_capture_check_enqueue(s);
    if (status != TW_OK) {
        free(cb);
        return capture_error(status);
    }
    tw_submit_host_func(s, tw_stream_capture_graph(s) ? run_captured_stream_callback : run_stream_callback, cb);
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaStreamAddCallback_ptsz(cudaStream_t stream, cudaStreamCallback_t fn, void *user_data,
                                                 unsigned int flags)
{
    return cudaStreamAddCallback(per_thread(stream), fn, user_data, flags);
}

/* Stream attributes (access policy windows, priorities, synchronization policy) change
 * nothing the emulator models; they are accepted and read back as set. */
TW_EXPORT cudaError_t cudaStreamSetAttribute(cudaStream_t stream, cudaStreamAttrID attr,
                                             const cudaStreamAttrValue *value)
{
    return value == NULL ? rt(cudaErrorInvalidValue) : cudaSuccess;
}

TW_EXPORT cudaError_t cudaStreamSetAttribute_ptsz(cudaStream_t stream, cudaStreamAttrID attr,
                                                  const cudaStreamAttrValue *value)
{
    return cudaStreamSetAttribute(per_thread(stream), attr, value);
}

TW_EXPORT cudaError_t cudaStreamGetAttribute(cudaStream_t stream, cudaStreamAttrID attr, cudaStreamAttrValue *value)
{
    if (value == NULL)
        return rt(cudaErrorInvalidValue);
    memset(value, 0, sizeof *value);
    if (attr == cudaStreamAttributePriority)
        value->priority = tw_stream_priority(tw_stream_resolve(stream));
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaStreamGetAttribute_ptsz(cudaStream_t stream, cudaStreamAttrID attr,
                                                  cudaStreamAttrValue *value)
{
    return cudaStreamGetAttribute(per_thread(stream), attr, value);
}

TW_EXPORT cudaError_t cudaStreamAttachMemAsync(cudaStream_t stream, void *ptr, size_t length, unsigned int flags)
{
    return cudaSuccess; /* managed memory is host memory here: nothing to migrate */
}

TW_EXPORT cudaError_t cudaStreamAttachMemAsync_ptsz(cudaStream_t stream, void *ptr, size_t length, unsigned int flags)
{
    return cudaStreamAttachMemAsync(per_thread(stream), ptr, length, flags);
}

/* ---------------------------------------------------------------- capture */

static int core_capture_mode(enum cudaStreamCaptureMode mode)
{
    return mode == cudaStreamCaptureModeThreadLocal ? TW_CAPTURE_THREAD_LOCAL
           : mode == cudaStreamCaptureModeRelaxed   ? TW_CAPTURE_RELAXED
                                                    : TW_CAPTURE_GLOBAL;
}

TW_EXPORT cudaError_t cudaStreamBeginCapture(cudaStream_t stream, enum cudaStreamCaptureMode mode)
{
    if ((uintptr_t)stream <= 1)
        return rt(cudaErrorStreamCaptureUnsupported); /* the legacy stream cannot capture */
    if ((unsigned)mode > cudaStreamCaptureModeRelaxed)
        return rt(cudaErrorInvalidValue);
    int status = tw_capture_begin(tw_stream_resolve(stream), core_capture_mode(mode));
    return status == TW_OK ? cudaSuccess : status == TW_ERR_NOMEM ? rt(cudaErrorMemoryAllocation)
                                                                  : rt(cudaErrorIllegalState);
}

TW_EXPORT cudaError_t cudaStreamBeginCapture_ptsz(cudaStream_t stream, enum cudaStreamCaptureMode mode)
{
    return cudaStreamBeginCapture(per_thread(stream), mode);
}

TW_EXPORT cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph)
{
    if (graph == NULL)
        return rt(cudaErrorInvalidValue);
    tw_graph *g = NULL;
    int status = tw_capture_end(tw_stream_resolve(stream), &g);
    *graph = (cudaGraph_t)g;
    if (status == TW_ERR_INVALID)
        return rt(cudaErrorIllegalState); /* the stream is not capturing */
    return capture_error(status);
}

TW_EXPORT cudaError_t cudaStreamEndCapture_ptsz(cudaStream_t stream, cudaGraph_t *graph)
{
    return cudaStreamEndCapture(per_thread(stream), graph);
}

static enum cudaStreamCaptureStatus capture_status(tw_stream *s)
{
    switch (tw_capture_status(s)) {
    case TW_CAPTURE_STATUS_ACTIVE: return cudaStreamCaptureStatusActive;
    case TW_CAPTURE_STATUS_INVALIDATED: return cudaStreamCaptureStatusInvalidated;
    default: return cudaStreamCaptureStatusNone;
    }
}

TW_EXPORT cudaError_t cudaStreamIsCapturing(cudaStream_t stream, enum cudaStreamCaptureStatus *status)
{
    if (status == NULL)
        return rt(cudaErrorInvalidValue);
    tw_stream *s = tw_stream_resolve(stream);
    if (tw_capture_blocks_legacy(s))
        return rt(cudaErrorStreamCaptureImplicit); /* documented: the status is unspecified */
    *status = capture_status(s);
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaStreamIsCapturing_ptsz(cudaStream_t stream, enum cudaStreamCaptureStatus *status)
{
    return cudaStreamIsCapturing(per_thread(stream), status);
}

/* Status, id, graph and the current dependency set (node handles of the capture graph). */
TW_EXPORT cudaError_t cudaStreamGetCaptureInfo(cudaStream_t stream, enum cudaStreamCaptureStatus *status_out,
                                               unsigned long long *id_out, cudaGraph_t *graph_out,
                                               const cudaGraphNode_t **deps_out,
                                               const cudaGraphEdgeData **edges_out, size_t *dep_count_out)
{
    if (status_out == NULL)
        return rt(cudaErrorInvalidValue);
    tw_stream *s = tw_stream_resolve(stream);
    if (tw_capture_blocks_legacy(s))
        return rt(cudaErrorStreamCaptureImplicit);
    tw_graph *g = tw_stream_capture_graph(s);
    *status_out = capture_status(s);
    if (g == NULL)
        return cudaSuccess; /* the other outputs are undefined when not capturing */
    if (id_out != NULL)
        *id_out = tw_stream_capture_id(s);
    if (graph_out != NULL)
        *graph_out = (cudaGraph_t)g;
    void *const *handles = NULL;
    size_t count = tw_capture_dependencies(s, &handles);
    if (deps_out != NULL)
        *deps_out = (const cudaGraphNode_t *)handles;
    if (edges_out != NULL)
        *edges_out = NULL; /* NULL edge data: every edge is a default (full) dependency */
    if (dep_count_out != NULL)
        *dep_count_out = count;
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaStreamGetCaptureInfo_ptsz(cudaStream_t stream, enum cudaStreamCaptureStatus *status_out,
                                                    unsigned long long *id_out, cudaGraph_t *graph_out,
                                                    const cudaGraphNode_t **deps_out,
                                                    const cudaGraphEdgeData **edges_out, size_t *dep_count_out)
{
    return cudaStreamGetCaptureInfo(per_thread(stream), status_out, id_out, graph_out, deps_out, edges_out,
                                    dep_count_out);
}

TW_EXPORT cudaError_t cudaThreadExchangeStreamCaptureMode(enum cudaStreamCaptureMode *mode)
{
    if (mode == NULL || (unsigned)*mode > cudaStreamCaptureModeRelaxed)
        return rt(cudaErrorInvalidValue);
    int previous = tw_capture_exchange_mode(core_capture_mode(*mode));
    *mode = previous == TW_CAPTURE_THREAD_LOCAL ? cudaStreamCaptureModeThreadLocal
            : previous == TW_CAPTURE_RELAXED    ? cudaStreamCaptureModeRelaxed
                                                : cudaStreamCaptureModeGlobal;
    return cudaSuccess;
}

/* ---------------------------------------------------------------- events */

TW_EXPORT cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags)
{
    if (event == NULL)
        return rt(cudaErrorInvalidValue);
    tw_event *e = tw_event_create(flags);
    if (e == NULL)
        return rt(cudaErrorMemoryAllocation);
    *event = (cudaEvent_t)e;
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaEventCreate(cudaEvent_t *event)
{
    return cudaEventCreateWithFlags(event, cudaEventDefault);
}

TW_EXPORT cudaError_t cudaEventDestroy(cudaEvent_t event)
{
    if (event == NULL)
        return rt(cudaErrorInvalidResourceHandle);
    tw_event_destroy((tw_event *)event);
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream)
{
    if (event == NULL)
        return rt(cudaErrorInvalidResourceHandle);
    CAPTURE_CHECK(tw_capture_check_enqueue(tw_stream_resolve(stream)));
    tw_event_record((tw_event *)event, tw_stream_resolve(stream));
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaEventRecord_ptsz(cudaEvent_t event, cudaStream_t stream)
{
    return cudaEventRecord(event, per_thread(stream));
}

TW_EXPORT cudaError_t cudaEventRecordWithFlags(cudaEvent_t event, cudaStream_t stream, unsigned int flags)
{
    return cudaEventRecord(event, stream);
}

TW_EXPORT cudaError_t cudaEventRecordWithFlags_ptsz(cudaEvent_t event, cudaStream_t stream, unsigned int flags)
{
    return cudaEventRecord(event, per_thread(stream));
}

TW_EXPORT cudaError_t cudaEventQuery(cudaEvent_t event)
{
    if (event == NULL)
        return rt(cudaErrorInvalidResourceHandle);
    CAPTURE_CHECK(tw_capture_check_event((tw_event *)event));
    return tw_event_query_done((tw_event *)event) ? cudaSuccess : cudaErrorNotReady;
}

static cudaError_t cudaEventSynchronize_impl(cudaEvent_t event)
{
    if (event == NULL)
        return rt(cudaErrorInvalidResourceHandle);
    CAPTURE_CHECK(tw_capture_check_event((tw_event *)event));
    API_SPAN("cudaEventSynchronize");
    tw_event_synchronize((tw_event *)event);
    API_END();
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaEventSynchronize(cudaEvent_t event)
{
    CUPTI_BRACKET(CUPTI_RUNTIME_TRACE_CBID_cudaEventSynchronize_v3020);
    cudaError_t status = cudaEventSynchronize_impl(event);
    return CUPTI_DONE(status);
}

TW_EXPORT cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end)
{
    if (ms == NULL || start == NULL || end == NULL)
        return rt(cudaErrorInvalidValue);
    tw_event *a = (tw_event *)start, *b = (tw_event *)end;
    if (!tw_event_recorded(a) || !tw_event_recorded(b))
        return rt(cudaErrorInvalidResourceHandle);
    int64_t t0 = tw_event_time_ns(a), t1 = tw_event_time_ns(b);
    int64_t now = tw_now_ns();
    if (t0 > now || t1 > now)
        return rt(cudaErrorNotReady); /* as on the GPU: both must have completed */
    *ms = (float)((double)(t1 - t0) / 1e6);
    return cudaSuccess;
}

/* ---------------------------------------------------------------- device-wide sync */

static cudaError_t cudaDeviceSynchronize_impl(void)
{
    CAPTURE_CHECK(tw_capture_check_device_sync(tw_device_current()));
    API_SPAN("cudaDeviceSynchronize");
    tw_device_synchronize(tw_device_current());
    API_END();
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaDeviceSynchronize(void)
{
    CUPTI_BRACKET(CUPTI_RUNTIME_TRACE_CBID_cudaDeviceSynchronize_v3020);
    cudaError_t status = cudaDeviceSynchronize_impl();
    return CUPTI_DONE(status);
}

/* ---------------------------------------------------------------- copies and memsets */

/* Whether a copy blocks the calling thread until it ends, as the runtime's "API
 * synchronization behavior" documents: synchronous copies to or from the host return once the
 * copy is done (a pageable upload once it is staged: counted to its end, the bound of one
 * staging chunk), device-to-device ones never wait; an async download into pageable memory
 * waits too. Host-to-host copies are handled by the caller (fully synchronous). */
static bool copy_blocks_host(int kind, bool sync_call)
{
    switch (kind) {
    case TW_COPY_D2D:
    case TW_COPY_PEER: return false;
    case TW_COPY_D2H_PAGEABLE: return true;
    default: return sync_call;
    }
}

/* A range [p, p + bytes) that starts in a known allocation must end inside it (the driver
 * checks device and pinned ranges; plain host memory it cannot). */
static bool range_ok(const void *p, size_t bytes)
{
    tw_alloc a;
    return !tw_mem_lookup(p, &a) || (uint64_t)(uintptr_t)p + bytes <= a.base + a.size;
}

static cudaError_t copy_kind_checked(void *dst, const void *src, size_t bytes, tw_stream *s, bool sync_call,
                                     int kind)
{
    if (bytes != 0 && (dst == NULL || src == NULL || !range_ok(dst, bytes) || !range_ok(src, bytes)))
        return rt(cudaErrorInvalidValue);
    CAPTURE_CHECK(sync_call ? tw_capture_check_sync(s) : tw_capture_check_enqueue(s));
    if (bytes == 0)
        return cudaSuccess;
    if (kind == 0)
        kind = tw_mem_copy_kind(dst, src);
    if (kind == TW_COPY_H2H && tw_stream_capture_graph(s) == NULL) {
        /* fully synchronous: after the stream's earlier work, by the host */
        tw_stream_synchronize(s);
        tw_mem_copy_data(dst, src, bytes);
        return cudaSuccess;
    }
    tw_copy(dst, src, bytes, s, kind, copy_blocks_host(kind, sync_call));
    return cudaSuccess;
}

static cudaError_t copy(void *dst, const void *src, size_t bytes, tw_stream *s, bool sync_call)
{
    return copy_kind_checked(dst, src, bytes, s, sync_call, 0);
}

static bool valid_direction(enum cudaMemcpyKind kind)
{
    return (unsigned)kind <= cudaMemcpyDefault;
}

static cudaError_t cudaMemcpy_impl(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind)
{
    if (!valid_direction(kind))
        return rt(cudaErrorInvalidMemcpyDirection);
    API_SPAN("cudaMemcpy");
    cudaError_t status = copy(dst, src, count, tw_stream_resolve(NULL), true);
    API_END();
    return status;
}

TW_EXPORT cudaError_t cudaMemcpy(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind)
{
    CUPTI_BRACKET(CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_v3020);
    cudaError_t status = cudaMemcpy_impl(dst, src, count, kind);
    return CUPTI_DONE(status);
}

TW_EXPORT cudaError_t cudaMemcpy_ptds(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind)
{
    if (!valid_direction(kind))
        return rt(cudaErrorInvalidMemcpyDirection);
    return copy(dst, src, count, tw_stream_resolve(PER_THREAD_STREAM), true);
}

static cudaError_t cudaMemcpyAsync_impl(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
                                      cudaStream_t stream)
{
    if (!valid_direction(kind))
        return rt(cudaErrorInvalidMemcpyDirection);
    API_SPAN("cudaMemcpyAsync");
    cudaError_t status = copy(dst, src, count, tw_stream_resolve(stream), false);
    API_END();
    return status;
}

TW_EXPORT cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
                                      cudaStream_t stream)
{
    CUPTI_BRACKET(CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_v3020);
    cudaError_t status = cudaMemcpyAsync_impl(dst, src, count, kind, stream);
    return CUPTI_DONE(status);
}

TW_EXPORT cudaError_t cudaMemcpyAsync_ptsz(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
                                           cudaStream_t stream)
{
    return cudaMemcpyAsync(dst, src, count, kind, per_thread(stream));
}

/* Peer copies name their devices: a copy between two devices is a peer copy, one within a
 * device a device-to-device copy. cudaMemcpyPeer is asynchronous to the host but ordered with
 * the legacy streams of the current, source and destination devices (events join them). */
static __thread tw_event *peer_before[2], *peer_after;

static void peer_join_before(tw_stream *s, int device, int slot)
{
    if (device == tw_stream_device(s))
        return;
    if (peer_before[slot] == NULL)
        peer_before[slot] = tw_event_create(0);
    tw_event_record(peer_before[slot], tw_stream_resolve_legacy(device));
    tw_stream_wait_event(s, peer_before[slot]);
}

static void peer_join_after(tw_stream *s, int device)
{
    if (device == tw_stream_device(s))
        return;
    if (peer_after == NULL)
        peer_after = tw_event_create(0);
    tw_event_record(peer_after, s);
    tw_stream_wait_event(tw_stream_resolve_legacy(device), peer_after);
}

static cudaError_t copy_peer(void *dst, int dst_device, const void *src, int src_device, size_t count,
                             cudaStream_t stream, bool legacy_ordered)
{
    if (!tw_device_valid(dst_device) || !tw_device_valid(src_device))
        return rt(cudaErrorInvalidDevice);
    tw_stream *s = tw_stream_resolve(stream);
    int kind = dst_device == src_device ? TW_COPY_D2D : TW_COPY_PEER;
    if (!legacy_ordered || tw_stream_capture_graph(s) != NULL || count == 0)
        return copy_kind_checked(dst, src, count, s, false, kind);
    CAPTURE_CHECK(tw_capture_check_unsafe());
    peer_join_before(s, src_device, 0);
    peer_join_before(s, dst_device, 1);
    cudaError_t status = copy_kind_checked(dst, src, count, s, false, kind);
    peer_join_after(s, src_device);
    if (dst_device != src_device)
        peer_join_after(s, dst_device);
    return status;
}

TW_EXPORT cudaError_t cudaMemcpyPeer(void *dst, int dst_device, const void *src, int src_device, size_t count)
{
    return copy_peer(dst, dst_device, src, src_device, count, NULL, true);
}

TW_EXPORT cudaError_t cudaMemcpyPeerAsync(void *dst, int dst_device, const void *src, int src_device,
                                          size_t count, cudaStream_t stream)
{
    return copy_peer(dst, dst_device, src, src_device, count, stream, false);
}

static cudaError_t copy_2d(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                           size_t height, tw_stream *s, bool sync_call)
{
    if (width > dpitch || width > spitch)
        return rt(cudaErrorInvalidPitchValue);
    CAPTURE_CHECK(sync_call ? tw_capture_check_sync(s) : tw_capture_check_enqueue(s));
    if (height == 0 || width == 0)
        return cudaSuccess;
    int kind = tw_mem_copy_kind(dst, src);
    bool capturing = tw_stream_capture_graph(s) != NULL;
    if (kind == TW_COPY_H2H && !capturing)
        tw_stream_synchronize(s); /* fully synchronous */
    if (!capturing)
        for (size_t row = 0; row < height; row++)
            tw_mem_copy_data((char *)dst + row * dpitch, (const char *)src + row * spitch, width);
    if (kind == TW_COPY_H2H)
        return cudaSuccess;
    tw_submit_copy_op(s, kind, (uint64_t)width * height);
    if (copy_blocks_host(kind, sync_call) && !capturing)
        tw_stream_synchronize(s);
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaMemcpy2D(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                                   size_t height, enum cudaMemcpyKind kind)
{
    return copy_2d(dst, dpitch, src, spitch, width, height, tw_stream_resolve(NULL), true);
}

TW_EXPORT cudaError_t cudaMemcpy2D_ptds(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                                        size_t height, enum cudaMemcpyKind kind)
{
    return copy_2d(dst, dpitch, src, spitch, width, height, tw_stream_resolve(PER_THREAD_STREAM), true);
}

TW_EXPORT cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                                        size_t height, enum cudaMemcpyKind kind, cudaStream_t stream)
{
    return copy_2d(dst, dpitch, src, spitch, width, height, tw_stream_resolve(stream), false);
}

TW_EXPORT cudaError_t cudaMemcpy2DAsync_ptsz(void *dst, size_t dpitch, const void *src, size_t spitch,
                                             size_t width, size_t height, enum cudaMemcpyKind kind,
                                             cudaStream_t stream)
{
    return copy_2d(dst, dpitch, src, spitch, width, height, tw_stream_resolve(per_thread(stream)), false);
}

static cudaError_t symbol_copy(void *dst, const void *src, size_t count, tw_stream *s, bool synchronous)
{
    return copy(dst, src, count, s, synchronous);
}

TW_EXPORT cudaError_t cudaGetSymbolAddress(void **address, const void *symbol)
{
    if (address == NULL)
        return rt(cudaErrorInvalidValue);
    void *device = tw_symbol_address(symbol, NULL);
    if (device == NULL)
        return rt(cudaErrorInvalidSymbol);
    *address = device;
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaGetSymbolSize(size_t *size, const void *symbol)
{
    uint64_t bytes = 0;
    if (size == NULL)
        return rt(cudaErrorInvalidValue);
    if (tw_symbol_address(symbol, &bytes) == NULL)
        return rt(cudaErrorInvalidSymbol);
    *size = bytes;
    return cudaSuccess;
}

static cudaError_t to_symbol(const void *symbol, const void *src, size_t count, size_t offset, tw_stream *s,
                             bool synchronous)
{
    uint64_t size = 0;
    char *device = tw_symbol_address(symbol, &size);
    if (device == NULL)
        return rt(cudaErrorInvalidSymbol);
    if (offset + count > size)
        return rt(cudaErrorInvalidValue);
    return symbol_copy(device + offset, src, count, s, synchronous);
}

static cudaError_t from_symbol(void *dst, const void *symbol, size_t count, size_t offset, tw_stream *s,
                               bool synchronous)
{
    uint64_t size = 0;
    char *device = tw_symbol_address(symbol, &size);
    if (device == NULL)
        return rt(cudaErrorInvalidSymbol);
    if (offset + count > size)
        return rt(cudaErrorInvalidValue);
    return symbol_copy(dst, device + offset, count, s, synchronous);
}

TW_EXPORT cudaError_t cudaMemcpyToSymbol(const void *symbol, const void *src, size_t count, size_t offset,
                                         enum cudaMemcpyKind kind)
{
    return to_symbol(symbol, src, count, offset, tw_stream_resolve(NULL), true);
}

TW_EXPORT cudaError_t cudaMemcpyToSymbol_ptds(const void *symbol, const void *src, size_t count, size_t offset,
                                              enum cudaMemcpyKind kind)
{
    return to_symbol(symbol, src, count, offset, tw_stream_resolve(PER_THREAD_STREAM), true);
}

TW_EXPORT cudaError_t cudaMemcpyToSymbolAsync(const void *symbol, const void *src, size_t count, size_t offset,
                                              enum cudaMemcpyKind kind, cudaStream_t stream)
{
    return to_symbol(symbol, src, count, offset, tw_stream_resolve(stream), false);
}

TW_EXPORT cudaError_t cudaMemcpyToSymbolAsync_ptsz(const void *symbol, const void *src, size_t count,
                                                   size_t offset, enum cudaMemcpyKind kind, cudaStream_t stream)
{
    return to_symbol(symbol, src, count, offset, tw_stream_resolve(per_thread(stream)), false);
}

TW_EXPORT cudaError_t cudaMemcpyFromSymbol(void *dst, const void *symbol, size_t count, size_t offset,
                                           enum cudaMemcpyKind kind)
{
    return from_symbol(dst, symbol, count, offset, tw_stream_resolve(NULL), true);
}

TW_EXPORT cudaError_t cudaMemcpyFromSymbol_ptds(void *dst, const void *symbol, size_t count, size_t offset,
                                                enum cudaMemcpyKind kind)
{
    return from_symbol(dst, symbol, count, offset, tw_stream_resolve(PER_THREAD_STREAM), true);
}

TW_EXPORT cudaError_t cudaMemcpyFromSymbolAsync(void *dst, const void *symbol, size_t count, size_t offset,
                                                enum cudaMemcpyKind kind, cudaStream_t stream)
{
    return from_symbol(dst, symbol, count, offset, tw_stream_resolve(stream), false);
}

TW_EXPORT cudaError_t cudaMemcpyFromSymbolAsync_ptsz(void *dst, const void *symbol, size_t count, size_t offset,
                                                     enum cudaMemcpyKind kind, cudaStream_t stream)
{
    return from_symbol(dst, symbol, count, offset, tw_stream_resolve(per_thread(stream)), false);
}

/* The synchronous memsets are asynchronous to the host except when the target is pinned host
 * memory or managed memory ("API synchronization behavior"). */
static bool memset_blocks_host(const void *ptr, bool sync_call)
{
    tw_alloc a;
    return sync_call && tw_mem_lookup(ptr, &a) &&
           (a.kind == TW_MEM_HOST_PINNED || a.kind == TW_MEM_HOST_REGISTERED || a.kind == TW_MEM_MANAGED);
}

static void submit_memset(tw_stream *s, uint64_t bytes)
{
    static uint32_t name_id;
    if (TW_UNLIKELY(name_id == 0))
        name_id = tw_name_intern("memset");
    tw_desc desc;
    memset(&desc, 0, sizeof desc);
    desc.kind = TW_OP_MEMSET;
    desc.device = (uint32_t)tw_stream_device(s);
    desc.bytes = bytes;
    desc.name_id = name_id;
    tw_submit(s, &desc);
}

static cudaError_t memset_on(void *ptr, int value, size_t bytes, tw_stream *s, bool sync_call)
{
    if (bytes != 0 && (ptr == NULL || !range_ok(ptr, bytes)))
        return rt(cudaErrorInvalidValue);
    CAPTURE_CHECK(sync_call ? tw_capture_check_sync(s) : tw_capture_check_enqueue(s));
    if (bytes == 0)
        return cudaSuccess;
    bool capturing = tw_stream_capture_graph(s) != NULL;
    if (!capturing)
        tw_mem_set_data(ptr, value, bytes);
    submit_memset(s, bytes);
    if (memset_blocks_host(ptr, sync_call) && !capturing)
        tw_stream_synchronize(s);
    return cudaSuccess;
}

static cudaError_t cudaMemset_impl(void *ptr, int value, size_t count)
{
    return memset_on(ptr, value, count, tw_stream_resolve(NULL), true);
}

TW_EXPORT cudaError_t cudaMemset(void *ptr, int value, size_t count)
{
    CUPTI_BRACKET(CUPTI_RUNTIME_TRACE_CBID_cudaMemset_v3020);
    cudaError_t status = cudaMemset_impl(ptr, value, count);
    return CUPTI_DONE(status);
}

TW_EXPORT cudaError_t cudaMemset_ptds(void *ptr, int value, size_t count)
{
    return memset_on(ptr, value, count, tw_stream_resolve(PER_THREAD_STREAM), true);
}

static cudaError_t cudaMemsetAsync_impl(void *ptr, int value, size_t count, cudaStream_t stream)
{
    API_SPAN("cudaMemsetAsync");
    cudaError_t status = memset_on(ptr, value, count, tw_stream_resolve(stream), false);
    API_END();
    return status;
}

TW_EXPORT cudaError_t cudaMemsetAsync(void *ptr, int value, size_t count, cudaStream_t stream)
{
    CUPTI_BRACKET(CUPTI_RUNTIME_TRACE_CBID_cudaMemsetAsync_v3020);
    cudaError_t status = cudaMemsetAsync_impl(ptr, value, count, stream);
    return CUPTI_DONE(status);
}

TW_EXPORT cudaError_t cudaMemsetAsync_ptsz(void *ptr, int value, size_t count, cudaStream_t stream)
{
    return cudaMemsetAsync(ptr, value, count, per_thread(stream));
}

static cudaError_t memset_2d(void *ptr, size_t pitch, int value, size_t width, size_t height, tw_stream *s,
                             bool sync_call)
{
    if (width > pitch)
        return rt(cudaErrorInvalidPitchValue);
    CAPTURE_CHECK(sync_call ? tw_capture_check_sync(s) : tw_capture_check_enqueue(s));
    if (width == 0 || height == 0)
        return cudaSuccess;
    /* rows are set one by one (the gaps between them keep their bytes); one op on the stream */
    bool capturing = tw_stream_capture_graph(s) != NULL;
    for (size_t row = 0; row < height && !capturing; row++)
        tw_mem_set_data((char *)ptr + row * pitch, value, width);
    submit_memset(s, (uint64_t)width * height);
    if (memset_blocks_host(ptr, sync_call) && !capturing)
        tw_stream_synchronize(s);
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaMemset2D(void *ptr, size_t pitch, int value, size_t width, size_t height)
{
    return memset_2d(ptr, pitch, value, width, height, tw_stream_resolve(NULL), true);
}

TW_EXPORT cudaError_t cudaMemset2DAsync(void *ptr, size_t pitch, int value, size_t width, size_t height,
                                        cudaStream_t stream)
{
    return memset_2d(ptr, pitch, value, width, height, tw_stream_resolve(stream), false);
}

/* ---------------------------------------------------------------- registration */

TW_EXPORT void **__cudaRegisterFatBinary(void *fatCubin)
{
    return tw_register_fatbin(fatCubin);
}

TW_EXPORT void __cudaRegisterFatBinaryEnd(void **handle)
{
    (void)handle;
}

TW_EXPORT void __cudaUnregisterFatBinary(void **handle)
{
    tw_unregister_fatbin(handle);
}

TW_EXPORT void __cudaRegisterFunction(void **handle, const char *host_fun, char *device_fun,
                                      const char *device_name, int thread_limit, uint3 *tid, uint3 *bid,
                                      dim3 *block_dim, dim3 *grid_dim, int *warp_size)
{
    tw_register_function(handle, host_fun, device_fun != NULL ? device_fun : device_name);
}

TW_EXPORT void __cudaRegisterVar(void **handle, char *host_var, char *device_address, const char *device_name,
                                 int ext, size_t size, int constant, int global)
{
    tw_register_var(host_var, device_name, size);
}

TW_EXPORT void __cudaRegisterManagedVar(void **handle, void **host_var_ptr_address, char *device_address,
                                        const char *device_name, int ext, size_t size, int constant, int global)
{
    tw_register_var(host_var_ptr_address, device_name, size);
}

TW_EXPORT char __cudaInitModule(void **handle)
{
    return 1;
}

typedef struct call_config {
    dim3 grid;
    dim3 block;
    size_t smem;
    cudaStream_t stream;
} call_config;

#define CONFIG_DEPTH 16
static __thread call_config config_stack[CONFIG_DEPTH];
static __thread int config_depth;

TW_EXPORT unsigned __cudaPushCallConfiguration(dim3 grid, dim3 block, size_t smem, struct CUstream_st *stream)
{
    if (config_depth >= CONFIG_DEPTH)
        return cudaErrorInvalidConfiguration;
    config_stack[config_depth++] = (call_config){grid, block, smem, (cudaStream_t)stream};
    return cudaSuccess;
}

TW_EXPORT cudaError_t __cudaPopCallConfiguration(dim3 *grid, dim3 *block, size_t *smem, void *stream)
{
    if (config_depth <= 0)
        return cudaErrorInvalidConfiguration;
    call_config c = config_stack[--config_depth];
    *grid = c.grid;
    *block = c.block;
    *smem = c.smem;
    *(cudaStream_t *)stream = c.stream;
    return cudaSuccess;
}

TW_EXPORT cudaError_t __cudaGetKernel(cudaKernel_t *kernel, const void *func)
{
    tw_kernel *k = tw_kernel_from_stub(func);
    if (k == NULL || kernel == NULL)
        return rt(cudaErrorInvalidDeviceFunction);
    *kernel = (cudaKernel_t)k;
    return cudaSuccess;
}

/* ---------------------------------------------------------------- launch */

static __thread uint64_t thread_active_devices; /* devices whose primary context this thread made active */

static cudaError_t launch_impl(tw_kernel *k, dim3 grid, dim3 block, void **args, size_t smem, cudaStream_t stream,
                               uint32_t flags)
{
    if (TW_UNLIKELY(k == NULL))
        return rt(cudaErrorInvalidDeviceFunction);
    uint64_t threads_per_block = (uint64_t)block.x * block.y * block.z;
    if (TW_UNLIKELY(threads_per_block == 0 || threads_per_block > (uint64_t)tw_spec()->max_threads_per_block ||
                    grid.x == 0 || grid.y == 0 || grid.z == 0))
        return rt(cudaErrorInvalidConfiguration);
    tw_stream *s = tw_stream_resolve(stream);
    CAPTURE_CHECK(tw_capture_check_enqueue(s));
    int device = tw_stream_device(s);
    if (TW_UNLIKELY(!(thread_active_devices & (1ull << (device & 63))))) {
        tw_ctx_primary_activate(device); /* the runtime's implicit context init */
        thread_active_devices |= 1ull << (device & 63);
    }
    if (TW_UNLIKELY(tw_config_get()->trace_api > 1)) {
        API_SPAN("cudaLaunchKernel");
        tw_launch_kernel(k, (tw_dim3){grid.x, grid.y, grid.z}, (tw_dim3){block.x, block.y, block.z},
                         (uint32_t)smem, args, s, flags);
        API_END();
    } else {
        /* the op's record carries the issuing thread and time: no separate span per launch */
        tw_launch_kernel(k, (tw_dim3){grid.x, grid.y, grid.z}, (tw_dim3){block.x, block.y, block.z},
                         (uint32_t)smem, args, s, flags);
    }
    return cudaSuccess;
}

static cudaError_t launch(tw_kernel *k, dim3 grid, dim3 block, void **args, size_t smem, cudaStream_t stream,
                          uint32_t flags)
{
    CUPTI_BRACKET(CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000);
    cudaError_t status = launch_impl(k, grid, block, args, smem, stream, flags);
    return CUPTI_DONE(status);
}

TW_EXPORT cudaError_t __cudaLaunchKernel(cudaKernel_t kernel, dim3 grid, dim3 block, void **args, size_t smem,
                                         cudaStream_t stream)
{
    return launch((tw_kernel *)kernel, grid, block, args, smem, stream, 0);
}

TW_EXPORT cudaError_t __cudaLaunchKernel_ptsz(cudaKernel_t kernel, dim3 grid, dim3 block, void **args,
                                              size_t smem, cudaStream_t stream)
{
    return launch((tw_kernel *)kernel, grid, block, args, smem, per_thread(stream), 0);
}

TW_EXPORT cudaError_t cudaLaunchKernel(const void *func, dim3 grid, dim3 block, void **args, size_t smem,
                                       cudaStream_t stream)
{
    return launch(tw_kernel_from_stub(func), grid, block, args, smem, stream, 0);
}

TW_EXPORT cudaError_t cudaLaunchKernel_ptsz(const void *func, dim3 grid, dim3 block, void **args, size_t smem,
                                            cudaStream_t stream)
{
    return launch(tw_kernel_from_stub(func), grid, block, args, smem, per_thread(stream), 0);
}

TW_EXPORT cudaError_t cudaLaunchCooperativeKernel(const void *func, dim3 grid, dim3 block, void **args,
                                                  size_t smem, cudaStream_t stream)
{
    return launch(tw_kernel_from_stub(func), grid, block, args, smem, stream, TW_FLAG_COOPERATIVE);
}

TW_EXPORT cudaError_t cudaLaunchCooperativeKernel_ptsz(const void *func, dim3 grid, dim3 block, void **args,
                                                       size_t smem, cudaStream_t stream)
{
    return launch(tw_kernel_from_stub(func), grid, block, args, smem, per_thread(stream), TW_FLAG_COOPERATIVE);
}

TW_EXPORT cudaError_t cudaLaunchKernelExC(const cudaLaunchConfig_t *config, const void *func, void **args)
{
    if (config == NULL)
        return rt(cudaErrorInvalidValue);
    uint32_t flags = 0;
    for (unsigned i = 0; i < config->numAttrs; i++)
        if (config->attrs[i].id == cudaLaunchAttributeCooperative && config->attrs[i].val.cooperative)
            flags |= TW_FLAG_COOPERATIVE;
    return launch(tw_kernel_from_stub(func), config->gridDim, config->blockDim, args, config->dynamicSmemBytes,
                  config->stream, flags);
}

TW_EXPORT cudaError_t cudaLaunchKernelExC_ptsz(const cudaLaunchConfig_t *config, const void *func, void **args)
{
    if (config == NULL)
        return rt(cudaErrorInvalidValue);
    cudaLaunchConfig_t copy_config = *config;
    copy_config.stream = per_thread(config->stream);
    return cudaLaunchKernelExC(&copy_config, func, args);
}

/* ---------------------------------------------------------------- function attributes */

TW_EXPORT cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes *attr, const void *func)
{
    tw_kernel *k = tw_kernel_from_stub(func);
    if (attr == NULL || k == NULL)
        return rt(cudaErrorInvalidDeviceFunction);
    const tw_gpu_spec *spec = tw_spec();
    memset(attr, 0, sizeof *attr);
    attr->maxThreadsPerBlock = spec->max_threads_per_block;
    /* register counts are not in the registry: a typical 32 keeps occupancy math sane */
    attr->numRegs = 32;
    attr->ptxVersion = spec->cc_major * 10 + spec->cc_minor;
    attr->binaryVersion = attr->ptxVersion;
    attr->maxDynamicSharedSizeBytes = spec->smem_per_block_bytes;
    attr->preferredShmemCarveout = -1;
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaFuncSetAttribute(const void *func, enum cudaFuncAttribute attr, int value)
{
    if (tw_kernel_from_stub(func) == NULL)
        return rt(cudaErrorInvalidDeviceFunction);
    if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize && value > tw_spec()->smem_per_block_optin_bytes)
        return rt(cudaErrorInvalidValue);
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaFuncSetCacheConfig(const void *func, enum cudaFuncCache config)
{
    return cudaSuccess; /* L1/shared split preferences do not change predicted durations */
}

TW_EXPORT cudaError_t cudaFuncGetName(const char **name, const void *func)
{
    tw_kernel *k = tw_kernel_from_stub(func);
    if (name == NULL || k == NULL)
        return rt(cudaErrorInvalidDeviceFunction);
    *name = tw_kernel_name(k);
    return cudaSuccess;
}

static int occupancy_blocks(int block_size, size_t dynamic_smem)
{
    const tw_gpu_spec *spec = tw_spec();
    if (block_size <= 0)
        return 0;
    int by_threads = spec->max_threads_per_sm / block_size;
    int by_regs = spec->regs_per_sm / (block_size * 32);
    int by_smem = dynamic_smem > 0 ? (int)(spec->smem_per_sm_bytes / dynamic_smem) : spec->max_blocks_per_sm;
    int blocks = spec->max_blocks_per_sm;
    if (by_threads < blocks) blocks = by_threads;
    if (by_regs < blocks) blocks = by_regs;
    if (by_smem < blocks) blocks = by_smem;
    return blocks < 0 ? 0 : blocks;
}

TW_EXPORT cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int *blocks, const void *func,
                                                                             int block_size, size_t dynamic_smem,
                                                                             unsigned int flags)
{
    if (blocks == NULL)
        return rt(cudaErrorInvalidValue);
    *blocks = occupancy_blocks(block_size, dynamic_smem);
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *blocks, const void *func, int block_size,
                                                                    size_t dynamic_smem)
{
    return cudaOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(blocks, func, block_size, dynamic_smem, 0);
}

/* Thread block clusters (Hopper on): a cluster's blocks must be co-resident on one GPC. Every
 * GPC of the catalog's GPUs has at least 8 SMs, the portable cluster size, so a block that fits
 * on an SM at all allows a cluster of 8; non-portable sizes (16) need the function attribute,
 * which the shim does not track, so 8 is the answer. Before compute capability 9 there are no
 * clusters: 0 (what launch code compares against 1 before it asks for a cluster). */
int tw_max_cluster_size(int block_size, size_t dynamic_smem)
{
    if (tw_spec()->cc_major < 9)
        return 0;
    return occupancy_blocks(block_size, dynamic_smem) > 0 ? 8 : 0;
}

TW_EXPORT cudaError_t cudaOccupancyMaxPotentialClusterSize(int *cluster_size, const void *func,
                                                           const cudaLaunchConfig_t *config)
{
    if (cluster_size == NULL || func == NULL || config == NULL)
        return rt(cudaErrorInvalidValue);
    int threads = (int)(config->blockDim.x * config->blockDim.y * config->blockDim.z);
    *cluster_size = tw_max_cluster_size(threads, config->dynamicSmemBytes);
    return cudaSuccess;
}

/* ---------------------------------------------------------------- graphs */

TW_EXPORT cudaError_t cudaGraphCreate(cudaGraph_t *graph, unsigned int flags)
{
    if (graph == NULL)
        return rt(cudaErrorInvalidValue);
    tw_graph *g = tw_graph_create();
    if (g == NULL)
        return rt(cudaErrorMemoryAllocation);
    *graph = (cudaGraph_t)g;
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaGraphDestroy(cudaGraph_t graph)
{
    if (graph == NULL)
        return rt(cudaErrorInvalidValue);
    tw_graph_destroy((tw_graph *)graph);
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags)
{
    if (exec == NULL || graph == NULL)
        return rt(cudaErrorInvalidValue);
    tw_graph_exec *x = NULL;
    int status = tw_graph_instantiate((tw_graph *)graph, &x);
    if (status != TW_OK)
        return from_core(status);
    *exec = (cudaGraphExec_t)x;
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t *exec, cudaGraph_t graph,
                                                    unsigned long long flags)
{
    return cudaGraphInstantiate(exec, graph, flags);
}

TW_EXPORT cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec)
{
    tw_graph_exec_destroy((tw_graph_exec *)exec);
    return cudaSuccess;
}

static cudaError_t cudaGraphLaunch_impl(cudaGraphExec_t exec, cudaStream_t stream)
{
    if (exec == NULL)
        return rt(cudaErrorInvalidValue);
    CAPTURE_CHECK(tw_capture_check_enqueue(tw_stream_resolve(stream)));
    API_SPAN("cudaGraphLaunch");
    int status = tw_graph_launch((tw_graph_exec *)exec, tw_stream_resolve(stream));
    API_END();
    return from_core(status);
}

TW_EXPORT cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream)
{
    CUPTI_BRACKET(CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_v10000);
    cudaError_t status = cudaGraphLaunch_impl(exec, stream);
    return CUPTI_DONE(status);
}

TW_EXPORT cudaError_t cudaGraphLaunch_ptsz(cudaGraphExec_t exec, cudaStream_t stream)
{
    return cudaGraphLaunch(exec, per_thread(stream));
}

TW_EXPORT cudaError_t cudaGraphUpload(cudaGraphExec_t exec, cudaStream_t stream)
{
    return exec == NULL ? rt(cudaErrorInvalidValue) : cudaSuccess; /* upload is free here */
}

TW_EXPORT cudaError_t cudaGraphUpload_ptsz(cudaGraphExec_t exec, cudaStream_t stream)
{
    return cudaGraphUpload(exec, stream);
}

TW_EXPORT cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t *nodes, size_t *count)
{
    if (graph == NULL || count == NULL)
        return rt(cudaErrorInvalidValue);
    size_t total = tw_graph_node_count((tw_graph *)graph);
    if (nodes != NULL) {
        size_t n = *count < total ? *count : total;
        for (size_t i = 0; i < n; i++)
            nodes[i] = (cudaGraphNode_t)tw_graph_node_handle((tw_graph *)graph, (uint32_t)i);
        for (size_t i = n; i < *count; i++)
            nodes[i] = NULL; /* documented: entries past the node count are NULL */
        *count = n;
    } else {
        *count = total;
    }
    return cudaSuccess;
}

/* ---------------------------------------------------------------- profiler markers */

TW_EXPORT cudaError_t cudaProfilerStart(void)
{
    tw_trace_mark("cudaProfilerStart");
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaProfilerStop(void)
{
    tw_trace_mark("cudaProfilerStop");
    return cudaSuccess;
}
