/* CUPTI activity API, so profilers that read GPU time through CUPTI (torch.profiler via Kineto)
 * see the virtual timeline. The timeline reports each enqueue (tw_cupti_on_enqueue: the API
 * record and external correlations of the issuing thread) and each op once its virtual times
 * are known (tw_cupti_on_op: kernel, memcpy, memset records with the same correlation id).
 * Records wait here in virtual nanoseconds and go to the client's buffers at
 * cuptiActivityFlushAll, converted to the client's timestamp domain: its timestamp callback's
 * (Kineto: the TSC, mapped back by its converter made at the same moment the callback was
 * registered) or else virtual CLOCK_REALTIME. The callback API accepts subscriptions and
 * domains but delivers no callbacks (documented in docs/libraries.md). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cupti.h>

#include "tw_core.h"

int tw_cupti_collecting; /* read by the timeline without a lock: any kind enabled */

static pthread_mutex_t cupti_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t enabled_kinds;                   /* bit per CUpti_ActivityKind (< 64) */
static int64_t enabled_since_ns[64];             /* ops issued before their kind was enabled are not reported */
static CUpti_BuffersCallbackRequestFunc buffer_requested;
static CUpti_BuffersCallbackCompleteFunc buffer_completed;
static size_t dropped_records;
/* A buffer the client handed us and we hold until a flush: like CUPTI, one is requested as soon
 * as collection starts (clients such as Kineto flush only while they have a buffer out). */
static uint8_t *held_buffer;
static size_t held_size, held_max_records;

/* records waiting for a flush, back to back, each 8-byte aligned, times in virtual ns */
static uint8_t *pending;
static size_t pending_bytes, pending_capacity;
#define MAX_PENDING_BYTES ((size_t)512 << 20) /* beyond this, records are dropped and counted */

/* runtime / driver API cbids a client turned off (cuptiActivityEnable{Runtime,Driver}Api) */
#define MAX_DISABLED_CBIDS 64
static uint32_t disabled_cbids[2][MAX_DISABLED_CBIDS];
static int disabled_cbid_count[2];

/* the client's timestamp domain: a callback (registered at virtual time registered_ns, when it
 * read registered_ticks) and its rate against host time, calibrated at registration */
static CUpti_TimestampCallbackFunc timestamp_callback;
static uint64_t registered_ticks;
static int64_t registered_ns;
static double ticks_per_ns = 1.0;

static bool kind_enabled(int kind)
{
    return kind >= 0 && kind < 64 && (enabled_kinds & (1ull << kind));
}

/* Append a record (lock held). */
static void *append_locked(size_t bytes)
{
    size_t padded = (bytes + 7) & ~(size_t)7;
    if (pending_bytes + padded > pending_capacity) {
        size_t capacity = pending_capacity ? pending_capacity * 2 : (size_t)1 << 20;
        while (capacity < pending_bytes + padded)
            capacity *= 2;
        uint8_t *grown = capacity <= MAX_PENDING_BYTES ? realloc(pending, capacity) : NULL;
        if (grown == NULL) {
            dropped_records++;
            return NULL;
        }
        pending = grown;
        pending_capacity = capacity;
    }
    void *at = pending + pending_bytes;
    memset(at, 0, padded);
    pending_bytes += padded;
    return at;
}

static size_t record_bytes(CUpti_ActivityKind kind)
{
    switch (kind) {
    case CUPTI_ACTIVITY_KIND_KERNEL:
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: return sizeof(CUpti_ActivityKernel10);
    case CUPTI_ACTIVITY_KIND_MEMCPY: return sizeof(CUpti_ActivityMemcpy6);
    case CUPTI_ACTIVITY_KIND_MEMSET: return sizeof(CUpti_ActivityMemset4);
    case CUPTI_ACTIVITY_KIND_RUNTIME:
    case CUPTI_ACTIVITY_KIND_DRIVER: return sizeof(CUpti_ActivityAPI);
    case CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION: return sizeof(CUpti_ActivityExternalCorrelation);
    default: return 0;
    }
}

/* ---------------------------------------------------------------- API records */

#define MAX_EXTERNAL_DEPTH 64
typedef struct api_bracket {
    int depth;
    uint32_t cbid;
    bool driver;
    int64_t start_ns;
    uint32_t correlation;   /* of the first op it enqueued; 0 = none yet */
} api_bracket;

static __thread api_bracket api;
static __thread uint64_t external_ids[CUPTI_EXTERNAL_CORRELATION_KIND_SIZE][MAX_EXTERNAL_DEPTH];
static __thread int external_depth[CUPTI_EXTERNAL_CORRELATION_KIND_SIZE];
static uint32_t next_api_only_correlation = 0x80000000u; /* calls that enqueue no op */

