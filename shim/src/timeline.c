/* Streams, events and the ops on them (DESIGN §2 timeline). Ops are queued in issue order
 * with their prediction slot; times are computed at a flush (a sync, a query, an elapsed-time
 * read, a full queue), after the pending predictions of the batch were answered in one round
 * trip. start = max(issue + launch latency, stream tail, event waits, legacy-stream rules);
 * end = start + duration. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "timeline_internal.h"

#define QUEUE_CAPACITY (1u << 16)
#define MAX_DEVICES 64
#define MAX_CAPTURE_DEPS 16

enum queued_type { Q_OP = 1, Q_EVENT_RECORD, Q_EVENT_WAIT, Q_HOST_FUNC, Q_GRAPH };

struct tw_stream {
    int device;
    uint32_t id;
    unsigned flags;
    int priority;
    bool legacy;
    int64_t tail_ns;
    tw_graph *capture_graph;
    int capture_mode;
    uint64_t capture_id;
    uint32_t capture_deps[MAX_CAPTURE_DEPS];
    uint32_t capture_dep_count;
};

struct tw_event {
    unsigned flags;
    int64_t time_ns;            /* computed time of the latest computed record */
    uint64_t records_issued;
    uint64_t records_computed;
    tw_graph *capture_graph;    /* recorded inside a capture: a graph position, not a time */
    uint32_t capture_deps[MAX_CAPTURE_DEPS];
    uint32_t capture_dep_count;
};

typedef struct queued_op {
    uint8_t type;
    uint32_t flags;
    uint32_t tid;
    uint64_t seq;
    int64_t issue_ns;
    tw_stream *stream;
    union {
        tw_prediction_slot *slot;
        tw_event *event;
        tw_graph_exec *exec;
        struct {
            void (*fn)(void *);
            void *data;
        } host;
    } u;
} queued_op;

pthread_mutex_t tw_timeline_lock = PTHREAD_MUTEX_INITIALIZER;

static queued_op queue[QUEUE_CAPACITY];
static uint64_t queue_head;     /* next to compute */
static uint64_t queue_tail;     /* next free */
static uint64_t next_seq = 1;
static uint32_t next_stream_id = 2;  /* 0 = legacy default, 1 = reserved */

static tw_stream legacy_streams[MAX_DEVICES];
static int64_t blocking_tail_ns[MAX_DEVICES]; /* latest end on blocking non-legacy streams */
static int64_t device_tail_ns[MAX_DEVICES];   /* latest end on any stream */
static __thread tw_stream *per_thread_streams[MAX_DEVICES];

typedef struct host_call {
    void (*fn)(void *);
    void *data;
} host_call;

static int clamp_device(int device)
{
    return device < 0 ? 0 : (device >= MAX_DEVICES ? MAX_DEVICES - 1 : device);
}

static tw_stream *legacy_stream(int device)
{
    tw_stream *s = &legacy_streams[clamp_device(device)];
    if (!s->legacy) { /* first use; benign race: every writer stores the same values */
        s->device = clamp_device(device);
        s->id = 0;
        s->legacy = true;
    }
    return s;
}

tw_stream *tw_stream_resolve_legacy(int device)
{
    return legacy_stream(device);
}

tw_stream *tw_stream_resolve(const void *handle)
{
    uintptr_t value = (uintptr_t)handle;
    if (value == 0 || value == 1)
        return legacy_stream(tw_device_current());
    if (value == 2) {
        int device = clamp_device(tw_device_current());
        tw_stream *s = per_thread_streams[device];
        if (TW_UNLIKELY(s == NULL))
            s = per_thread_streams[device] = tw_stream_create(device, 0, 0);
        return s;
    }
    return (tw_stream *)handle;
}

tw_stream *tw_stream_create(int device, unsigned flags, int priority)
{
    tw_stream *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->device = clamp_device(device);
    s->flags = flags;
    s->priority = priority;
    s->id = __atomic_fetch_add(&next_stream_id, 1, __ATOMIC_RELAXED);
    tw_record *rec = tw_trace_claim();
    if (rec != NULL) {
        rec->tid = tw_thread_id();
        rec->device = (uint16_t)s->device;
        rec->stream_id = s->id;
        rec->value = priority;
        rec->flags = flags;
        rec->addr = (uint64_t)(uintptr_t)s;
        rec->begin_ns = rec->end_ns = tw_now_ns();
        tw_trace_commit(rec, TW_REC_STREAM);
    }
    return s;
}

