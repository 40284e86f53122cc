/* Streams, events and the ops on them (DESIGN §2 timeline). Ops are queued in issue order
 * with their prediction slot; times are computed at a flush (a sync, a query, an elapsed-time
 * read, a full queue), after the pending predictions of the batch were answered in one round
 * trip. start = max(issue + launch latency, stream tail, event waits, legacy-stream rules);
 * end = start + duration. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "actors.h"
#include "timeline_internal.h"

#define QUEUE_CAPACITY (1u << 16)
#define MAX_CAPTURE_DEPS 16
#define EVENT_HISTORY 64

enum queued_type { Q_OP = 1, Q_EVENT_RECORD, Q_EVENT_WAIT, Q_HOST_FUNC, Q_GRAPH, Q_COLL };

struct tw_stream {
    int device;
    uint32_t id;
    unsigned flags;
    int priority;
    bool legacy;
    int64_t tail_ns;
    uint64_t stall_pass;        /* == flush_pass: an op of it waits for other ranks */
    tw_graph *capture_graph;
    int capture_mode;
    uint64_t capture_id;
    uint32_t capture_deps[MAX_CAPTURE_DEPS];
    uint32_t capture_dep_count;
};

/* Records are numbered in issue order; with ops deferred behind collectives a later record can
 * be computed before an earlier one, so a wait looks up the time of the record it needs. */
struct tw_event {
    unsigned flags;
    int64_t time_ns;            /* time of the latest record computed so far */
    uint64_t records_issued;
    uint64_t latest_computed;   /* number of the latest record computed */
    struct {
        uint64_t number;
        int64_t time_ns;
    } history[EVENT_HISTORY];
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
    uint64_t record_number;     /* Q_EVENT_RECORD: this record; Q_EVENT_WAIT: the record it needs */
    tw_stream *stream;
    union {
        tw_prediction_slot *slot;
        tw_event *event;
        struct {
            tw_graph_exec *exec;
            tw_coll_launch **colls;   /* per node: the launch of a collective node, else NULL */
        } graph;
        tw_coll_launch *coll;
        struct {
            void (*fn)(void *);
            void *data;
        } host;
    } u;
} queued_op;

/* One NCCL group's ops on one stream of this rank. */
struct tw_coll_launch {
    uint32_t count;
    uint32_t name_id;
    bool posted;                /* arrivals posted */
    int64_t arrival_ns;         /* when this rank's stream reached it */
    tw_prediction_slot *p2p_slot;
    tw_coll_member members[];
};

pthread_mutex_t tw_timeline_lock = PTHREAD_MUTEX_INITIALIZER;

static queued_op queue[QUEUE_CAPACITY];
static uint64_t queue_head;     /* next to compute */
static uint64_t queue_tail;     /* next free */
static uint64_t next_seq = 1;
static uint32_t next_stream_id = 2;  /* 0 = legacy default, 1 = reserved */

/* Ops that wait for other ranks, and every later op that depends on them, in issue order. */
static queued_op *deferred, *deferred_next;
static size_t deferred_count, deferred_next_count, deferred_capacity;
static uint64_t flush_pass = 1;
static uint64_t completions_seen;  /* tw_coll_completed_count() at the last pass */
static uint64_t device_stall_pass[TW_TIMELINE_DEVICES];    /* some stream of the device is stalled */
static uint64_t blocking_stall_pass[TW_TIMELINE_DEVICES];  /* some blocking (legacy-synchronised) stream is */

static tw_stream legacy_streams[TW_TIMELINE_DEVICES];
static int64_t blocking_tail_ns[TW_TIMELINE_DEVICES]; /* latest end on blocking non-legacy streams */
static int64_t device_tail_ns[TW_TIMELINE_DEVICES];   /* latest end on any stream */
static __thread tw_stream *per_thread_streams[TW_TIMELINE_DEVICES];

typedef struct host_call {
    void (*fn)(void *);
    void *data;
} host_call;