static bool cbid_enabled_locked(bool driver, uint32_t cbid)
{
    for (int i = 0; i < disabled_cbid_count[driver]; i++)
        if (disabled_cbids[driver][i] == cbid)
            return false;
    return true;
}

/* An API record and the thread's external correlations for it (lock held). */
static void emit_api_locked(bool driver, uint32_t cbid, int64_t start_ns, int64_t end_ns, uint32_t correlation)
{
    int kind = driver ? CUPTI_ACTIVITY_KIND_DRIVER : CUPTI_ACTIVITY_KIND_RUNTIME;
    if (kind_enabled(kind) && cbid_enabled_locked(driver, cbid)) {
        CUpti_ActivityAPI *r = append_locked(sizeof *r);
        if (r != NULL) {
            r->kind = kind;
            r->cbid = cbid;
            r->start = (uint64_t)start_ns;
            r->end = (uint64_t)end_ns;
            r->processId = (uint32_t)getpid();
            r->threadId = tw_thread_id();
            r->correlationId = correlation;
        }
    }
    if (!kind_enabled(CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION))
        return;
    for (int k = 0; k < CUPTI_EXTERNAL_CORRELATION_KIND_SIZE; k++) {
        if (external_depth[k] <= 0)
            continue;
        CUpti_ActivityExternalCorrelation *x = append_locked(sizeof *x);
        if (x == NULL)
            return;
        x->kind = CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION;
        x->externalKind = (CUpti_ExternalCorrelationKind)k;
        x->externalId = external_ids[k][external_depth[k] - 1];
        x->correlationId = correlation;
    }
}

void tw_cupti_api_enter(uint32_t cbid, bool driver)
{
    if (api.depth++ == 0)
        api = (api_bracket){1, cbid, driver, tw_now_ns(), 0};
}

void tw_cupti_api_exit(void)
{
    if (api.depth <= 0 || --api.depth > 0)
        return;
    pthread_mutex_lock(&cupti_lock);
    uint32_t correlation = api.correlation ? api.correlation : next_api_only_correlation++;
    emit_api_locked(api.driver, api.cbid, api.start_ns, tw_now_ns(), correlation);
    pthread_mutex_unlock(&cupti_lock);
}

/* The API a bare enqueue stands for (library calls, driver launches made outside a bracket). */
static void default_api(int op_kind, uint32_t *cbid, bool *driver)
{
    *driver = false;
    switch (op_kind) {
    case TW_OP_KERNEL:
        *driver = true;
        *cbid = CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel;
        break;
    case TW_OP_MEMCPY: *cbid = CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_v3020; break;
    case TW_OP_MEMSET: *cbid = CUPTI_RUNTIME_TRACE_CBID_cudaMemsetAsync_v3020; break;
    case TW_OP_NONE: *cbid = CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_v10000; break;
    default: *cbid = CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000; break;
    }
}

/* An op (or graph replay, op_kind TW_OP_NONE) enqueued by this thread (timeline lock held). */
void tw_cupti_on_enqueue(uint64_t seq, int op_kind)
{
    uint32_t correlation = (uint32_t)seq;
    if (api.depth > 0) {
        if (api.correlation == 0)
            api.correlation = correlation;
        return;
    }
    uint32_t cbid;
    bool driver;
    default_api(op_kind, &cbid, &driver);
    int64_t now = tw_now_ns();
    pthread_mutex_lock(&cupti_lock);
    emit_api_locked(driver, cbid, now, now, correlation);
    pthread_mutex_unlock(&cupti_lock);
}

/* ---------------------------------------------------------------- GPU activity records */

static void kernel_record(const tw_record *rec, int kind)
{
    CUpti_ActivityKernel10 *r = append_locked(sizeof *r);
    if (r == NULL)
        return;
    r->kind = kind;
    r->start = (uint64_t)rec->begin_ns;
    r->end = (uint64_t)rec->end_ns;
    r->completed = (uint64_t)rec->end_ns;
    r->deviceId = rec->device;
    r->contextId = rec->device + 1u;
    r->streamId = rec->stream_id;
    r->gridX = (int32_t)rec->grid[0];
    r->gridY = (int32_t)rec->grid[1];
    r->gridZ = (int32_t)rec->grid[2];
    r->blockX = (int32_t)rec->block[0];
    r->blockY = (int32_t)rec->block[1];
    r->blockZ = (int32_t)rec->block[2];
    r->dynamicSharedMemory = (int32_t)rec->smem_bytes;
    r->correlationId = (uint32_t)rec->seq;
    r->gridId = (int64_t)rec->seq;
    const char *name = tw_name_get(rec->name_id);
    r->name = name != NULL ? name : "kernel";
    r->graphId = rec->graph_id;
    r->channelType = CUPTI_CHANNEL_TYPE_COMPUTE;
}