void tw_stream_destroy(tw_stream *s)
{
    /* Queued ops may still point at it, and CUDA lets pending work finish: keep the memory. */
    (void)s;
}

int tw_stream_device(const tw_stream *s) { return s->device; }
uint32_t tw_stream_id(const tw_stream *s) { return s->id; }
int tw_stream_priority(const tw_stream *s) { return s->priority; }
unsigned tw_stream_flags(const tw_stream *s) { return s->flags; }

/* ---- the queue ---- */

static void flush_locked(host_call **calls, size_t *call_count);

static queued_op *enqueue_locked(uint8_t type, tw_stream *s)
{
    if (TW_UNLIKELY(queue_tail - queue_head >= QUEUE_CAPACITY)) {
        host_call *calls = NULL;
        size_t count = 0;
        flush_locked(&calls, &count);
        /* host functions cannot run under the lock; a full queue defers them to the next flush */
        for (size_t i = 0; i < count; i++)
            tw_submit_host_func(legacy_stream(0), calls[i].fn, calls[i].data);
        free(calls);
    }
    queued_op *op = &queue[queue_tail % QUEUE_CAPACITY];
    queue_tail++;
    op->type = type;
    op->flags = 0;
    op->stream = s;
    op->seq = next_seq++;
    op->issue_ns = tw_now_ns();
    op->tid = tw_thread_id();
    return op;
}

/* Earliest start for work issued at issue_ns on s (before event waits). */
static int64_t earliest_start(const tw_stream *s, int64_t issue_ns)
{
    int64_t start = issue_ns + tw_spec()->launch_latency_ns;
    if (s->tail_ns > start)
        start = s->tail_ns;
    int device = s->device;
    if (s->legacy) {
        if (blocking_tail_ns[device] > start)
            start = blocking_tail_ns[device];
    } else if (!(s->flags & TW_STREAM_NON_BLOCKING)) {
        int64_t legacy_tail = legacy_streams[device].tail_ns;
        if (legacy_tail > start)
            start = legacy_tail;
    }
    return start;
}

static void advance_stream(tw_stream *s, int64_t end_ns)
{
    if (end_ns > s->tail_ns)
        s->tail_ns = end_ns;
    int device = s->device;
    if (!s->legacy && !(s->flags & TW_STREAM_NON_BLOCKING) && end_ns > blocking_tail_ns[device])
        blocking_tail_ns[device] = end_ns;
    if (end_ns > device_tail_ns[device])
        device_tail_ns[device] = end_ns;
}

static void emit_op_record(const queued_op *op, const tw_prediction_slot *slot, int64_t start_ns,
                           int64_t end_ns, uint32_t graph_id)
{
    tw_record local;
    tw_record *rec = tw_trace_claim();
    bool traced = rec != NULL;
    if (!traced) {
        if (TW_LIKELY(!tw_cupti_collecting))
            return;
        memset(&local, 0, sizeof local); /* untraced process, but a CUPTI client wants it */
        rec = &local;
    }
    const tw_desc *d = &slot->desc;
    rec->op_kind = (uint16_t)d->kind;
    rec->device = (uint16_t)op->stream->device;
    rec->model = (uint16_t)slot->model;
    rec->tid = op->tid;
    rec->stream_id = op->stream->id;
    rec->name_id = d->name_id;
    rec->graph_id = graph_id;
    rec->seq = op->seq;
    rec->issue_ns = op->issue_ns;
    rec->begin_ns = start_ns;
    rec->end_ns = end_ns;
    memcpy(rec->grid, d->grid, sizeof rec->grid);
    memcpy(rec->block, d->block, sizeof rec->block);
    rec->smem_bytes = d->smem_bytes;
    rec->flags = d->flags | op->flags;
    rec->bytes = d->bytes;
    rec->flops = d->flops;
    rec->addr = (uint64_t)(uintptr_t)op->stream;
    rec->value = d->kind == TW_OP_MEMCPY ? d->dims[0] : d->pointer_params;
    memcpy(rec->dims, d->dims, sizeof rec->dims);
    if (TW_UNLIKELY(tw_cupti_collecting))
        tw_cupti_on_op(rec);
    if (traced)
        tw_trace_commit(rec, TW_REC_GPU_OP);
}

static void push_host_call(host_call **calls, size_t *count, void (*fn)(void *), void *data);