static int clamp_device(int device)
{
    return device < 0 ? 0 : (device >= TW_TIMELINE_DEVICES ? TW_TIMELINE_DEVICES - 1 : device);
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
    op->record_number = 0;
    op->stream = s;
    op->seq = __atomic_fetch_add(&next_seq, 1, __ATOMIC_RELAXED);   /* read lock-free by waits */
    op->issue_ns = tw_now_ns();
    op->tid = tw_thread_id();
    return op;
}

uint64_t tw_issued_seq(void)
{
    return __atomic_load_n(&next_seq, __ATOMIC_RELAXED) - 1;
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
    int64_t slowed_ns = end_ns - start_ns - slot->duration_ns;   /* beside a collective (contention.c) */
    rec->flags = d->flags | op->flags | (slowed_ns > 0 ? TW_FLAG_BESIDE_COLLECTIVE : 0);
    rec->bytes = d->bytes;
    rec->flops = d->flops;
    rec->addr = (uint64_t)(uintptr_t)op->stream;
    rec->value = d->kind == TW_OP_MEMCPY ? d->dims[0] : (slowed_ns > 0 ? slowed_ns : 0);
    memcpy(rec->dims, d->dims, sizeof rec->dims);
    if (TW_UNLIKELY(tw_cupti_collecting))
        tw_cupti_on_op(rec);
    if (traced)
        tw_trace_commit(rec, TW_REC_GPU_OP);
}

static bool compute_collective_at(tw_coll_launch *l, int64_t arrival_ns, int64_t *end_ns);
static void finish_collective(const queued_op *op, tw_coll_launch *l, int64_t end);
static void push_host_call(host_call **calls, size_t *count, void (*fn)(void *), void *data);

/* A replay: each node starts after its dependencies. A collective node starts at its
 * rendezvous; while one has not completed the replay is deferred whole, and recomputed later
 * from the same inputs (its arrivals, once posted, stay what they were). Captured host
 * functions run at every replay, in node (issue) order. */
static bool compute_graph(const queued_op *op, host_call **calls, size_t *call_count)
{
    tw_graph_exec *x = op->u.graph.exec;
    tw_coll_launch **colls = op->u.graph.colls;
    tw_stream *s = op->stream;
    int64_t base = earliest_start(s, op->issue_ns);
    int64_t graph_end = base;
    bool complete = true;
    for (uint32_t i = 0; i < x->node_count; i++) {
        const tw_graph_node *node = &x->nodes[i];
        int64_t start = base;
        bool known = true;
        for (uint32_t d = 0; d < node->dep_count; d++) {
            int64_t dep_end = x->node_end_ns[node->deps[d]];
            known &= dep_end >= 0;
            if (dep_end > start)
                start = dep_end;
        }
        int64_t end = start;
        if (!known)
            end = -1;
        else if (node->kind == TW_NODE_OP)
            end = start + node->slot->duration_ns;
        else if (node->kind == TW_NODE_COLL && colls != NULL && colls[i] != NULL &&
                 !compute_collective_at(colls[i], start, &end))
            end = -1;
        x->node_end_ns[i] = end;
        complete &= end >= 0;
        if (end > graph_end)
            graph_end = end;
    }
    if (!complete)
        return false;
    for (uint32_t i = 0; i < x->node_count; i++) {
        const tw_graph_node *node = &x->nodes[i];
        if (node->kind == TW_NODE_OP)
            emit_op_record(op, node->slot, x->node_end_ns[i] - node->slot->duration_ns, x->node_end_ns[i],
                           x->graph_id);
        else if (node->kind == TW_NODE_COLL && colls != NULL && colls[i] != NULL)
            finish_collective(op, colls[i], x->node_end_ns[i]);
        else if (node->kind == TW_NODE_HOST_FUNC)
            push_host_call(calls, call_count, node->host_fn, node->host_data);
    }
    free(colls);
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
    return true;
}

static void push_host_call(host_call **calls, size_t *count, void (*fn)(void *), void *data)
{
    host_call *grown = realloc(*calls, (*count + 1) * sizeof **calls);
    if (grown == NULL)
        return;
    *calls = grown;
    grown[(*count)++] = (host_call){fn, data};
}