static void memcpy_kinds(int64_t copy_kind, uint8_t *kind, uint8_t *src, uint8_t *dst)
{
    *src = *dst = CUPTI_ACTIVITY_MEMORY_KIND_DEVICE;
    switch (copy_kind) {
    case TW_COPY_H2D_PAGEABLE: *kind = CUPTI_ACTIVITY_MEMCPY_KIND_HTOD; *src = CUPTI_ACTIVITY_MEMORY_KIND_PAGEABLE; break;
    case TW_COPY_H2D_PINNED: *kind = CUPTI_ACTIVITY_MEMCPY_KIND_HTOD; *src = CUPTI_ACTIVITY_MEMORY_KIND_PINNED; break;
    case TW_COPY_D2H_PAGEABLE: *kind = CUPTI_ACTIVITY_MEMCPY_KIND_DTOH; *dst = CUPTI_ACTIVITY_MEMORY_KIND_PAGEABLE; break;
    case TW_COPY_D2H_PINNED: *kind = CUPTI_ACTIVITY_MEMCPY_KIND_DTOH; *dst = CUPTI_ACTIVITY_MEMORY_KIND_PINNED; break;
    case TW_COPY_PEER: *kind = CUPTI_ACTIVITY_MEMCPY_KIND_PTOP; break;
    case TW_COPY_H2H:
        *kind = CUPTI_ACTIVITY_MEMCPY_KIND_HTOH;
        *src = *dst = CUPTI_ACTIVITY_MEMORY_KIND_PAGEABLE;
        break;
    default: *kind = CUPTI_ACTIVITY_MEMCPY_KIND_DTOD; break;
    }
}

static void copy_record(const tw_record *rec)
{
    CUpti_ActivityMemcpy6 *r = append_locked(sizeof *r);
    if (r == NULL)
        return;
    r->kind = CUPTI_ACTIVITY_KIND_MEMCPY;
    memcpy_kinds(rec->value, &r->copyKind, &r->srcKind, &r->dstKind);
    r->bytes = rec->bytes;
    r->start = (uint64_t)rec->begin_ns;
    r->end = (uint64_t)rec->end_ns;
    r->deviceId = rec->device;
    r->contextId = rec->device + 1u;
    r->streamId = rec->stream_id;
    r->correlationId = (uint32_t)rec->seq;
    r->graphId = rec->graph_id;
    r->channelType = CUPTI_CHANNEL_TYPE_COMPUTE;
}

static void memset_record(const tw_record *rec)
{
    CUpti_ActivityMemset4 *r = append_locked(sizeof *r);
    if (r == NULL)
        return;
    r->kind = CUPTI_ACTIVITY_KIND_MEMSET;
    r->bytes = rec->bytes;
    r->start = (uint64_t)rec->begin_ns;
    r->end = (uint64_t)rec->end_ns;
    r->deviceId = rec->device;
    r->contextId = rec->device + 1u;
    r->streamId = rec->stream_id;
    r->correlationId = (uint32_t)rec->seq;
    r->memoryKind = CUPTI_ACTIVITY_MEMORY_KIND_DEVICE;
    r->graphId = rec->graph_id;
    r->channelType = CUPTI_CHANNEL_TYPE_COMPUTE;
}

static bool issued_while_enabled(int kind, const tw_record *rec)
{
    return kind_enabled(kind) && rec->issue_ns >= enabled_since_ns[kind];
}