static void compute_graph(const queued_op *op, host_call **calls, size_t *call_count)
{
    tw_graph_exec *x = op->u.exec;
    tw_stream *s = op->stream;
    int64_t base = earliest_start(s, op->issue_ns);
    int64_t graph_end = base;
    for (uint32_t i = 0; i < x->node_count; i++) {
        const tw_graph_node *node = &x->nodes[i];
        int64_t start = base;
        for (uint32_t d = 0; d < node->dep_count; d++)
            if (x->node_end_ns[node->deps[d]] > start)
                start = x->node_end_ns[node->deps[d]];
        int64_t end = start;
        if (node->kind == TW_NODE_OP) {
            end = start + node->slot->duration_ns;
            emit_op_record(op, node->slot, start, end, x->graph_id);
        } else if (node->kind == TW_NODE_HOST_FUNC) {
            /* a captured host function runs at every replay, in node (issue) order */
            push_host_call(calls, call_count, node->host_fn, node->host_data);
        }
        x->node_end_ns[i] = end;
        if (end > graph_end)
            graph_end = end;
    }
    advance_stream(s, graph_end);
    tw_record *rec = tw_trace_claim();
    if (rec != NULL) {
        rec->tid = op->tid;
        rec->device = (uint16_t)s->device;
        rec->stream_id = s->id;
        rec->graph_id = x->graph_id;
        rec->seq = op->seq;
        rec->issue_ns = op->issue_ns;
        rec->begin_ns = base;
        rec->end_ns = graph_end;
        rec->value = x->node_count;
        tw_trace_commit(rec, TW_REC_GRAPH_LAUNCH);
    }
}

static void push_host_call(host_call **calls, size_t *count, void (*fn)(void *), void *data)
{
    host_call *grown = realloc(*calls, (*count + 1) * sizeof **calls);
    if (grown == NULL)
        return;
    *calls = grown;
    grown[(*count)++] = (host_call){fn, data};
}

static void flush_locked(host_call **calls, size_t *call_count)
{
    if (queue_head == queue_tail)
        return;
    tw_predict_resolve_locked();
    while (queue_head != queue_tail) {
        queued_op *op = &queue[queue_head % QUEUE_CAPACITY];
        tw_stream *s = op->stream;
        switch (op->type) {
        case Q_OP: {
            int64_t start = earliest_start(s, op->issue_ns);
            int64_t end = start + op->u.slot->duration_ns;
            advance_stream(s, end);
            emit_op_record(op, op->u.slot, start, end, 0);
            break;
        }
        case Q_EVENT_RECORD: {
            int64_t at = earliest_start(s, op->issue_ns) - tw_spec()->launch_latency_ns;
            if (at < s->tail_ns)
                at = s->tail_ns;
            if (at < op->issue_ns)
                at = op->issue_ns;
            op->u.event->time_ns = at;
            op->u.event->records_computed++;
            advance_stream(s, at);
            break;
        }
        case Q_EVENT_WAIT:
            if (op->u.event->records_computed > 0)
                advance_stream(s, op->u.event->time_ns);
            break;
        case Q_HOST_FUNC: {
            int64_t at = s->tail_ns > op->issue_ns ? s->tail_ns : op->issue_ns;
            advance_stream(s, at);
            push_host_call(calls, call_count, op->u.host.fn, op->u.host.data);
            break;
        }
        case Q_GRAPH:
            compute_graph(op, calls, call_count);
            break;
        default:
            break;
        }
        queue_head++;
    }
}

void tw_timeline_flush(void)
{
    host_call *calls = NULL;
    size_t count = 0;
    pthread_mutex_lock(&tw_timeline_lock);
    flush_locked(&calls, &count);
    pthread_mutex_unlock(&tw_timeline_lock);
    for (size_t i = 0; i < count; i++)
        calls[i].fn(calls[i].data);
    free(calls);
}

/* ---- submission ---- */

uint64_t tw_submit_slot_locked(tw_stream *s, tw_prediction_slot *slot, uint32_t flags_extra)
{
    if (s->capture_graph != NULL) {
        uint32_t node = tw_graph_add_node_locked(s->capture_graph, TW_NODE_OP, slot, s->capture_deps,
                                                 s->capture_dep_count);
        s->capture_deps[0] = node;
        s->capture_dep_count = 1;
        return 0;
    }
    queued_op *op = enqueue_locked(Q_OP, s);
    op->u.slot = slot;
    op->flags = flags_extra;
    if (TW_UNLIKELY(tw_cupti_collecting))
        tw_cupti_on_enqueue(op->seq, (int)slot->desc.kind);
    return op->seq;
}