/* ---- collectives on the timeline ---- */

tw_coll_launch *tw_coll_launch_new(uint32_t member_count, uint32_t name_id)
{
    tw_coll_launch *l = calloc(1, sizeof *l + member_count * sizeof l->members[0]);
    if (l == NULL)
        abort();
    l->count = member_count;
    l->name_id = name_id;
    return l;
}

void tw_coll_launch_set(tw_coll_launch *l, uint32_t i, const tw_coll_ref *ref, const tw_desc *desc)
{
    l->members[i].ref = *ref;
    if (desc != NULL) {
        pthread_mutex_lock(&tw_timeline_lock);
        l->members[i].slot = tw_predict_slot_locked(desc);
        pthread_mutex_unlock(&tw_timeline_lock);
    }
}

void tw_coll_launch_set_p2p(tw_coll_launch *l, const tw_desc *desc)
{
    pthread_mutex_lock(&tw_timeline_lock);
    l->p2p_slot = tw_predict_slot_locked(desc);
    pthread_mutex_unlock(&tw_timeline_lock);
}

static const tw_prediction_slot *launch_first_slot(const tw_coll_launch *l)
{
    for (uint32_t i = 0; i < l->count; i++)
        if (l->members[i].slot != NULL)
            return l->members[i].slot;
    return l->p2p_slot;
}

/* The SMs and HBM bandwidth a launch takes: a group's ops run in one kernel on the same
 * channels, so the largest share of its members. */
static uint32_t launch_contention(const tw_coll_launch *l)
{
    uint32_t sm = 0, hbm = 0;
    for (uint32_t i = 0; i <= l->count; i++) {
        const tw_prediction_slot *slot = i < l->count ? l->members[i].slot : l->p2p_slot;
        if (slot == NULL || slot->desc.kind != TW_OP_COLLECTIVE)
            continue;
        if ((slot->contention & 0xffffu) > sm)
            sm = slot->contention & 0xffffu;
        if (((slot->contention >> 16) & 0x7fffu) > hbm)
            hbm = (slot->contention >> 16) & 0x7fffu;
    }
    return sm | (hbm << 16);
}

/* One record per launch: begin at the rendezvous, value = when this participant arrived (the
 * gap is time spent waiting for late peers), addr = the rendezvous' id (the same on every
 * participant). A collective's dims: ranks, count, this participant's index, its sequence
 * number; a kernel's: its descriptor's. */
static void emit_coll_record(const queued_op *op, const tw_coll_launch *l, int64_t start, int64_t end)
{
    const tw_prediction_slot *slot = launch_first_slot(l);
    tw_record *rec = tw_trace_claim();
    if (rec == NULL || slot == NULL)
        return;
    const tw_desc *d = &slot->desc;
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < l->count; i++)
        if (l->members[i].slot != NULL)
            bytes += l->members[i].slot->desc.bytes;
    if (l->p2p_slot != NULL)
        bytes += l->p2p_slot->desc.bytes;
    const tw_coll_ref *first = l->count > 0 ? &l->members[0].ref : NULL;
    rec->op_kind = (uint16_t)d->kind;
    rec->device = (uint16_t)op->stream->device;
    rec->model = (uint16_t)slot->model;
    rec->tid = op->tid;
    rec->stream_id = op->stream->id;
    rec->name_id = l->name_id;
    rec->seq = op->seq;
    rec->issue_ns = op->issue_ns;
    rec->begin_ns = start;
    rec->end_ns = end;
    memcpy(rec->grid, d->grid, sizeof rec->grid);
    memcpy(rec->block, d->block, sizeof rec->block);
    rec->smem_bytes = d->smem_bytes;
    rec->flags = d->flags | TW_FLAG_RENDEZVOUS;
    rec->bytes = bytes;
    rec->flops = d->flops;
    rec->addr = first != NULL ? (first->comm_key * 0x9e3779b97f4a7c15ULL) ^ first->op_key : 0;
    rec->value = l->arrival_ns;
    memcpy(rec->dims, d->dims, sizeof rec->dims);
    if (d->kind == TW_OP_COLLECTIVE && first != NULL) {
        rec->dims[2] = first->index;
        rec->dims[3] = (int64_t)(first->op_key & 0xffffffffffffULL);
    }
    tw_trace_commit(rec, TW_REC_GPU_OP);
}

