/* Driver API: streams, events, copies, memsets, host functions and graphs, as adapters onto
 * the timeline and graph core. Each entry point that takes a stream has a _ptsz/_ptds twin
 * (what cuda.h names under CUDA_API_PER_THREAD_DEFAULT_STREAM): the twin resolves a NULL
 * stream to the per-thread default stream instead of the legacy one. */
#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>
#include <stdlib.h>
#include <string.h>

#include "tw_core.h"

/* device.c, beyond tw_core.h */

static tw_stream *resolve(CUstream stream, bool per_thread)
{
    if (per_thread && stream == NULL)
        return tw_stream_resolve(CU_STREAM_PER_THREAD);
    return tw_stream_resolve(stream);
}

/* A capture rule's verdict (graph.c) as the driver's status. */
static CUresult capture_result(int status)
{
    switch (status) {
    case TW_OK: return CUDA_SUCCESS;
    case TW_ERR_CAPTURE_UNSUPPORTED: return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    case TW_ERR_CAPTURE_INVALIDATED: return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    case TW_ERR_CAPTURE_IMPLICIT: return CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
    case TW_ERR_CAPTURE_WRONG_THREAD: return CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD;
    case TW_ERR_CAPTURE_MERGE: return CUDA_ERROR_STREAM_CAPTURE_MERGE;
    default: return CUDA_ERROR_ILLEGAL_STATE;
    }
}

#define CAPTURE_CHECK(expr)                        \
    do {                                           \
        int capture_status_ = (expr);              \
        if (TW_UNLIKELY(capture_status_ != TW_OK)) \
            return capture_result(capture_status_); \
    } while (0)

/* The three pseudo-handles (NULL, legacy, per-thread) are never created nor destroyed. */
static bool is_special(CUstream stream)
{
    return stream == NULL || stream == CU_STREAM_LEGACY || stream == CU_STREAM_PER_THREAD;
}

/* ---------------------------------------------------------------- streams */