/* A GPU op with its virtual times (timeline lock held). Library calls are kernels to CUPTI. */
void tw_cupti_on_op(const tw_record *rec)
{
    pthread_mutex_lock(&cupti_lock);
    switch (rec->op_kind) {
    case TW_OP_MEMCPY:
        if (issued_while_enabled(CUPTI_ACTIVITY_KIND_MEMCPY, rec))
            copy_record(rec);
        break;
    case TW_OP_MEMSET:
        if (issued_while_enabled(CUPTI_ACTIVITY_KIND_MEMSET, rec))
            memset_record(rec);
        break;
    case TW_OP_EVENT_RECORD:
    case TW_OP_EVENT_WAIT:
    case TW_OP_HOST_FUNC:
        break;
    default:
        if (issued_while_enabled(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, rec))
            kernel_record(rec, CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
        else if (issued_while_enabled(CUPTI_ACTIVITY_KIND_KERNEL, rec))
            kernel_record(rec, CUPTI_ACTIVITY_KIND_KERNEL);
        break;
    }
    pthread_mutex_unlock(&cupti_lock);
}

/* ---------------------------------------------------------------- timestamps */

static int64_t realtime_minus_mono_ns; /* virtual CLOCK_REALTIME - CLOCK_MONOTONIC, read per delivery */

static uint64_t to_client_ns(uint64_t virtual_ns)
{
    if (virtual_ns == 0)
        return 0; /* CUPTI_TIMESTAMP_UNKNOWN */
    if (timestamp_callback == NULL)
        return virtual_ns + (uint64_t)realtime_minus_mono_ns;
    return registered_ticks + (uint64_t)((double)((int64_t)virtual_ns - registered_ns) * ticks_per_ns);
}

/* The callback's rate against host time, from the first pair read with this callback and a
 * pair read now (no spinning: a thread that spins reading clocks would look blocked to the
 * causal clock). Until they are 1 ms apart the rate stays at its last value (1 tick/ns at
 * first). */
static uint64_t first_ticks;
static int64_t first_host_ns;
static CUpti_TimestampCallbackFunc first_callback;

static void calibrate_locked(void)
{
    uint64_t ticks = timestamp_callback();
    int64_t host = tw_host_mono_ns();
    if (first_callback != timestamp_callback) {
        first_callback = timestamp_callback;
        first_ticks = ticks;
        first_host_ns = host;
        return;
    }
    if (host - first_host_ns >= 1000 * 1000 && ticks > first_ticks)
        ticks_per_ns = (double)(ticks - first_ticks) / (double)(host - first_host_ns);
}

static void convert_times(uint8_t *record)
{
    CUpti_Activity *a = (CUpti_Activity *)record;
    switch (a->kind) {
    case CUPTI_ACTIVITY_KIND_KERNEL:
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
        CUpti_ActivityKernel10 *k = (CUpti_ActivityKernel10 *)record;
        k->start = to_client_ns(k->start);
        k->end = to_client_ns(k->end);
        k->completed = to_client_ns(k->completed);
        break;
    }
    case CUPTI_ACTIVITY_KIND_MEMCPY: {
        CUpti_ActivityMemcpy6 *m = (CUpti_ActivityMemcpy6 *)record;
        m->start = to_client_ns(m->start);
        m->end = to_client_ns(m->end);
        break;
    }
    case CUPTI_ACTIVITY_KIND_MEMSET: {
        CUpti_ActivityMemset4 *m = (CUpti_ActivityMemset4 *)record;
        m->start = to_client_ns(m->start);
        m->end = to_client_ns(m->end);
        break;
    }
    case CUPTI_ACTIVITY_KIND_RUNTIME:
    case CUPTI_ACTIVITY_KIND_DRIVER: {
        CUpti_ActivityAPI *r = (CUpti_ActivityAPI *)record;
        r->start = to_client_ns(r->start);
        r->end = to_client_ns(r->end);
        break;
    }
    default: break;
    }
}

/* Ask the client for a buffer to hold if none is held (no lock held: it runs client code). */
static void hold_buffer(void)
{
    pthread_mutex_lock(&cupti_lock);
    CUpti_BuffersCallbackRequestFunc requested = held_buffer == NULL && enabled_kinds ? buffer_requested : NULL;
    pthread_mutex_unlock(&cupti_lock);
    if (requested == NULL)
        return;
    uint8_t *buffer = NULL;
    size_t size = 0, max_records = 0;
    requested(&buffer, &size, &max_records);
    pthread_mutex_lock(&cupti_lock);
    if (held_buffer == NULL && buffer != NULL && size > 0) {
        held_buffer = buffer;
        held_size = size;
        held_max_records = max_records;
        buffer = NULL;
    }
    pthread_mutex_unlock(&cupti_lock);
    if (buffer != NULL && buffer_completed != NULL)
        buffer_completed(NULL, 0, buffer, size, 0); /* another thread got one first: give it back */
}

/* Fill `buffer` from records[*at..bytes) and hand it back; returns how many records went in. */
static size_t fill_and_complete(CUpti_BuffersCallbackCompleteFunc completed, uint8_t *buffer, size_t size,
                                size_t max_records, const uint8_t *records, size_t bytes, size_t *at)
{
    size_t used = 0, count = 0;
    while (*at < bytes && (max_records == 0 || count < max_records)) {
        size_t one = (record_bytes(((const CUpti_Activity *)(records + *at))->kind) + 7) & ~(size_t)7;
        if (used + one > size)
            break;
        memcpy(buffer + used, records + *at, one);
        convert_times(buffer + used);
        used += one;
        *at += one;
        count++;
    }
    completed(NULL, 0, buffer, size, used);
    return count;
}