/* Posts this rank's arrival (once: when the stream, or the graph's dependencies, reached the
 * op) and, once every member's rendezvous is complete, its end; false until then. */
static bool compute_collective_at(tw_coll_launch *l, int64_t arrival_ns, int64_t *end_ns)
{
    if (!l->posted) {
        l->arrival_ns = arrival_ns;
        l->posted = true;
        for (uint32_t i = 0; i < l->count; i++)
            tw_coll_arrive(&l->members[i].ref, l->arrival_ns);
    }
    int64_t start = l->arrival_ns;
    for (uint32_t i = 0; i < l->count; i++) {
        int64_t member_start;
        if (!tw_coll_start(&l->members[i].ref, &member_start))
            return false;
        if (member_start > start)
            start = member_start;
    }
    int64_t duration = l->p2p_slot != NULL ? l->p2p_slot->duration_ns : 0;
    for (uint32_t i = 0; i < l->count; i++)
        if (l->members[i].slot != NULL)
            duration += l->members[i].slot->duration_ns;
    *end_ns = start + duration;
    return true;
}

/* The op is computed: its record, its received data written, its entries released. */
static void finish_collective(const queued_op *op, tw_coll_launch *l, int64_t end)
{
    int64_t duration = l->p2p_slot != NULL ? l->p2p_slot->duration_ns : 0;
    for (uint32_t i = 0; i < l->count; i++)
        if (l->members[i].slot != NULL)
            duration += l->members[i].slot->duration_ns;
    emit_coll_record(op, l, end - duration, end);
    tw_contention_collective(op->stream->device, end - duration, end, launch_contention(l));
    for (uint32_t i = 0; i < l->count; i++) {
        tw_coll_materialize_ref(&l->members[i].ref);
        tw_coll_release(&l->members[i].ref);
    }
    free(l);
}

static bool compute_collective(const queued_op *op)
{
    int64_t end;
    if (!compute_collective_at(op->u.coll, earliest_start(op->stream, op->issue_ns), &end))
        return false;
    advance_stream(op->stream, end);
    finish_collective(op, op->u.coll, end);
    return true;
}

/* ---- computing the queue ---- */

static void event_computed(tw_event *e, uint64_t number, int64_t at)
{
    e->history[number % EVENT_HISTORY].number = number;
    e->history[number % EVENT_HISTORY].time_ns = at;
    if (number > e->latest_computed) {
        e->latest_computed = number;
        e->time_ns = at;
    }
}

/* The time of record `number` of e, false while it is not computed. */
static bool event_record_time(const tw_event *e, uint64_t number, int64_t *at)
{
    if (number == 0)
        return false;
    if (e->history[number % EVENT_HISTORY].number == number) {
        *at = e->history[number % EVENT_HISTORY].time_ns;
        return true;
    }
    /* overwritten by a later record: computed long ago (its time is at most the latest's) */
    if (e->history[number % EVENT_HISTORY].number > number) {
        *at = e->time_ns;
        return true;
    }
    return false;
}

/* Stall marks carry the pass that set them: a mark of the latest pass means an op of that
 * stream is deferred now. */
static bool stream_stalled(const tw_stream *s)
{
    int device = s->device;
    if (s->stall_pass == flush_pass)
        return true;
    if (s->legacy)
        return blocking_stall_pass[device] == flush_pass;
    if (!(s->flags & TW_STREAM_NON_BLOCKING))
        return legacy_streams[device].stall_pass == flush_pass;
    return false;
}