TW_EXPORT CUresult cuStreamCreateWithPriority(CUstream *phStream, unsigned int flags, int priority)
{
    if (phStream == NULL || (flags & ~(unsigned)CU_STREAM_NON_BLOCKING) != 0)
        return CUDA_ERROR_INVALID_VALUE;
    /* priorities are clamped to the device's range [-5, 0] as the driver does */
    if (priority < -5)
        priority = -5;
    if (priority > 0)
        priority = 0;
    tw_stream *s = tw_stream_create(tw_device_current(),
                                    flags & CU_STREAM_NON_BLOCKING ? TW_STREAM_NON_BLOCKING : 0, priority);
    if (s == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    *phStream = (CUstream)s;
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuStreamCreate(CUstream *phStream, unsigned int Flags)
{
    return cuStreamCreateWithPriority(phStream, Flags, 0);
}

TW_EXPORT CUresult cuStreamDestroy_v2(CUstream hStream)
{
    if (is_special(hStream))
        return CUDA_ERROR_INVALID_HANDLE;
    tw_stream_destroy((tw_stream *)hStream);
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuStreamDestroy(CUstream hStream)
{
    return cuStreamDestroy_v2(hStream);
}

static CUresult stream_sync(CUstream hStream, bool per_thread)
{
    tw_stream *s = resolve(hStream, per_thread);
    CAPTURE_CHECK(tw_capture_check_sync(s));
    tw_stream_synchronize(s);
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuStreamSynchronize(CUstream hStream) { return stream_sync(hStream, false); }
TW_EXPORT CUresult cuStreamSynchronize_ptsz(CUstream hStream) { return stream_sync(hStream, true); }

static CUresult stream_query(CUstream hStream, bool per_thread)
{
    tw_stream *s = resolve(hStream, per_thread);
    CAPTURE_CHECK(tw_capture_check_sync(s));
    return tw_stream_query_done(s) ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

TW_EXPORT CUresult cuStreamQuery(CUstream hStream) { return stream_query(hStream, false); }
TW_EXPORT CUresult cuStreamQuery_ptsz(CUstream hStream) { return stream_query(hStream, true); }

static CUresult stream_wait_event(CUstream hStream, CUevent hEvent, bool per_thread)
{
    if (hEvent == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    CAPTURE_CHECK(tw_capture_check_wait(resolve(hStream, per_thread), (tw_event *)hEvent));
    tw_stream_wait_event(resolve(hStream, per_thread), (tw_event *)hEvent);
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags)
{
    return stream_wait_event(hStream, hEvent, false);
}

TW_EXPORT CUresult cuStreamWaitEvent_ptsz(CUstream hStream, CUevent hEvent, unsigned int Flags)
{
    return stream_wait_event(hStream, hEvent, true);
}

#define STREAM_GETTER(NAME, TYPE, EXPR)                                                   \
    static CUresult NAME##_impl(CUstream hStream, TYPE *out, bool per_thread)            \
    {                                                                                     \
        if (out == NULL)                                                                  \
            return CUDA_ERROR_INVALID_VALUE;                                              \
        tw_stream *s = resolve(hStream, per_thread);                                      \
        *out = (TYPE)(EXPR);                                                              \
        return CUDA_SUCCESS;                                                              \
    }                                                                                     \
    TW_EXPORT CUresult NAME(CUstream hStream, TYPE *out) { return NAME##_impl(hStream, out, false); } \
    TW_EXPORT CUresult NAME##_ptsz(CUstream hStream, TYPE *out) { return NAME##_impl(hStream, out, true); }

STREAM_GETTER(cuStreamGetPriority, int, tw_stream_priority(s))
STREAM_GETTER(cuStreamGetFlags, unsigned int,
              (tw_stream_flags(s) & TW_STREAM_NON_BLOCKING) ? CU_STREAM_NON_BLOCKING : CU_STREAM_DEFAULT)
STREAM_GETTER(cuStreamGetId, unsigned long long, tw_stream_id(s))
STREAM_GETTER(cuStreamGetDevice, CUdevice, tw_stream_device(s))
STREAM_GETTER(cuStreamGetCtx, CUcontext, tw_ctx_primary(tw_stream_device(s)))

static CUresult stream_get_ctx_v2(CUstream hStream, CUcontext *pCtx, CUgreenCtx *pGreenCtx, bool per_thread)
{
    if (pCtx == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    *pCtx = (CUcontext)tw_ctx_primary(tw_stream_device(resolve(hStream, per_thread)));
    if (pGreenCtx != NULL)
        *pGreenCtx = NULL; /* no green contexts */
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuStreamGetCtx_v2(CUstream hStream, CUcontext *pCtx, CUgreenCtx *pGreenCtx)
{
    return stream_get_ctx_v2(hStream, pCtx, pGreenCtx, false);
}

TW_EXPORT CUresult cuStreamGetCtx_v2_ptsz(CUstream hStream, CUcontext *pCtx, CUgreenCtx *pGreenCtx)
{
    return stream_get_ctx_v2(hStream, pCtx, pGreenCtx, true);
}

/* ---------------------------------------------------------------- capture */

static int core_capture_mode(CUstreamCaptureMode mode)
{
    return mode == CU_STREAM_CAPTURE_MODE_THREAD_LOCAL ? TW_CAPTURE_THREAD_LOCAL
           : mode == CU_STREAM_CAPTURE_MODE_RELAXED    ? TW_CAPTURE_RELAXED
                                                       : TW_CAPTURE_GLOBAL;
}

static CUresult begin_capture(CUstream hStream, CUstreamCaptureMode mode, bool per_thread)
{
    if ((!per_thread && hStream == NULL) || hStream == CU_STREAM_LEGACY)
        return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED; /* the legacy stream cannot be captured */
    if ((unsigned)mode > CU_STREAM_CAPTURE_MODE_RELAXED)
        return CUDA_ERROR_INVALID_VALUE;
    int status = tw_capture_begin(resolve(hStream, per_thread), core_capture_mode(mode));
    return status == TW_OK ? CUDA_SUCCESS
           : status == TW_ERR_NOMEM ? CUDA_ERROR_OUT_OF_MEMORY
                                    : CUDA_ERROR_ILLEGAL_STATE;
}

TW_EXPORT CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode)
{
    return begin_capture(hStream, mode, false);
}

TW_EXPORT CUresult cuStreamBeginCapture_v2_ptsz(CUstream hStream, CUstreamCaptureMode mode)
{
    return begin_capture(hStream, mode, true);
}

TW_EXPORT CUresult cuStreamBeginCapture(CUstream hStream)
{
    return begin_capture(hStream, CU_STREAM_CAPTURE_MODE_GLOBAL, false);
}

TW_EXPORT CUresult cuStreamBeginCapture_ptsz(CUstream hStream)
{
    return begin_capture(hStream, CU_STREAM_CAPTURE_MODE_GLOBAL, true);
}

static CUresult end_capture(CUstream hStream, CUgraph *phGraph, bool per_thread)
{
    if (phGraph == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    tw_graph *g = NULL;
    int status = tw_capture_end(resolve(hStream, per_thread), &g);
    *phGraph = (CUgraph)g;
    return status == TW_ERR_INVALID ? CUDA_ERROR_ILLEGAL_STATE : capture_result(status);
}

TW_EXPORT CUresult cuStreamEndCapture(CUstream hStream, CUgraph *phGraph)
{
    return end_capture(hStream, phGraph, false);
}

TW_EXPORT CUresult cuStreamEndCapture_ptsz(CUstream hStream, CUgraph *phGraph)
{
    return end_capture(hStream, phGraph, true);
}

static CUstreamCaptureStatus capture_status(tw_stream *s)
{
    switch (tw_capture_status(s)) {
    case TW_CAPTURE_STATUS_ACTIVE: return CU_STREAM_CAPTURE_STATUS_ACTIVE;
    case TW_CAPTURE_STATUS_INVALIDATED: return CU_STREAM_CAPTURE_STATUS_INVALIDATED;
    default: return CU_STREAM_CAPTURE_STATUS_NONE;
    }
}

static CUresult is_capturing(CUstream hStream, CUstreamCaptureStatus *status, bool per_thread)
{
    if (status == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    tw_stream *s = resolve(hStream, per_thread);
    if (tw_capture_blocks_legacy(s))
        return CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
    *status = capture_status(s);
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuStreamIsCapturing(CUstream hStream, CUstreamCaptureStatus *captureStatus)
{
    return is_capturing(hStream, captureStatus, false);
}

TW_EXPORT CUresult cuStreamIsCapturing_ptsz(CUstream hStream, CUstreamCaptureStatus *captureStatus)
{
    return is_capturing(hStream, captureStatus, true);
}

/* Capture info: status, id, graph and the dependency set as node handles. */
static CUresult capture_info(CUstream hStream, CUstreamCaptureStatus *status, cuuint64_t *id, CUgraph *graph,
                             const CUgraphNode **deps, const CUgraphEdgeData **edges, size_t *num_deps,
                             bool per_thread)
{
    if (status == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    tw_stream *s = resolve(hStream, per_thread);
    if (tw_capture_blocks_legacy(s))
        return CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
    tw_graph *g = tw_stream_capture_graph(s);
    *status = capture_status(s);
    if (g == NULL)
        return CUDA_SUCCESS;
    if (id != NULL)
        *id = tw_stream_capture_id(s);
    if (graph != NULL)
        *graph = (CUgraph)g;
    void *const *handles = NULL;
    size_t count = tw_capture_dependencies(s, &handles);
    if (deps != NULL)
        *deps = (const CUgraphNode *)handles;
    if (edges != NULL)
        *edges = NULL;
    if (num_deps != NULL)
        *num_deps = count;
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuStreamGetCaptureInfo(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
                                          cuuint64_t *id_out)
{
    return capture_info(hStream, captureStatus_out, id_out, NULL, NULL, NULL, NULL, false);
}

TW_EXPORT CUresult cuStreamGetCaptureInfo_ptsz(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
                                               cuuint64_t *id_out)
{
    return capture_info(hStream, captureStatus_out, id_out, NULL, NULL, NULL, NULL, true);
}

TW_EXPORT CUresult cuStreamGetCaptureInfo_v2(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
                                             cuuint64_t *id_out, CUgraph *graph_out,
                                             const CUgraphNode **dependencies_out, size_t *numDependencies_out)
{
    return capture_info(hStream, captureStatus_out, id_out, graph_out, dependencies_out, NULL,
                        numDependencies_out, false);
}

TW_EXPORT CUresult cuStreamGetCaptureInfo_v2_ptsz(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
                                                  cuuint64_t *id_out, CUgraph *graph_out,
                                                  const CUgraphNode **dependencies_out,
                                                  size_t *numDependencies_out)
{
    return capture_info(hStream, captureStatus_out, id_out, graph_out, dependencies_out, NULL,
                        numDependencies_out, true);
}

TW_EXPORT CUresult cuStreamGetCaptureInfo_v3(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
                                             cuuint64_t *id_out, CUgraph *graph_out,
                                             const CUgraphNode **dependencies_out,
                                             const CUgraphEdgeData **edgeData_out, size_t *numDependencies_out)
{
    return capture_info(hStream, captureStatus_out, id_out, graph_out, dependencies_out, edgeData_out,
                        numDependencies_out, false);
}

TW_EXPORT CUresult cuStreamGetCaptureInfo_v3_ptsz(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
                                                  cuuint64_t *id_out, CUgraph *graph_out,
                                                  const CUgraphNode **dependencies_out,
                                                  const CUgraphEdgeData **edgeData_out,
                                                  size_t *numDependencies_out)
{
    return capture_info(hStream, captureStatus_out, id_out, graph_out, dependencies_out, edgeData_out,
                        numDependencies_out, true);
}

TW_EXPORT CUresult cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode *mode)
{
    if (mode == NULL || (unsigned)*mode > CU_STREAM_CAPTURE_MODE_RELAXED)
        return CUDA_ERROR_INVALID_VALUE;
    int previous = tw_capture_exchange_mode(core_capture_mode(*mode));
    *mode = previous == TW_CAPTURE_THREAD_LOCAL ? CU_STREAM_CAPTURE_MODE_THREAD_LOCAL
            : previous == TW_CAPTURE_RELAXED    ? CU_STREAM_CAPTURE_MODE_RELAXED
                                                : CU_STREAM_CAPTURE_MODE_GLOBAL;
    return CUDA_SUCCESS;
}

/* ---------------------------------------------------------------- events */

TW_EXPORT CUresult cuEventCreate(CUevent *phEvent, unsigned int Flags)
{
    if (phEvent == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    tw_event *e = tw_event_create(Flags);
    if (e == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    *phEvent = (CUevent)e;
    return CUDA_SUCCESS;
}

static CUresult event_record(CUevent hEvent, CUstream hStream, bool per_thread)
{
    if (hEvent == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    CAPTURE_CHECK(tw_capture_check_enqueue(resolve(hStream, per_thread)));
    tw_event_record((tw_event *)hEvent, resolve(hStream, per_thread));
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuEventRecord(CUevent hEvent, CUstream hStream) { return event_record(hEvent, hStream, false); }
TW_EXPORT CUresult cuEventRecord_ptsz(CUevent hEvent, CUstream hStream) { return event_record(hEvent, hStream, true); }

TW_EXPORT CUresult cuEventRecordWithFlags(CUevent hEvent, CUstream hStream, unsigned int flags)
{
    return event_record(hEvent, hStream, false);
}

TW_EXPORT CUresult cuEventRecordWithFlags_ptsz(CUevent hEvent, CUstream hStream, unsigned int flags)
{
    return event_record(hEvent, hStream, true);
}

TW_EXPORT CUresult cuEventSynchronize(CUevent hEvent)
{
    if (hEvent == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    CAPTURE_CHECK(tw_capture_check_event((tw_event *)hEvent));
    tw_event_synchronize((tw_event *)hEvent);
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuEventQuery(CUevent hEvent)
{
    if (hEvent == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    CAPTURE_CHECK(tw_capture_check_event((tw_event *)hEvent));
    return tw_event_query_done((tw_event *)hEvent) ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

TW_EXPORT CUresult cuEventElapsedTime_v2(float *pMilliseconds, CUevent hStart, CUevent hEnd)
{
    if (pMilliseconds == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    tw_event *start = (tw_event *)hStart, *end = (tw_event *)hEnd;
    if (start == NULL || end == NULL || !tw_event_recorded(start) || !tw_event_recorded(end))
        return CUDA_ERROR_INVALID_HANDLE;
    if (!tw_event_query_done(start) || !tw_event_query_done(end))
        return CUDA_ERROR_NOT_READY;
    *pMilliseconds = (float)((double)(tw_event_time_ns(end) - tw_event_time_ns(start)) / 1e6);
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuEventElapsedTime(float *pMilliseconds, CUevent hStart, CUevent hEnd)
{
    return cuEventElapsedTime_v2(pMilliseconds, hStart, hEnd);
}

TW_EXPORT CUresult cuEventDestroy_v2(CUevent hEvent)
{
    if (hEvent == NULL)
        return CUDA_ERROR_INVALID_HANDLE;
    tw_event_destroy((tw_event *)hEvent);
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuEventDestroy(CUevent hEvent) { return cuEventDestroy_v2(hEvent); }

/* ---------------------------------------------------------------- copies and memsets */

static void *dptr(CUdeviceptr p) { return (void *)(uintptr_t)p; }

/* Host synchronisation as the driver documents it ("API synchronization behavior"): copies to
 * or from the host block the synchronous calls (a pageable upload counted to its end, the bound
 * of one staging chunk), device-to-device never, an async download to pageable memory always;
 * host-to-host copies are fully synchronous (after the stream's earlier work). */
static CUresult copy(void *dst, const void *src, size_t bytes, tw_stream *s, bool sync_call, bool peer)
{
    if (bytes != 0 && (dst == NULL || src == NULL))
        return CUDA_ERROR_INVALID_VALUE;
    CAPTURE_CHECK(sync_call ? tw_capture_check_sync(s) : tw_capture_check_enqueue(s));
    if (bytes == 0)
        return CUDA_SUCCESS;
    int kind = peer ? TW_COPY_PEER : tw_mem_copy_kind(dst, src);
    if (kind == TW_COPY_H2H && tw_stream_capture_graph(s) == NULL) {
        tw_stream_synchronize(s);
        tw_mem_copy_data(dst, src, bytes);
        return CUDA_SUCCESS;
    }
    bool blocks = kind == TW_COPY_D2H_PAGEABLE || (sync_call && kind != TW_COPY_D2D && kind != TW_COPY_PEER);
    tw_copy(dst, src, bytes, s, kind, blocks);
    return CUDA_SUCCESS;
}

#define SYNC_COPY(NAME, PARAMS, DST, SRC, BYTES)                                                   \
    TW_EXPORT CUresult NAME PARAMS { return copy(DST, SRC, BYTES, resolve(NULL, false), true, false); } \
    TW_EXPORT CUresult NAME##_ptds PARAMS { return copy(DST, SRC, BYTES, resolve(NULL, true), true, false); }

#define ASYNC_COPY(NAME, PARAMS, DST, SRC, BYTES)                                                        \
    TW_EXPORT CUresult NAME PARAMS { return copy(DST, SRC, BYTES, resolve(hStream, false), false, false); } \
    TW_EXPORT CUresult NAME##_ptsz PARAMS { return copy(DST, SRC, BYTES, resolve(hStream, true), false, false); }

SYNC_COPY(cuMemcpy, (CUdeviceptr dst, CUdeviceptr src, size_t ByteCount), dptr(dst), dptr(src), ByteCount)
SYNC_COPY(cuMemcpyHtoD_v2, (CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount), dptr(dstDevice),
          srcHost, ByteCount)
SYNC_COPY(cuMemcpyDtoH_v2, (void *dstHost, CUdeviceptr srcDevice, size_t ByteCount), dstHost, dptr(srcDevice),
          ByteCount)
SYNC_COPY(cuMemcpyDtoD_v2, (CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount), dptr(dstDevice),
          dptr(srcDevice), ByteCount)
ASYNC_COPY(cuMemcpyAsync, (CUdeviceptr dst, CUdeviceptr src, size_t ByteCount, CUstream hStream), dptr(dst),
           dptr(src), ByteCount)
ASYNC_COPY(cuMemcpyHtoDAsync_v2, (CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount, CUstream hStream),
           dptr(dstDevice), srcHost, ByteCount)
ASYNC_COPY(cuMemcpyDtoHAsync_v2, (void *dstHost, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream),
           dstHost, dptr(srcDevice), ByteCount)
ASYNC_COPY(cuMemcpyDtoDAsync_v2, (CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream),
           dptr(dstDevice), dptr(srcDevice), ByteCount)

static CUresult copy_peer(CUdeviceptr dst, CUcontext dstContext, CUdeviceptr src, CUcontext srcContext,
                          size_t bytes, tw_stream *s, bool synchronous)
{
    if (tw_ctx_device(dstContext) < 0 || tw_ctx_device(srcContext) < 0)
        return CUDA_ERROR_INVALID_CONTEXT;
    bool peer = tw_ctx_device(dstContext) != tw_ctx_device(srcContext);
    return copy(dptr(dst), dptr(src), bytes, s, synchronous, peer);
}

TW_EXPORT CUresult cuMemcpyPeer(CUdeviceptr dstDevice, CUcontext dstContext, CUdeviceptr srcDevice,
                                CUcontext srcContext, size_t ByteCount)
{
    return copy_peer(dstDevice, dstContext, srcDevice, srcContext, ByteCount, resolve(NULL, false), true);
}

TW_EXPORT CUresult cuMemcpyPeer_ptds(CUdeviceptr dstDevice, CUcontext dstContext, CUdeviceptr srcDevice,
                                     CUcontext srcContext, size_t ByteCount)
{
    return copy_peer(dstDevice, dstContext, srcDevice, srcContext, ByteCount, resolve(NULL, true), true);
}

TW_EXPORT CUresult cuMemcpyPeerAsync(CUdeviceptr dstDevice, CUcontext dstContext, CUdeviceptr srcDevice,
                                     CUcontext srcContext, size_t ByteCount, CUstream hStream)
{
    return copy_peer(dstDevice, dstContext, srcDevice, srcContext, ByteCount, resolve(hStream, false), false);
}

TW_EXPORT CUresult cuMemcpyPeerAsync_ptsz(CUdeviceptr dstDevice, CUcontext dstContext, CUdeviceptr srcDevice,
                                          CUcontext srcContext, size_t ByteCount, CUstream hStream)
{
    return copy_peer(dstDevice, dstContext, srcDevice, srcContext, ByteCount, resolve(hStream, true), false);
}

/* Memset of N elements of 1, 2 or 4 bytes. A uniform byte pattern goes through the memory
 * core; wider patterns are written element by element where the range is backed. */
static CUresult memset_elems(CUdeviceptr dst, uint32_t value, size_t elem, size_t count, tw_stream *s,
                             bool synchronous)
{
    static uint32_t name_id;
    if (count == 0)
        return CUDA_SUCCESS;
    if (dst == 0 || (dst % elem) != 0)
        return CUDA_ERROR_INVALID_VALUE;
    CAPTURE_CHECK(synchronous ? tw_capture_check_sync(s) : tw_capture_check_enqueue(s));
    uint64_t bytes = (uint64_t)count * elem;
    bool capturing = tw_stream_capture_graph(s) != NULL;
    if (!capturing) {
        uint8_t b = (uint8_t)value;
        bool uniform = elem == 1 || (elem == 2 && value == (uint32_t)(b * 0x0101u)) ||
                       (elem == 4 && value == b * 0x01010101u);
        if (uniform) {
            tw_mem_set_data(dptr(dst), b, bytes);
        } else {
            tw_alloc a;
            if (tw_mem_lookup(dptr(dst), &a) && a.backed && dst + bytes <= a.base + a.size) {
                uint8_t *p = dptr(dst);
                for (size_t i = 0; i < count; i++)
                    memcpy(p + i * elem, &value, elem); /* little-endian: low bytes first */
            }
        }
    }
    if (TW_UNLIKELY(name_id == 0))
        name_id = tw_name_intern("memset");
    tw_desc desc;
    memset(&desc, 0, sizeof desc);
    desc.kind = TW_OP_MEMSET;
    desc.device = (uint32_t)tw_stream_device(s);
    desc.bytes = bytes;
    desc.name_id = name_id;
    tw_submit(s, &desc);
    /* synchronous memsets are asynchronous to the host but for pinned or managed targets */
    tw_alloc target;
    bool host_target = tw_mem_lookup(dptr(dst), &target) &&
                       (target.kind == TW_MEM_HOST_PINNED || target.kind == TW_MEM_HOST_REGISTERED ||
                        target.kind == TW_MEM_MANAGED);
    if (synchronous && host_target && !capturing)
        tw_stream_synchronize(s);
    return CUDA_SUCCESS;
}

#define MEMSET(NAME, TYPE, ELEM)                                                                          \
    TW_EXPORT CUresult NAME##_v2(CUdeviceptr dstDevice, TYPE v, size_t N)                                 \
    { return memset_elems(dstDevice, v, ELEM, N, resolve(NULL, false), true); }                           \
    TW_EXPORT CUresult NAME##_v2_ptds(CUdeviceptr dstDevice, TYPE v, size_t N)                            \
    { return memset_elems(dstDevice, v, ELEM, N, resolve(NULL, true), true); }                            \
    TW_EXPORT CUresult NAME##Async(CUdeviceptr dstDevice, TYPE v, size_t N, CUstream hStream)             \
    { return memset_elems(dstDevice, v, ELEM, N, resolve(hStream, false), false); }                       \
    TW_EXPORT CUresult NAME##Async_ptsz(CUdeviceptr dstDevice, TYPE v, size_t N, CUstream hStream)        \
    { return memset_elems(dstDevice, v, ELEM, N, resolve(hStream, true), false); }

MEMSET(cuMemsetD8, unsigned char, 1)
MEMSET(cuMemsetD16, unsigned short, 2)
MEMSET(cuMemsetD32, unsigned int, 4)

/* ---------------------------------------------------------------- host functions */

static CUresult launch_host_func(CUstream hStream, CUhostFn fn, void *userData, bool per_thread)
{
    if (fn == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    CAPTURE_CHECK(tw_capture_check_enqueue(resolve(hStream, per_thread)));
    tw_submit_host_func(resolve(hStream, per_thread), fn, userData);
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuLaunchHostFunc(CUstream hStream, CUhostFn fn, void *userData)
{
    return launch_host_func(hStream, fn, userData, false);
}

TW_EXPORT CUresult cuLaunchHostFunc_ptsz(CUstream hStream, CUhostFn fn, void *userData)
{
    return launch_host_func(hStream, fn, userData, true);
}

typedef struct stream_callback {
    CUstreamCallback fn;
    CUstream stream;
    void *user;
} stream_callback;

static void run_stream_callback(void *arg)
{
    stream_callback *cb = arg;
    cb->fn(cb->stream, CUDA_SUCCESS, cb->user);
    free(cb);
}

/* A captured callback runs at every replay: its record is kept. */
static void run_captured_stream_callback(void *arg)
{
    stream_callback *cb = arg;
    cb->fn(cb->stream, CUDA_SUCCESS, cb->user);
}

static CUresult add_callback(CUstream hStream, CUstreamCallback callback, void *userData, bool per_thread)
{
    if (callback == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    tw_stream *s = resolve(hStream, per_thread);
    CAPTURE_CHECK(tw_capture_check_enqueue(s));
    stream_callback *cb = malloc(sizeof *cb);
    if (cb == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    *cb = (stream_callback){callback, hStream, userData};
    tw_submit_host_func(s, tw_stream_capture_graph(s) ? run_captured_stream_callback : run_stream_callback, cb);
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuStreamAddCallback(CUstream hStream, CUstreamCallback callback, void *userData,
                                       unsigned int flags)
{
    return add_callback(hStream, callback, userData, false);
}

TW_EXPORT CUresult cuStreamAddCallback_ptsz(CUstream hStream, CUstreamCallback callback, void *userData,
                                            unsigned int flags)
{
    return add_callback(hStream, callback, userData, true);
}

/* ---------------------------------------------------------------- graphs */

TW_EXPORT CUresult cuGraphCreate(CUgraph *phGraph, unsigned int flags)
{
    if (phGraph == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    tw_graph *g = tw_graph_create();
    if (g == NULL)
        return CUDA_ERROR_OUT_OF_MEMORY;
    *phGraph = (CUgraph)g;
    return CUDA_SUCCESS;
}

static CUresult instantiate(CUgraphExec *phGraphExec, CUgraph hGraph)
{
    if (phGraphExec == NULL || hGraph == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    tw_graph_exec *x = NULL;
    int status = tw_graph_instantiate((tw_graph *)hGraph, &x);
    if (status != TW_OK)
        return status == TW_ERR_NOMEM ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_ERROR_INVALID_VALUE;
    *phGraphExec = (CUgraphExec)x;
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuGraphInstantiateWithFlags(CUgraphExec *phGraphExec, CUgraph hGraph, unsigned long long flags)
{
    return instantiate(phGraphExec, hGraph);
}

TW_EXPORT CUresult cuGraphInstantiate(CUgraphExec *phGraphExec, CUgraph hGraph, CUgraphNode *phErrorNode,
                                      char *logBuffer, size_t bufferSize)
{
    if (logBuffer != NULL && bufferSize > 0)
        logBuffer[0] = '\0';
    return instantiate(phGraphExec, hGraph);
}

TW_EXPORT CUresult cuGraphInstantiate_v2(CUgraphExec *phGraphExec, CUgraph hGraph, CUgraphNode *phErrorNode,
                                         char *logBuffer, size_t bufferSize)
{
    return cuGraphInstantiate(phGraphExec, hGraph, phErrorNode, logBuffer, bufferSize);
}

static CUresult instantiate_with_params(CUgraphExec *phGraphExec, CUgraph hGraph,
                                        CUDA_GRAPH_INSTANTIATE_PARAMS *params, bool per_thread)
{
    CUresult status = instantiate(phGraphExec, hGraph);
    if (params != NULL) {
        params->result_out = status == CUDA_SUCCESS ? CUDA_GRAPH_INSTANTIATE_SUCCESS : CUDA_GRAPH_INSTANTIATE_ERROR;
        params->hErrNode_out = NULL;
    }
    return status;
}

TW_EXPORT CUresult cuGraphInstantiateWithParams(CUgraphExec *phGraphExec, CUgraph hGraph,
                                                CUDA_GRAPH_INSTANTIATE_PARAMS *instantiateParams)
{
    return instantiate_with_params(phGraphExec, hGraph, instantiateParams, false);
}

TW_EXPORT CUresult cuGraphInstantiateWithParams_ptsz(CUgraphExec *phGraphExec, CUgraph hGraph,
                                                     CUDA_GRAPH_INSTANTIATE_PARAMS *instantiateParams)
{
    return instantiate_with_params(phGraphExec, hGraph, instantiateParams, true);
}

static CUresult graph_launch(CUgraphExec hGraphExec, CUstream hStream, bool per_thread)
{
    if (hGraphExec == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    CAPTURE_CHECK(tw_capture_check_enqueue(resolve(hStream, per_thread)));
    return tw_graph_launch((tw_graph_exec *)hGraphExec, resolve(hStream, per_thread)) == TW_OK
               ? CUDA_SUCCESS
               : CUDA_ERROR_LAUNCH_FAILED;
}

TW_EXPORT CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream)
{
    return graph_launch(hGraphExec, hStream, false);
}

TW_EXPORT CUresult cuGraphLaunch_ptsz(CUgraphExec hGraphExec, CUstream hStream)
{
    return graph_launch(hGraphExec, hStream, true);
}

TW_EXPORT CUresult cuGraphUpload(CUgraphExec hGraphExec, CUstream hStream)
{
    return hGraphExec != NULL ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE; /* nothing to upload */
}

TW_EXPORT CUresult cuGraphUpload_ptsz(CUgraphExec hGraphExec, CUstream hStream)
{
    return cuGraphUpload(hGraphExec, hStream);
}

TW_EXPORT CUresult cuGraphDestroy(CUgraph hGraph)
{
    if (hGraph == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    tw_graph_destroy((tw_graph *)hGraph);
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuGraphExecDestroy(CUgraphExec hGraphExec)
{
    if (hGraphExec == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    tw_graph_exec_destroy((tw_graph_exec *)hGraphExec);
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuGraphGetNodes(CUgraph hGraph, CUgraphNode *nodes, size_t *numNodes)
{
    if (hGraph == NULL || numNodes == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    size_t total = tw_graph_node_count((const tw_graph *)hGraph);
    if (nodes != NULL) {
        size_t n = *numNodes < total ? *numNodes : total;
        for (size_t i = 0; i < n; i++)
            nodes[i] = (CUgraphNode)tw_graph_node_handle((tw_graph *)hGraph, (uint32_t)i);
        for (size_t i = n; i < *numNodes; i++)
            nodes[i] = NULL;
        *numNodes = n;
    } else {
        *numNodes = total;
    }
    return CUDA_SUCCESS;
}

/* ---------------------------------------------------------------- graph nodes (graph_nodes.c) */

static void driver_kernel_params(const CUDA_KERNEL_NODE_PARAMS *k, tw_node_params *p)
{
    memset(p, 0, sizeof *p);
    p->type = TW_NODE_TYPE_KERNEL;
    p->kernel = (tw_kernel *)(k->func != NULL ? (void *)k->func : (void *)k->kern);
    p->grid = (tw_dim3){k->gridDimX, k->gridDimY, k->gridDimZ};
    p->block = (tw_dim3){k->blockDimX, k->blockDimY, k->blockDimZ};
    p->smem = k->sharedMemBytes;
    p->args = k->kernelParams;
}

TW_EXPORT CUresult cuGraphAddKernelNode_v2(CUgraphNode *node, CUgraph graph, const CUgraphNode *deps, size_t count,
                                           const CUDA_KERNEL_NODE_PARAMS *params)
{
    if (node == NULL || graph == NULL || params == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    tw_node_params p;
    driver_kernel_params(params, &p);
    int status = tw_graph_node_add((tw_graph *)graph, &p, (void *const *)deps, count, (void **)node);
    return status == TW_OK ? CUDA_SUCCESS : status == TW_ERR_NOMEM ? CUDA_ERROR_OUT_OF_MEMORY
                                                                   : CUDA_ERROR_INVALID_VALUE;
}

TW_EXPORT CUresult cuGraphKernelNodeGetParams_v2(CUgraphNode node, CUDA_KERNEL_NODE_PARAMS *params)
{
    tw_node_params p;
    if (params == NULL || tw_graph_node_get(node, &p) != TW_OK || p.type != TW_NODE_TYPE_KERNEL)
        return CUDA_ERROR_INVALID_VALUE;
    memset(params, 0, sizeof *params);
    params->func = (CUfunction)p.kernel; /* NULL for a captured launch */
    params->gridDimX = p.grid.x, params->gridDimY = p.grid.y, params->gridDimZ = p.grid.z;
    params->blockDimX = p.block.x, params->blockDimY = p.block.y, params->blockDimZ = p.block.z;
    params->sharedMemBytes = p.smem;
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuGraphKernelNodeSetParams_v2(CUgraphNode node, const CUDA_KERNEL_NODE_PARAMS *params)
{
    if (params == NULL)
        return CUDA_ERROR_INVALID_VALUE;
    tw_node_params p;
    driver_kernel_params(params, &p);
    return tw_graph_node_set(node, &p) == TW_OK ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

TW_EXPORT CUresult cuGraphNodeGetType(CUgraphNode node, CUgraphNodeType *type)
{
    tw_node_params p;
    if (type == NULL || tw_graph_node_get(node, &p) != TW_OK)
        return CUDA_ERROR_INVALID_VALUE;
    *type = (CUgraphNodeType)(p.type - 1); /* the driver's numbering is the runtime's */
    return CUDA_SUCCESS;
}