/* Hand the waiting records to the client's buffers (no lock held while it runs): the held one
 * first, then as many more as it takes; then, while collecting, hold a fresh one. */
static void deliver(void)
{
    pthread_mutex_lock(&cupti_lock);
    uint8_t *records = pending, *buffer = held_buffer;
    size_t bytes = pending_bytes, size = held_size, max_records = held_max_records;
    CUpti_BuffersCallbackRequestFunc requested = buffer_requested;
    CUpti_BuffersCallbackCompleteFunc completed = buffer_completed;
    pending = NULL;
    pending_bytes = pending_capacity = 0;
    held_buffer = NULL;
    if (timestamp_callback != NULL)
        calibrate_locked();
    int64_t mono = tw_now_ns();
    realtime_minus_mono_ns = tw_realtime_ns() - mono;
    realtime_minus_mono_ns -= (tw_now_ns() - mono) / 2; /* the two reads' midpoint */
    pthread_mutex_unlock(&cupti_lock);
    size_t at = 0;
    while (completed != NULL && (buffer != NULL || (at < bytes && requested != NULL))) {
        if (buffer == NULL) {
            requested(&buffer, &size, &max_records);
            if (buffer == NULL || size == 0)
                break; /* the client refuses more: the rest is dropped */
        }
        size_t count = fill_and_complete(completed, buffer, size, max_records, records, bytes, &at);
        buffer = NULL;
        if (count == 0)
            break; /* nothing left, or a buffer too small for one record */
    }
    if (at < bytes) {
        pthread_mutex_lock(&cupti_lock);
        for (size_t left = at; left < bytes; dropped_records++)
            left += (record_bytes(((CUpti_Activity *)(records + left))->kind) + 7) & ~(size_t)7;
        pthread_mutex_unlock(&cupti_lock);
    }
    free(records);
    hold_buffer();
}

/* ---------------------------------------------------------------- the activity API */

static bool supported_kind(CUpti_ActivityKind kind)
{
    return record_bytes(kind) != 0;
}

TW_EXPORT CUptiResult cuptiGetVersion(uint32_t *version)
{
    if (version == NULL)
        return CUPTI_ERROR_INVALID_PARAMETER;
    *version = CUPTI_API_VERSION;
    return CUPTI_SUCCESS;
}

TW_EXPORT CUptiResult cuptiActivityEnable(CUpti_ActivityKind kind)
{
    if (!supported_kind(kind)) {
        TW_INFO("cuptiActivityEnable: activity kind %d is not collected", (int)kind);
        return CUPTI_ERROR_NOT_COMPATIBLE;
    }
    pthread_mutex_lock(&cupti_lock);
    if (!kind_enabled(kind))
        enabled_since_ns[kind] = tw_now_ns();
    enabled_kinds |= 1ull << kind;
    __atomic_store_n(&tw_cupti_collecting, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&cupti_lock);
    hold_buffer();
    return CUPTI_SUCCESS;
}

TW_EXPORT CUptiResult cuptiActivityDisable(CUpti_ActivityKind kind)
{
    if (!supported_kind(kind))
        return CUPTI_ERROR_NOT_COMPATIBLE;
    tw_timeline_flush(); /* ops issued while it was on get their records now */
    pthread_mutex_lock(&cupti_lock);
    enabled_kinds &= ~(1ull << kind);
    __atomic_store_n(&tw_cupti_collecting, enabled_kinds != 0, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&cupti_lock);
    return CUPTI_SUCCESS;
}

TW_EXPORT CUptiResult cuptiActivityEnableContext(CUcontext context, CUpti_ActivityKind kind)
{
    return cuptiActivityEnable(kind);
}

TW_EXPORT CUptiResult cuptiActivityDisableContext(CUcontext context, CUpti_ActivityKind kind)
{
    return cuptiActivityDisable(kind);
}

static CUptiResult enable_api_cbid(bool driver, CUpti_CallbackId cbid, uint8_t enable)
{
    pthread_mutex_lock(&cupti_lock);
    int n = disabled_cbid_count[driver];
    int found = -1;
    for (int i = 0; i < n; i++)
        if (disabled_cbids[driver][i] == cbid)
            found = i;
    if (enable && found >= 0)
        disabled_cbids[driver][found] = disabled_cbids[driver][--disabled_cbid_count[driver]];
    else if (!enable && found < 0 && n < MAX_DISABLED_CBIDS)
        disabled_cbids[driver][disabled_cbid_count[driver]++] = cbid;
    pthread_mutex_unlock(&cupti_lock);
    return CUPTI_SUCCESS;
}