static void defer_locked(const queued_op *op)
{
    tw_stream *s = op->stream;
    s->stall_pass = flush_pass;
    device_stall_pass[s->device] = flush_pass;
    if (!s->legacy && !(s->flags & TW_STREAM_NON_BLOCKING))
        blocking_stall_pass[s->device] = flush_pass;
    if (deferred_next_count == deferred_capacity) {
        size_t capacity = deferred_capacity ? deferred_capacity * 2 : 256;
        queued_op *a = realloc(deferred, capacity * sizeof *a);
        queued_op *b = a != NULL ? realloc(deferred_next, capacity * sizeof *b) : NULL;
        if (a == NULL || b == NULL)
            abort();
        deferred = a;
        deferred_next = b;
        deferred_capacity = capacity;
    }
    deferred_next[deferred_next_count++] = *op;
}

/* Ops that run on the SMs, beside which a collective's CTAs take their share (copies use the
 * copy engines). */
static bool shares_sms(uint32_t kind)
{
    return kind != TW_OP_MEMCPY && kind != TW_OP_COLLECTIVE && kind < TW_OP_EVENT_RECORD && kind != TW_OP_NONE;
}

/* Computes one op; false when it must wait for other ranks (then it and every later op of its
 * stream are deferred). */
static bool compute_op(const queued_op *op, host_call **calls, size_t *call_count)
{
    tw_stream *s = op->stream;
    switch (op->type) {
    case Q_OP: {
        const tw_prediction_slot *slot = op->u.slot;
        int64_t start = earliest_start(s, op->issue_ns);
        int64_t end = start + slot->duration_ns;
        if (shares_sms(slot->desc.kind)) {
            end = tw_contention_end(s->device, start, slot->duration_ns, slot->contention);
            if (tw_contention_must_wait(s->device, end, flush_pass))
                return false;   /* beside a collective whose start is not known yet (contention.c) */
        }
        advance_stream(s, end);
        emit_op_record(op, slot, start, end, 0);
        return true;
    }
    case Q_EVENT_RECORD: {
        int64_t at = earliest_start(s, op->issue_ns) - tw_spec()->launch_latency_ns;
        if (at < s->tail_ns)
            at = s->tail_ns;
        if (at < op->issue_ns)
            at = op->issue_ns;
        event_computed(op->u.event, op->record_number, at);
        advance_stream(s, at);
        return true;
    }
    case Q_EVENT_WAIT: {
        int64_t at;
        if (!event_record_time(op->u.event, op->record_number, &at))
            return false;
        advance_stream(s, at);
        return true;
    }
    case Q_HOST_FUNC: {
        int64_t at = s->tail_ns > op->issue_ns ? s->tail_ns : op->issue_ns;
        advance_stream(s, at);
        push_host_call(calls, call_count, op->u.host.fn, op->u.host.data);
        return true;
    }
    case Q_GRAPH:
        return compute_graph(op, calls, call_count);
    case Q_COLL:
        return compute_collective(op);
    default:
        return true;
    }
}

static void process_locked(const queued_op *op, host_call **calls, size_t *call_count)
{
    if (stream_stalled(op->stream) || !compute_op(op, calls, call_count)) {
        /* a collective waiting (for peers, or behind its stream): it starts no earlier than
         * its stream's earliest start; later kernels of the device that reach past it wait */
        if (op->type == Q_COLL || (op->type == Q_GRAPH && op->u.graph.colls != NULL))
            tw_contention_pending(op->stream->device, earliest_start(op->stream, op->issue_ns), flush_pass);
        defer_locked(op);
    }
}

typedef struct gpu_waiter gpu_waiter;
static void resolve_waiters_locked(void);