uint64_t tw_submit(tw_stream *s, const tw_desc *desc)
{
    pthread_mutex_lock(&tw_timeline_lock);
    tw_prediction_slot *slot = tw_predict_slot_locked(desc);
    uint64_t seq = tw_submit_slot_locked(s, slot, 0);
    pthread_mutex_unlock(&tw_timeline_lock);
    return seq;
}

uint64_t tw_submit_graph_locked(tw_stream *s, tw_graph_exec *x)
{
    queued_op *op = enqueue_locked(Q_GRAPH, s);
    op->u.exec = x;
    if (TW_UNLIKELY(tw_cupti_collecting))
        tw_cupti_on_enqueue(op->seq, TW_OP_NONE);
    return op->seq;
}

void tw_submit_host_func(tw_stream *s, void (*fn)(void *), void *user_data)
{
    pthread_mutex_lock(&tw_timeline_lock);
    if (s->capture_graph != NULL) {
        uint32_t node = tw_graph_add_node_locked(s->capture_graph, TW_NODE_HOST_FUNC, NULL,
                                                 s->capture_deps, s->capture_dep_count);
        s->capture_graph->nodes[node].host_fn = fn;
        s->capture_graph->nodes[node].host_data = user_data;
        s->capture_deps[0] = node;
        s->capture_dep_count = 1;
    } else {
        queued_op *op = enqueue_locked(Q_HOST_FUNC, s);
        op->u.host.fn = fn;
        op->u.host.data = user_data;
    }
    pthread_mutex_unlock(&tw_timeline_lock);
}

/* ---- waits ---- */

static uint32_t wait_name(const char *what)
{
    return tw_name_intern(what);
}

static int64_t flushed_stream_tail(tw_stream *s)
{
    host_call *calls = NULL;
    size_t count = 0;
    pthread_mutex_lock(&tw_timeline_lock);
    flush_locked(&calls, &count);
    int64_t tail = s->tail_ns;
    pthread_mutex_unlock(&tw_timeline_lock);
    for (size_t i = 0; i < count; i++)
        calls[i].fn(calls[i].data);
    free(calls);
    return tail;
}

void tw_stream_synchronize(tw_stream *s)
{
    static uint32_t name_id;
    if (name_id == 0)
        name_id = wait_name("stream synchronize");
    tw_wait_until(flushed_stream_tail(s), TW_WAIT_GPU, name_id);
}

bool tw_stream_query_done(tw_stream *s)
{
    return flushed_stream_tail(s) <= tw_now_ns();
}

void tw_device_synchronize(int device)
{
    static uint32_t name_id;
    if (name_id == 0)
        name_id = wait_name("device synchronize");
    tw_timeline_flush();
    pthread_mutex_lock(&tw_timeline_lock);
    int64_t target = device_tail_ns[clamp_device(device)];
    pthread_mutex_unlock(&tw_timeline_lock);
    tw_wait_until(target, TW_WAIT_GPU, name_id);
}

/* ---- events ---- */

tw_event *tw_event_create(unsigned flags)
{
    tw_event *e = calloc(1, sizeof *e);
    if (e != NULL)
        e->flags = flags;
    return e;
}

void tw_event_destroy(tw_event *e)
{
    (void)e; /* queued records may still name it: kept, like streams */
}

void tw_event_record(tw_event *e, tw_stream *s)
{
    pthread_mutex_lock(&tw_timeline_lock);
    if (s->capture_graph != NULL) {
        e->capture_graph = s->capture_graph;
        memcpy(e->capture_deps, s->capture_deps, sizeof e->capture_deps);
        e->capture_dep_count = s->capture_dep_count;
    } else {
        e->capture_graph = NULL;
        e->records_issued++;
        queued_op *op = enqueue_locked(Q_EVENT_RECORD, s);
        op->u.event = e;
    }
    pthread_mutex_unlock(&tw_timeline_lock);
}