TW_EXPORT CUptiResult cuptiActivityEnableRuntimeApi(CUpti_CallbackId cbid, uint8_t enable)
{
    return enable_api_cbid(false, cbid, enable);
}

TW_EXPORT CUptiResult cuptiActivityEnableDriverApi(CUpti_CallbackId cbid, uint8_t enable)
{
    return enable_api_cbid(true, cbid, enable);
}

/* Event timestamps come from the virtual timeline either way. */
TW_EXPORT CUptiResult cuptiActivityEnableCudaEventDeviceTimestamps(uint8_t enable)
{
    return CUPTI_SUCCESS;
}

TW_EXPORT CUptiResult cuptiActivityRegisterCallbacks(CUpti_BuffersCallbackRequestFunc requested,
                                                     CUpti_BuffersCallbackCompleteFunc completed)
{
    if (requested == NULL || completed == NULL)
        return CUPTI_ERROR_INVALID_PARAMETER;
    pthread_mutex_lock(&cupti_lock);
    buffer_requested = requested;
    buffer_completed = completed;
    pthread_mutex_unlock(&cupti_lock);
    return CUPTI_SUCCESS;
}

TW_EXPORT CUptiResult cuptiActivityRegisterTimestampCallback(CUpti_TimestampCallbackFunc callback)
{
    if (callback == NULL)
        return CUPTI_ERROR_INVALID_PARAMETER;
    pthread_mutex_lock(&cupti_lock);
    timestamp_callback = callback;
    registered_ns = tw_now_ns();
    registered_ticks = callback();
    calibrate_locked();
    pthread_mutex_unlock(&cupti_lock);
    return CUPTI_SUCCESS;
}

TW_EXPORT CUptiResult cuptiActivityFlushAll(uint32_t flag)
{
    tw_timeline_flush(); /* ops get their records when their times are computed */
    deliver();
    return CUPTI_SUCCESS;
}

TW_EXPORT CUptiResult cuptiActivityFlush(CUcontext context, uint32_t streamId, uint32_t flag)
{
    return cuptiActivityFlushAll(flag);
}

TW_EXPORT CUptiResult cuptiActivityGetNextRecord(uint8_t *buffer, size_t validBufferSizeBytes,
                                                 CUpti_Activity **record)
{
    if (buffer == NULL || record == NULL)
        return CUPTI_ERROR_INVALID_PARAMETER;
    size_t at = 0;
    if (*record != NULL) {
        uint8_t *current = (uint8_t *)*record;
        if (current < buffer || current >= buffer + validBufferSizeBytes)
            return CUPTI_ERROR_INVALID_PARAMETER;
        size_t one = record_bytes((*record)->kind);
        if (one == 0)
            return CUPTI_ERROR_INVALID_KIND;
        at = (size_t)(current - buffer) + ((one + 7) & ~(size_t)7);
    }
    if (at + sizeof(CUpti_Activity) > validBufferSizeBytes) {
        *record = NULL;
        return CUPTI_ERROR_MAX_LIMIT_REACHED;
    }
    CUpti_Activity *next = (CUpti_Activity *)(buffer + at);
    size_t one = record_bytes(next->kind);
    if (one == 0 || at + one > validBufferSizeBytes) {
        *record = NULL;
        return one == 0 ? CUPTI_ERROR_INVALID_KIND : CUPTI_ERROR_MAX_LIMIT_REACHED;
    }
    *record = next;
    return CUPTI_SUCCESS;
}

TW_EXPORT CUptiResult cuptiActivityGetNumDroppedRecords(CUcontext context, uint32_t streamId, size_t *dropped)
{
    if (dropped == NULL)
        return CUPTI_ERROR_INVALID_PARAMETER;
    pthread_mutex_lock(&cupti_lock);
    *dropped = dropped_records;
    dropped_records = 0;
    pthread_mutex_unlock(&cupti_lock);
    return CUPTI_SUCCESS;
}

/* Buffer sizes and pools concern the device-side collection CUPTI does on a real GPU: the
 * values are kept and read back. */
static size_t attributes[16];

TW_EXPORT CUptiResult cuptiActivitySetAttribute(CUpti_ActivityAttribute attr, size_t *valueSize, void *value)
{
    if (valueSize == NULL || value == NULL || (unsigned)attr >= 16)
        return CUPTI_ERROR_INVALID_PARAMETER;
    size_t v = 0;
    memcpy(&v, value, *valueSize < sizeof v ? *valueSize : sizeof v);
    attributes[attr] = v;
    return CUPTI_SUCCESS;
}