static void flush_locked(host_call **calls, size_t *call_count)
{
    uint64_t completions = tw_coll_completed_count();
    if (queue_head == queue_tail && (deferred_count == 0 || completions == completions_seen))
        return;
    completions_seen = completions;
    tw_predict_resolve_locked();
    flush_pass++;
    deferred_next_count = 0;
    for (size_t i = 0; i < deferred_count; i++)
        process_locked(&deferred[i], calls, call_count);
    while (queue_head != queue_tail) {
        process_locked(&queue[queue_head % QUEUE_CAPACITY], calls, call_count);
        queue_head++;
    }
    queued_op *swap = deferred;
    deferred = deferred_next;
    deferred_next = swap;
    deferred_count = deferred_next_count;
    resolve_waiters_locked();
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

void tw_timeline_progress(void)
{
    tw_timeline_flush();
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

uint64_t tw_submit_graph_locked(tw_stream *s, tw_graph_exec *x, tw_coll_launch **colls)
{
    queued_op *op = enqueue_locked(Q_GRAPH, s);
    op->u.graph.exec = x;
    op->u.graph.colls = colls;
    if (TW_UNLIKELY(tw_cupti_collecting))
        tw_cupti_on_enqueue(op->seq, TW_OP_NONE);
    return op->seq;
}

bool tw_capture_collective(tw_stream *s, const void *coll_template, tw_coll_launch *(*bind)(const void *))
{
    pthread_mutex_lock(&tw_timeline_lock);
    bool capturing = s->capture_graph != NULL;
    if (capturing) {
        uint32_t node = tw_graph_add_node_locked(s->capture_graph, TW_NODE_COLL, NULL, s->capture_deps,
                                                 s->capture_dep_count);
        s->capture_graph->nodes[node].coll_template = coll_template;
        s->capture_graph->nodes[node].coll_bind = bind;
        s->capture_deps[0] = node;
        s->capture_dep_count = 1;
    }
    pthread_mutex_unlock(&tw_timeline_lock);
    return capturing;
}

void tw_submit_collective(tw_stream *s, tw_coll_launch *l)
{
    pthread_mutex_lock(&tw_timeline_lock);
    queued_op *op = enqueue_locked(Q_COLL, s);
    op->u.coll = l;
    pthread_mutex_unlock(&tw_timeline_lock);
    /* post this rank's arrival now if its stream has reached the op: a peer may be waiting */
    tw_timeline_flush();
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

/* ---- waits ----
 * A wait's target is the stream's, the device's or the event's computed time. While an op it
 * depends on waits for other ranks, it has none yet: the thread is blocked with no target, and
 * the flush that completes the op (the progress thread's, after a peer arrived) gives its slot
 * the target before the clock may move on (collectives.c: dirty processes hold the clock). */

enum { TARGET_STREAM = 1, TARGET_DEVICE, TARGET_EVENT };

struct gpu_waiter {
    int kind;
    void *object;
    tw_actor *slot;
    int64_t target_ns;
    uint32_t resolved;   /* the futex word its thread sleeps on until a flush resolves it */
    gpu_waiter *next;
};
static gpu_waiter *waiters;   /* under tw_timeline_lock */

static bool target_locked(int kind, void *object, int64_t *target)
{
    switch (kind) {
    case TARGET_STREAM: {
        tw_stream *s = object;
        if (stream_stalled(s))
            return false;
        *target = s->tail_ns;
        return true;
    }
    case TARGET_DEVICE: {
        int device = clamp_device((int)(intptr_t)object);
        if (device_stall_pass[device] == flush_pass)
            return false;
        *target = device_tail_ns[device];
        return true;
    }
    default: {
        tw_event *e = object;
        if (e->records_issued == 0) {
            *target = 0;
            return true;
        }
        return event_record_time(e, e->records_issued, target);
    }
    }
}

/* Each waiter whose target is now known gets it and is woken (it alone: it tries the jump to
 * its target itself, as every thread that blocks with a target does). */
static void resolve_waiters_locked(void)
{
    for (gpu_waiter *w = waiters; w != NULL; w = w->next) {
        if (w->resolved || !target_locked(w->kind, w->object, &w->target_ns))
            continue;
        if (w->slot != NULL)
            tw_actor_set_target(w->slot, w->target_ns);
        __atomic_store_n(&w->resolved, 1, __ATOMIC_RELEASE);
        tw_actors_wake_word(&w->resolved);   /* under the lock: its thread unregisters under it */
    }
}

/* Flushes and reads the target; when there is none yet, registers `waiter`. */
static bool flushed_target(int kind, void *object, int64_t *target, gpu_waiter *waiter)
{
    host_call *calls = NULL;
    size_t count = 0;
    pthread_mutex_lock(&tw_timeline_lock);
    flush_locked(&calls, &count);
    bool known = target_locked(kind, object, target);
    if (!known && waiter != NULL) {
        *waiter = (gpu_waiter){.kind = kind, .object = object, .slot = tw_actor_self(), .next = waiters};
        waiters = waiter;
    }
    pthread_mutex_unlock(&tw_timeline_lock);
    for (size_t i = 0; i < count; i++)
        calls[i].fn(calls[i].data);
    free(calls);
    return known;
}

static void unregister_waiter(gpu_waiter *waiter)
{
    pthread_mutex_lock(&tw_timeline_lock);
    for (gpu_waiter **at = &waiters; *at != NULL; at = &(*at)->next)
        if (*at == waiter) {
            *at = waiter->next;
            break;
        }
    pthread_mutex_unlock(&tw_timeline_lock);
}

/* Blocked with no target until a flush gives this waiter one. It sleeps on its own word, which
 * only that flush wakes: nothing else can end the wait (a jump cannot: it has no target), and on
 * the run's epoch every kick of every rank's progress thread woke every waiting rank, O(ranks²)
 * wakes per collective. The slice bounds the sleep for the deadlock check. */
static void wait_for_peers(gpu_waiter *waiter)
{
    if (tw_actor_block("gpu:peers", -1, TW_ACTOR_F_EPOCH) == NULL)
        waiter->slot = NULL;
    while (!__atomic_load_n(&waiter->resolved, __ATOMIC_ACQUIRE)) {
        tw_actors_try_jump();
        tw_actors_wait_word(&waiter->resolved, 0, waiter->slot != NULL ? TW_SLICE_FOREVER_NS : 1000000LL);
        tw_actors_check_deadlock();
    }
    unregister_waiter(waiter);
    tw_actor_run();
}

static void gpu_wait(int kind, void *object, int reason, uint32_t name_id)
{
    int64_t begin = tw_now_ns();
    uint64_t issued = tw_issued_seq();
    int64_t target = 0;
    gpu_waiter waiter;
    while (!flushed_target(kind, object, &target, &waiter))
        wait_for_peers(&waiter);
    if (target > tw_now_ns())
        tw_wait_virtual(target, reason == TW_WAIT_EVENT ? "gpu:event" : "gpu:sync", false);
    int64_t end = tw_now_ns();
    if (name_id != 0 || end > begin)
        tw_clock_record_wait(begin, end, reason, name_id, issued);
}

static uint32_t wait_name(const char *what)
{
    return tw_name_intern(what);
}

void tw_stream_synchronize(tw_stream *s)
{
    static uint32_t name_id;
    if (name_id == 0)
        name_id = wait_name("stream synchronize");
    gpu_wait(TARGET_STREAM, s, TW_WAIT_GPU, name_id);
}

bool tw_stream_query_done(tw_stream *s)
{
    int64_t target;
    return flushed_target(TARGET_STREAM, s, &target, NULL) && target <= tw_now_ns();
}

void tw_device_synchronize(int device)
{
    static uint32_t name_id;
    if (name_id == 0)
        name_id = wait_name("device synchronize");
    gpu_wait(TARGET_DEVICE, (void *)(intptr_t)device, TW_WAIT_GPU, name_id);
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
        queued_op *op = enqueue_locked(Q_EVENT_RECORD, s);
        op->u.event = e;
        op->record_number = ++e->records_issued;
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
        op->record_number = e->records_issued;   /* the latest record at the time of the call */
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
    int64_t target;
    return flushed_target(TARGET_EVENT, e, &target, NULL) && target <= tw_now_ns();
}

void tw_event_synchronize(tw_event *e)
{
    static uint32_t name_id;
    if (name_id == 0)
        name_id = wait_name("event synchronize");
    if (e->records_issued == 0)
        return;
    gpu_wait(TARGET_EVENT, e, TW_WAIT_EVENT, name_id);
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