void tw_stream_wait_event(tw_stream *s, tw_event *e)
{
    pthread_mutex_lock(&tw_timeline_lock);
    if (e->capture_graph != NULL && !tw_capture_active_locked(e->capture_graph))
        e->capture_graph = NULL; /* recorded in a capture that has ended: no graph position left */
    if (e->capture_graph != NULL) {
        /* joining a capture (fork) or ordering within it: a graph dependency */
        if (s->capture_graph == NULL) {
            tw_graph *g = e->capture_graph;
            s->capture_graph = g;
            s->capture_mode = g->capture_streams[0] ? g->capture_streams[0]->capture_mode : 0;
            s->capture_id = g->capture_streams[0] ? g->capture_streams[0]->capture_id : 0;
            s->capture_dep_count = 0;
            if (g->capture_stream_count < TW_MAX_CAPTURE_STREAMS)
                g->capture_streams[g->capture_stream_count++] = s;
        }
        for (uint32_t i = 0; i < e->capture_dep_count && s->capture_dep_count < MAX_CAPTURE_DEPS; i++)
            s->capture_deps[s->capture_dep_count++] = e->capture_deps[i];
    } else if (e->records_issued > 0 && s->capture_graph == NULL) {
        queued_op *op = enqueue_locked(Q_EVENT_WAIT, s);
        op->u.event = e;
    }
    pthread_mutex_unlock(&tw_timeline_lock);
}

tw_graph *tw_event_capture_graph(const tw_event *e)
{
    return e->capture_graph;
}

bool tw_event_recorded(const tw_event *e)
{
    return e->records_issued > 0;
}

int64_t tw_event_time_ns(tw_event *e)
{
    tw_timeline_flush();
    return e->time_ns;
}

bool tw_event_query_done(tw_event *e)
{
    if (e->records_issued == 0)
        return true;
    return tw_event_time_ns(e) <= tw_now_ns();
}

void tw_event_synchronize(tw_event *e)
{
    static uint32_t name_id;
    if (name_id == 0)
        name_id = wait_name("event synchronize");
    if (e->records_issued == 0)
        return;
    tw_wait_until(tw_event_time_ns(e), TW_WAIT_EVENT, name_id);
}

/* ---- capture state (graph.c drives it) ---- */

void tw_stream_capture_set(tw_stream *s, tw_graph *g, int mode, uint64_t capture_id)
{
    s->capture_graph = g;
    s->capture_mode = mode;
    s->capture_id = capture_id;
    s->capture_dep_count = 0;
}

bool tw_stream_capture_tail(const tw_stream *s, uint32_t *deps, uint32_t *dep_count)
{
    if (s->capture_graph == NULL)
        return false;
    memcpy(deps, s->capture_deps, s->capture_dep_count * sizeof *deps);
    *dep_count = s->capture_dep_count;
    return true;
}

void tw_stream_capture_set_tail(tw_stream *s, const uint32_t *deps, uint32_t dep_count)
{
    if (dep_count > MAX_CAPTURE_DEPS)
        dep_count = MAX_CAPTURE_DEPS;
    memcpy(s->capture_deps, deps, dep_count * sizeof *deps);
    s->capture_dep_count = dep_count;
}

tw_graph *tw_stream_capture_graph(const tw_stream *s)
{
    return s->capture_graph;
}

uint64_t tw_stream_capture_id(const tw_stream *s)
{
    return s->capture_id;
}

void tw_timeline_after_fork(void)
{
    pthread_mutex_init(&tw_timeline_lock, NULL);
}

/* ---- copies and memsets (shared by the runtime, driver and library adapters) ---- */

static const char *const copy_names[8] = {"memcpy", "memcpy HtoD (pageable)", "memcpy HtoD (pinned)",
                                          "memcpy DtoH (pageable)", "memcpy DtoH (pinned)", "memcpy DtoD",
                                          "memcpy HtoH", "memcpy PtoP"};

void tw_submit_copy_op(tw_stream *s, int copy_kind, uint64_t bytes)
{
    static uint32_t name_ids[8];
    int slot = copy_kind >= 1 && copy_kind <= 7 ? copy_kind : 0;
    if (TW_UNLIKELY(name_ids[slot] == 0))
        name_ids[slot] = tw_name_intern(copy_names[slot]);
    tw_desc desc;
    memset(&desc, 0, sizeof desc);
    desc.kind = TW_OP_MEMCPY;
    desc.device = (uint32_t)s->device;
    desc.dims[0] = copy_kind;
    desc.bytes = bytes;
    desc.name_id = name_ids[slot];
    tw_submit(s, &desc);
}

void tw_copy(void *dst, const void *src, uint64_t bytes, tw_stream *s, int copy_kind, bool synchronous)
{
    if (bytes == 0)
        return;
    if (copy_kind == 0)
        copy_kind = tw_mem_copy_kind(dst, src);
    bool capturing = s->capture_graph != NULL;
    if (!capturing)
        tw_mem_copy_data(dst, src, bytes);
    if (copy_kind == TW_COPY_H2H)
        return;
    tw_submit_copy_op(s, copy_kind, bytes);
    if (synchronous && !capturing)
        tw_stream_synchronize(s);
}