TW_EXPORT CUptiResult cuptiActivityGetAttribute(CUpti_ActivityAttribute attr, size_t *valueSize, void *value)
{
    if (valueSize == NULL || value == NULL || (unsigned)attr >= 16)
        return CUPTI_ERROR_INVALID_PARAMETER;
    memcpy(value, &attributes[attr], *valueSize < sizeof(size_t) ? *valueSize : sizeof(size_t));
    return CUPTI_SUCCESS;
}

TW_EXPORT CUptiResult cuptiActivityPushExternalCorrelationId(CUpti_ExternalCorrelationKind kind, uint64_t id)
{
    if ((unsigned)kind >= CUPTI_EXTERNAL_CORRELATION_KIND_SIZE || kind == CUPTI_EXTERNAL_CORRELATION_KIND_INVALID)
        return CUPTI_ERROR_INVALID_PARAMETER;
    if (external_depth[kind] >= MAX_EXTERNAL_DEPTH)
        return CUPTI_ERROR_MAX_LIMIT_REACHED;
    external_ids[kind][external_depth[kind]++] = id;
    return CUPTI_SUCCESS;
}

TW_EXPORT CUptiResult cuptiActivityPopExternalCorrelationId(CUpti_ExternalCorrelationKind kind, uint64_t *lastId)
{
    if ((unsigned)kind >= CUPTI_EXTERNAL_CORRELATION_KIND_SIZE || kind == CUPTI_EXTERNAL_CORRELATION_KIND_INVALID)
        return CUPTI_ERROR_INVALID_PARAMETER;
    if (external_depth[kind] <= 0)
        return CUPTI_ERROR_QUEUE_EMPTY;
    uint64_t id = external_ids[kind][--external_depth[kind]];
    if (lastId != NULL)
        *lastId = id;
    return CUPTI_SUCCESS;
}

TW_EXPORT CUptiResult cuptiGetTimestamp(uint64_t *timestamp)
{
    if (timestamp == NULL)
        return CUPTI_ERROR_INVALID_PARAMETER;
    *timestamp = timestamp_callback != NULL ? timestamp_callback() : (uint64_t)tw_realtime_ns();
    return CUPTI_SUCCESS;
}

TW_EXPORT CUptiResult cuptiGetResultString(CUptiResult result, const char **str)
{
    if (str == NULL)
        return CUPTI_ERROR_INVALID_PARAMETER;
    switch (result) {
    case CUPTI_SUCCESS: *str = "CUPTI_SUCCESS"; break;
    case CUPTI_ERROR_INVALID_PARAMETER: *str = "CUPTI_ERROR_INVALID_PARAMETER"; break;
    case CUPTI_ERROR_INVALID_KIND: *str = "CUPTI_ERROR_INVALID_KIND"; break;
    case CUPTI_ERROR_MAX_LIMIT_REACHED: *str = "CUPTI_ERROR_MAX_LIMIT_REACHED"; break;
    case CUPTI_ERROR_QUEUE_EMPTY: *str = "CUPTI_ERROR_QUEUE_EMPTY"; break;
    case CUPTI_ERROR_NOT_COMPATIBLE: *str = "CUPTI_ERROR_NOT_COMPATIBLE"; break;
    case CUPTI_ERROR_NOT_SUPPORTED: *str = "CUPTI_ERROR_NOT_SUPPORTED (timewarp: not implemented)"; break;
    default: *str = "CUPTI_ERROR_UNKNOWN"; return CUPTI_ERROR_INVALID_PARAMETER;
    }
    return CUPTI_SUCCESS;
}

TW_EXPORT CUptiResult cuptiGetDeviceId(CUcontext context, uint32_t *deviceId)
{
    if (deviceId == NULL)
        return CUPTI_ERROR_INVALID_PARAMETER;
    void *ctx = context != NULL ? (void *)context : tw_ctx_current();
    int device = ctx != NULL ? tw_ctx_device(ctx) : tw_device_current();
    if (device < 0)
        return CUPTI_ERROR_INVALID_CONTEXT;
    *deviceId = (uint32_t)device;
    return CUPTI_SUCCESS;
}

TW_EXPORT CUptiResult cuptiGetContextId(CUcontext context, uint32_t *contextId)
{
    uint32_t device = 0;
    CUptiResult status = cuptiGetDeviceId(context, &device);
    if (status == CUPTI_SUCCESS && contextId != NULL)
        *contextId = device + 1; /* the id the activity records carry */
    return contextId == NULL ? CUPTI_ERROR_INVALID_PARAMETER : status;
}

TW_EXPORT CUptiResult cuptiGetStreamIdEx(CUcontext context, CUstream stream, uint8_t perThreadStream,
                                         uint32_t *streamId)
{
    if (streamId == NULL)
        return CUPTI_ERROR_INVALID_PARAMETER;
    *streamId = tw_stream_id(tw_stream_resolve(stream == NULL && perThreadStream ? (CUstream)0x2 : stream));
    return CUPTI_SUCCESS;
}

TW_EXPORT CUptiResult cuptiGetStreamId(CUcontext context, CUstream stream, uint32_t *streamId)
{
    return cuptiGetStreamIdEx(context, stream, 0, streamId);
}

/* ---------------------------------------------------------------- the callback API:
 * subscriptions are kept, no callback is delivered (docs/libraries.md). */
typedef struct subscriber {
    CUpti_CallbackFunc fn;
    void *user;
} subscriber;
static subscriber the_subscriber;
static bool subscribed;

TW_EXPORT CUptiResult cuptiSubscribe(CUpti_SubscriberHandle *handle, CUpti_CallbackFunc callback, void *userdata)
{
    if (handle == NULL || callback == NULL)
        return CUPTI_ERROR_INVALID_PARAMETER;
    pthread_mutex_lock(&cupti_lock);
    bool taken = subscribed;
    if (!taken) {
        the_subscriber = (subscriber){callback, userdata};
        subscribed = true;
    }
    pthread_mutex_unlock(&cupti_lock);
    if (taken)
        return CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED; /* CUPTI allows one subscriber */
    *handle = (CUpti_SubscriberHandle)&the_subscriber;
    return CUPTI_SUCCESS;
}

TW_EXPORT CUptiResult cuptiUnsubscribe(CUpti_SubscriberHandle handle)
{
    if (handle != (CUpti_SubscriberHandle)&the_subscriber || !subscribed)
        return CUPTI_ERROR_INVALID_PARAMETER;
    subscribed = false;
    return CUPTI_SUCCESS;
}

TW_EXPORT CUptiResult cuptiEnableCallback(uint32_t enable, CUpti_SubscriberHandle handle, CUpti_CallbackDomain domain,
                                          CUpti_CallbackId cbid)
{
    return handle == (CUpti_SubscriberHandle)&the_subscriber && subscribed ? CUPTI_SUCCESS
                                                                          : CUPTI_ERROR_INVALID_PARAMETER;
}

TW_EXPORT CUptiResult cuptiEnableDomain(uint32_t enable, CUpti_SubscriberHandle handle, CUpti_CallbackDomain domain)
{
    return cuptiEnableCallback(enable, handle, domain, 0);
}

/* Names of the callbacks whose records this shim makes (the API's name, as CUPTI gives it). */
TW_EXPORT CUptiResult cuptiGetCallbackName(CUpti_CallbackDomain domain, uint32_t cbid, const char **name)
{
    static const struct { CUpti_CallbackDomain domain; uint32_t cbid; const char *name; } names[] = {
        {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000, "cudaLaunchKernel"},
        {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpy_v3020, "cudaMemcpy"},
        {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMemcpyAsync_v3020, "cudaMemcpyAsync"},
        {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMemset_v3020, "cudaMemset"},
        {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaMemsetAsync_v3020, "cudaMemsetAsync"},
        {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaGraphLaunch_v10000, "cudaGraphLaunch"},
        {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaStreamSynchronize_v3020, "cudaStreamSynchronize"},
        {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaEventSynchronize_v3020, "cudaEventSynchronize"},
        {CUPTI_CB_DOMAIN_RUNTIME_API, CUPTI_RUNTIME_TRACE_CBID_cudaDeviceSynchronize_v3020, "cudaDeviceSynchronize"},
        {CUPTI_CB_DOMAIN_DRIVER_API, CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel, "cuLaunchKernel"},
    };
    if (name == NULL)
        return CUPTI_ERROR_INVALID_PARAMETER;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (names[i].domain == domain && names[i].cbid == cbid) {
            *name = names[i].name;
            return CUPTI_SUCCESS;
        }
    }
    return CUPTI_ERROR_INVALID_PARAMETER;
}

TW_EXPORT CUptiResult cuptiFinalize(void)
{
    tw_timeline_flush();
    deliver();
    pthread_mutex_lock(&cupti_lock);
    enabled_kinds = 0;
    __atomic_store_n(&tw_cupti_collecting, 0, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&cupti_lock);
    return CUPTI_SUCCESS;
}
