/* Stream capture and CUDA graphs: while a stream captures, its ops (kernels, copies, library
 * calls) become nodes with dependencies from the capturing streams' tails; instantiate
 * freezes them; a launch replays every node on the launching stream (timeline.c). */
#include <stdlib.h>
#include <string.h>

#include "timeline_internal.h"

static uint32_t next_graph_id = 1;
static uint64_t next_capture_id = 1;

/* Captures in progress (their graphs), for the rules that reach beyond one stream: another
 * thread's global-mode capture, the legacy stream against blocking capturing streams, a device
 * synchronize. Guarded by tw_timeline_lock; the count is read without it as a fast path. */
#define MAX_ACTIVE_CAPTURES 64
static tw_graph *active_captures[MAX_ACTIVE_CAPTURES];
static uint32_t active_capture_count;
static __thread int thread_capture_mode = TW_CAPTURE_GLOBAL; /* cudaThreadExchangeStreamCaptureMode */

tw_graph *tw_graph_create(void)
{
    tw_graph *g = calloc(1, sizeof *g);
    if (g != NULL)
        g->id = __atomic_fetch_add(&next_graph_id, 1, __ATOMIC_RELAXED);
    return g;
}

static void free_nodes(tw_graph_node *nodes, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++)
        free(nodes[i].deps);
    free(nodes);
}

static void free_node_refs(tw_graph *g);

void tw_graph_destroy(tw_graph *g)
{
    if (g == NULL)
        return;
    free_node_refs(g);
    free_nodes(g->nodes, g->node_count);
    free(g);
}

size_t tw_graph_node_count(const tw_graph *g)
{
    return g ? g->node_count : 0;
}

uint32_t tw_graph_add_node_locked(tw_graph *g, uint32_t kind, tw_prediction_slot *slot,
                                  const uint32_t *deps, uint32_t dep_count)
{
    if (g->node_count == g->node_capacity) {
        uint32_t capacity = g->node_capacity ? g->node_capacity * 2 : 64;
        tw_graph_node *grown = realloc(g->nodes, capacity * sizeof *grown);
        if (grown == NULL)
            abort();
        g->nodes = grown;
        g->node_capacity = capacity;
    }
    tw_graph_node *node = &g->nodes[g->node_count];
    memset(node, 0, sizeof *node);
    node->kind = kind;
    node->slot = slot;
    if (dep_count > 0) {
        node->deps = malloc(dep_count * sizeof *node->deps);
        if (node->deps == NULL)
            abort();
        memcpy(node->deps, deps, dep_count * sizeof *deps);
        node->dep_count = dep_count;
    }
    return g->node_count++;
}

int tw_capture_begin(tw_stream *s, int mode)
{
    pthread_mutex_lock(&tw_timeline_lock);
    int status = TW_OK;
    if (tw_stream_capture_graph(s) != NULL) {
        status = TW_ERR_INVALID;
    } else if (active_capture_count == MAX_ACTIVE_CAPTURES) {
        TW_ERROR("stream capture: more than %d captures at once", MAX_ACTIVE_CAPTURES);
        status = TW_ERR_NOMEM;
    } else {
        tw_graph *g = tw_graph_create();
        if (g == NULL) {
            status = TW_ERR_NOMEM;
        } else {
            g->capture_streams[g->capture_stream_count++] = s;
            g->capture_mode = mode;
            g->capture_tid = tw_thread_id();
            active_captures[active_capture_count++] = g;
            tw_stream_capture_set(s, g, mode, __atomic_fetch_add(&next_capture_id, 1, __ATOMIC_RELAXED));
        }
    }
    pthread_mutex_unlock(&tw_timeline_lock);
    return status;
}

/* cudaStreamBeginCaptureToGraph: capture into the caller's graph after `deps` (node handles). */
int tw_capture_begin_to_graph(tw_stream *s, tw_graph *g, void *const *deps, size_t dep_count, int mode)
{
    uint32_t indexes[16];
    if (dep_count > 16)
        return TW_ERR_INVALID;
    for (size_t i = 0; i < dep_count; i++) {
        tw_graph *owner;
        if (!tw_graph_node_lookup(deps[i], &owner, &indexes[i]) || owner != g)
            return TW_ERR_INVALID;
    }
    pthread_mutex_lock(&tw_timeline_lock);
    int status = TW_OK;
    if (tw_stream_capture_graph(s) != NULL || g->capture_stream_count != 0) {
        status = TW_ERR_INVALID;
    } else if (active_capture_count == MAX_ACTIVE_CAPTURES) {
        status = TW_ERR_NOMEM;
    } else {
        g->capture_streams[g->capture_stream_count++] = s;
        g->capture_mode = mode;
        g->capture_tid = tw_thread_id();
        g->capture_invalidated = false;
        g->capture_into_existing = true;
        active_captures[active_capture_count++] = g;
        tw_stream_capture_set(s, g, mode, __atomic_fetch_add(&next_capture_id, 1, __ATOMIC_RELAXED));
        tw_stream_capture_set_tail(s, indexes, (uint32_t)dep_count);
    }
    pthread_mutex_unlock(&tw_timeline_lock);
    return status;
}

/* cudaStreamUpdateCaptureDependencies: replace (or add to) the set the next captured node
 * depends on. */
int tw_capture_set_dependencies(tw_stream *s, void *const *deps, size_t dep_count, bool add)
{
    uint32_t indexes[16], count = 0;
    pthread_mutex_lock(&tw_timeline_lock);
    tw_graph *g = tw_stream_capture_graph(s);
    int status = g == NULL ? TW_ERR_INVALID : TW_OK;
    if (status == TW_OK && add)
        tw_stream_capture_tail(s, indexes, &count);
    for (size_t i = 0; i < dep_count && status == TW_OK; i++) {
        tw_graph *owner;
        uint32_t index;
        if (!tw_graph_node_lookup(deps[i], &owner, &index) || owner != g || count == 16)
            status = TW_ERR_INVALID;
        else
            indexes[count++] = index;
    }
    if (status == TW_OK)
        tw_stream_capture_set_tail(s, indexes, count);
    pthread_mutex_unlock(&tw_timeline_lock);
    return status;
}

static void forget_capture_locked(tw_graph *g)
{
    for (uint32_t i = 0; i < active_capture_count; i++) {
        if (active_captures[i] == g) {
            active_captures[i] = active_captures[--active_capture_count];
            return;
        }
    }
}

/* Ends the capture begun on s. A capture voided by an invalid call ends all the same (its
 * streams leave capture mode) but gives no graph, as cudaStreamEndCapture documents. */
int tw_capture_end(tw_stream *s, tw_graph **out_graph)
{
    pthread_mutex_lock(&tw_timeline_lock);
    tw_graph *g = tw_stream_capture_graph(s);
    int status = TW_OK;
    *out_graph = NULL;
    if (g == NULL || g->capture_streams[0] != s) {
        status = TW_ERR_INVALID;
    } else if (g->capture_mode != TW_CAPTURE_RELAXED && g->capture_tid != tw_thread_id()) {
        status = TW_ERR_CAPTURE_WRONG_THREAD;
    } else {
        for (uint32_t i = 0; i < g->capture_stream_count; i++)
            tw_stream_capture_set(g->capture_streams[i], NULL, 0, 0);
        g->capture_stream_count = 0;
        forget_capture_locked(g);
        if (g->capture_invalidated) {
            status = TW_ERR_CAPTURE_INVALIDATED;
            if (!g->capture_into_existing)
                tw_graph_destroy(g);
        } else {
            *out_graph = g;
        }
    }
    pthread_mutex_unlock(&tw_timeline_lock);
    return status;
}

/* ---- capture rules (CUDA programming guide, "Prohibited and Unhandled Operations"; the
 * stream-capture interaction modes of cudaThreadExchangeStreamCaptureMode) ---- */

int tw_capture_exchange_mode(int mode)
{
    int previous = thread_capture_mode;
    thread_capture_mode = mode;
    return previous;
}

int tw_capture_status(const tw_stream *s)
{
    tw_graph *g = tw_stream_capture_graph(s);
    if (g == NULL)
        return TW_CAPTURE_STATUS_NONE;
    return g->capture_invalidated ? TW_CAPTURE_STATUS_INVALIDATED : TW_CAPTURE_STATUS_ACTIVE;
}

static void invalidate_locked(tw_graph *g)
{
    if (!g->capture_invalidated)
        TW_INFO("stream capture %u invalidated by an operation not permitted while capturing", g->id);
    g->capture_invalidated = true;
}

/* A potentially unsafe call (an allocation, a free, a synchronous call, an event or stream
 * query) by this thread: prohibited while it has a capture of its own that is not relaxed, or,
 * in global mode, while another thread has a global-mode capture. The captures that prohibit
 * it are invalidated. */
int tw_capture_check_unsafe(void)
{
    if (__atomic_load_n(&active_capture_count, __ATOMIC_RELAXED) == 0 || thread_capture_mode == TW_CAPTURE_RELAXED)
        return TW_OK;
    uint32_t tid = tw_thread_id();
    int status = TW_OK;
    pthread_mutex_lock(&tw_timeline_lock);
    for (uint32_t i = 0; i < active_capture_count; i++) {
        tw_graph *g = active_captures[i];
        bool own = g->capture_tid == tid && g->capture_mode != TW_CAPTURE_RELAXED;
        bool foreign = g->capture_tid != tid && g->capture_mode == TW_CAPTURE_GLOBAL &&
                       thread_capture_mode == TW_CAPTURE_GLOBAL;
        if (own || foreign) {
            invalidate_locked(g);
            status = TW_ERR_CAPTURE_UNSUPPORTED;
        }
    }
    pthread_mutex_unlock(&tw_timeline_lock);
    return status;
}

/* The capture that makes the legacy stream of s's device unusable: one with a blocking
 * stream on that device (lock held). */
static tw_graph *blocking_capture_locked(const tw_stream *s)
{
    for (uint32_t i = 0; i < active_capture_count; i++) {
        tw_graph *g = active_captures[i];
        for (uint32_t j = 0; j < g->capture_stream_count; j++) {
            tw_stream *c = g->capture_streams[j];
            if (tw_stream_device(c) == tw_stream_device(s) && !(tw_stream_flags(c) & TW_STREAM_NON_BLOCKING))
                return g;
        }
    }
    return NULL;
}

bool tw_capture_blocks_legacy(const tw_stream *s)
{
    if (__atomic_load_n(&active_capture_count, __ATOMIC_RELAXED) == 0 || tw_stream_id(s) != 0)
        return false;
    pthread_mutex_lock(&tw_timeline_lock);
    bool blocked = blocking_capture_locked(s) != NULL;
    pthread_mutex_unlock(&tw_timeline_lock);
    return blocked;
}

/* Work enqueued on s: fails on a voided capture, and on the legacy stream while a blocking
 * stream of its device captures (an implicit dependency; that capture is invalidated). */
int tw_capture_check_enqueue(tw_stream *s)
{
    tw_graph *own = tw_stream_capture_graph(s);
    if (own != NULL)
        return own->capture_invalidated ? TW_ERR_CAPTURE_INVALIDATED : TW_OK;
    if (__atomic_load_n(&active_capture_count, __ATOMIC_RELAXED) == 0 || tw_stream_id(s) != 0)
        return TW_OK;
    pthread_mutex_lock(&tw_timeline_lock);
    tw_graph *g = blocking_capture_locked(s);
    if (g != NULL)
        invalidate_locked(g);
    pthread_mutex_unlock(&tw_timeline_lock);
    return g != NULL ? TW_ERR_CAPTURE_IMPLICIT : TW_OK;
}

static int invalidate_graph(tw_graph *g)
{
    pthread_mutex_lock(&tw_timeline_lock);
    invalidate_locked(g);
    pthread_mutex_unlock(&tw_timeline_lock);
    return TW_ERR_CAPTURE_UNSUPPORTED;
}

/* A synchronize or query of s: never allowed on a capturing stream (it has no work to wait
 * for); on the legacy stream the implicit-dependency rule applies; then the unsafe-call rule. */
int tw_capture_check_sync(tw_stream *s)
{
    tw_graph *g = tw_stream_capture_graph(s);
    if (g != NULL)
        return invalidate_graph(g);
    int status = tw_capture_check_unsafe();
    return status != TW_OK ? status : tw_capture_check_enqueue(s);
}

/* Whether g is a capture in progress (a captured event may name one that has ended). */
bool tw_capture_active_locked(const tw_graph *g)
{
    for (uint32_t i = 0; i < active_capture_count && g != NULL; i++)
        if (active_captures[i] == g)
            return true;
    return false;
}

/* A wait of s on e: an event recorded in a capture in progress joins s to that capture (a
 * fork), but the legacy stream cannot capture, and two captures cannot merge. */
int tw_capture_check_wait(tw_stream *s, tw_event *e)
{
    int status = tw_capture_check_enqueue(s);
    if (status != TW_OK)
        return status;
    pthread_mutex_lock(&tw_timeline_lock);
    tw_graph *from = tw_event_capture_graph(e), *into = tw_stream_capture_graph(s);
    if (tw_capture_active_locked(from) && from != into) {
        if (into != NULL) {
            invalidate_locked(into);
            status = TW_ERR_CAPTURE_MERGE;
        } else if (tw_stream_id(s) == 0) {
            status = TW_ERR_CAPTURE_UNSUPPORTED;
        }
        if (status != TW_OK)
            invalidate_locked(from);
    }
    pthread_mutex_unlock(&tw_timeline_lock);
    return status;
}

/* A synchronize or query of an event whose last record was captured. */
int tw_capture_check_event(tw_event *e)
{
    tw_graph *g = tw_event_capture_graph(e);
    pthread_mutex_lock(&tw_timeline_lock);
    bool live = tw_capture_active_locked(g);
    pthread_mutex_unlock(&tw_timeline_lock);
    if (live)
        return invalidate_graph(g);
    return tw_capture_check_unsafe();
}

/* A device-wide synchronize: not while any stream of the device captures. */
int tw_capture_check_device_sync(int device)
{
    int status = tw_capture_check_unsafe();
    if (__atomic_load_n(&active_capture_count, __ATOMIC_RELAXED) == 0)
        return status;
    pthread_mutex_lock(&tw_timeline_lock);
    for (uint32_t i = 0; i < active_capture_count; i++) {
        tw_graph *g = active_captures[i];
        for (uint32_t j = 0; j < g->capture_stream_count; j++) {
            if (tw_stream_device(g->capture_streams[j]) == device) {
                invalidate_locked(g);
                status = TW_ERR_CAPTURE_UNSUPPORTED;
                break;
            }
        }
    }
    pthread_mutex_unlock(&tw_timeline_lock);
    return status;
}

/* The nodes in a topological order (node-API edges may point forward), by Kahn's rule with
 * the lowest index first so that a captured graph keeps its order. Returns false on a cycle. */
static bool topological_order(const tw_graph *g, uint32_t *order)
{
    uint32_t n = g->node_count;
    uint32_t *pending = calloc(n ? n : 1, sizeof *pending); /* unmet dependencies per node */
    bool *done = calloc(n ? n : 1, sizeof *done);
    if (pending == NULL || done == NULL)
        abort();
    for (uint32_t i = 0; i < n; i++)
        pending[i] = g->nodes[i].dep_count;
    uint32_t placed = 0;
    for (bool progress = true; progress && placed < n;) {
        progress = false;
        for (uint32_t i = 0; i < n; i++) {
            if (done[i] || pending[i] != 0)
                continue;
            done[i] = true;
            order[placed++] = i;
            progress = true;
            for (uint32_t j = 0; j < n; j++)
                for (uint32_t d = 0; d < g->nodes[j].dep_count; d++)
                    if (g->nodes[j].deps[d] == i)
                        pending[j]--;
        }
    }
    free(pending);
    free(done);
    return placed == n;
}

static bool in_order(const tw_graph *g)
{
    for (uint32_t i = 0; i < g->node_count; i++)
        for (uint32_t d = 0; d < g->nodes[i].dep_count; d++)
            if (g->nodes[i].deps[d] >= i)
                return false;
    return true;
}

static void free_exec(tw_graph_exec *x)
{
    free(x->nodes);
    free(x->node_end_ns);
    free(x->exec_index);
    free(x);
}

int tw_graph_instantiate(tw_graph *g, tw_graph_exec **out_exec)
{
    tw_graph_exec *x = calloc(1, sizeof *x);
    if (x == NULL)
        return TW_ERR_NOMEM;
    pthread_mutex_lock(&tw_timeline_lock);
    uint32_t n = g->node_count;
    x->node_count = n;
    x->graph_id = g->id;
    x->nodes = calloc(n ? n : 1, sizeof *x->nodes);
    x->node_end_ns = calloc(n ? n : 1, sizeof *x->node_end_ns);
    x->exec_index = calloc(n ? n : 1, sizeof *x->exec_index);
    uint32_t *order = calloc(n ? n : 1, sizeof *order);
    if (x->nodes == NULL || x->node_end_ns == NULL || x->exec_index == NULL || order == NULL)
        abort();
    bool acyclic = true;
    if (in_order(g)) /* captured graphs: the common case, no sort */
        for (uint32_t i = 0; i < n; i++)
            order[i] = i;
    else
        acyclic = topological_order(g, order);
    for (uint32_t i = 0; i < n && acyclic; i++)
        x->exec_index[order[i]] = i;
    for (uint32_t i = 0; i < n && acyclic; i++) {
        const tw_graph_node *from = &g->nodes[order[i]];
        x->nodes[i] = *from;
        x->nodes[i].deps = NULL;
        x->coll_node_count += from->kind == TW_NODE_COLL;
        if (from->dep_count > 0) {
            x->nodes[i].deps = malloc(from->dep_count * sizeof(uint32_t));
            if (x->nodes[i].deps == NULL)
                abort();
            for (uint32_t d = 0; d < from->dep_count; d++)
                x->nodes[i].deps[d] = x->exec_index[from->deps[d]];
        }
    }
    pthread_mutex_unlock(&tw_timeline_lock);
    free(order);
    if (!acyclic) {
        free_exec(x);
        return TW_ERR_INVALID;
    }
    *out_exec = x;
    return TW_OK;
}

void tw_graph_exec_destroy(tw_graph_exec *x)
{
    /* a queued replay may still reference it; graphs are few, so it is kept */
    (void)x;
}

/* What a replay does on the host (node-API memcpy and memset nodes move their bytes, as a copy
 * issued now would) and the event nodes: waits before the replay, records after it. Event
 * nodes act at the replay's start and end, not at their place inside it (documented). */
static void replay_host_side(tw_graph_exec *x, tw_stream *s, bool before)
{
    for (uint32_t i = 0; i < x->node_count; i++) {
        const tw_node_params *p = &x->nodes[i].params;
        if (before && p->type == TW_NODE_TYPE_MEMCPY)
            tw_mem_copy_data(p->dst, p->src, p->bytes);
        else if (before && p->type == TW_NODE_TYPE_MEMSET && p->elem == 1)
            for (uint64_t row = 0; row < p->height; row++)
                tw_mem_set_data((char *)p->dst + row * p->pitch, (int)p->value, p->width);
        else if (before && p->type == TW_NODE_TYPE_WAIT_EVENT)
            tw_stream_wait_event(s, p->event);
        else if (!before && p->type == TW_NODE_TYPE_EVENT_RECORD)
            tw_event_record(p->event, s);
    }
}

int tw_graph_launch(tw_graph_exec *x, tw_stream *s)
{
    bool capturing = tw_stream_capture_graph(s) != NULL;
    if (!capturing)
        replay_host_side(x, s, true);
    pthread_mutex_lock(&tw_timeline_lock);
    if (capturing) {
        /* a graph launched inside a capture: its nodes join the capturing graph in order */
        tw_graph *g = tw_stream_capture_graph(s);
        uint32_t base_deps[16];
        uint32_t base_count = 0;
        tw_stream_capture_tail(s, base_deps, &base_count);
        uint32_t first = g->node_count;
        for (uint32_t i = 0; i < x->node_count; i++) {
            const tw_graph_node *node = &x->nodes[i];
            uint32_t deps[16];
            uint32_t count = 0;
            if (node->dep_count == 0) {
                memcpy(deps, base_deps, base_count * sizeof *deps);
                count = base_count;
            }
            for (uint32_t d = 0; d < node->dep_count && count < 16; d++)
                deps[count++] = first + node->deps[d];
            uint32_t at = tw_graph_add_node_locked(g, node->kind, node->slot, deps, count);
            g->nodes[at].host_fn = node->host_fn;
            g->nodes[at].host_data = node->host_data;
            g->nodes[at].coll_template = node->coll_template;
            g->nodes[at].coll_bind = node->coll_bind;
            g->nodes[at].params = node->params;
        }
        if (x->node_count > 0) {
            uint32_t last = g->node_count - 1;
            tw_stream_capture_set_tail(s, &last, 1);
        }
        pthread_mutex_unlock(&tw_timeline_lock);
        return TW_OK;
    }
    pthread_mutex_unlock(&tw_timeline_lock);
    /* every replay of a collective node is a new collective (the next on its communicator): bind
     * them in node order before the replay is queued, outside the lock (binding opens entries) */
    tw_coll_launch **colls = NULL;
    if (x->coll_node_count > 0) {
        colls = calloc(x->node_count, sizeof *colls);
        if (colls == NULL)
            abort();
        for (uint32_t i = 0; i < x->node_count; i++)
            if (x->nodes[i].kind == TW_NODE_COLL)
                colls[i] = x->nodes[i].coll_bind(x->nodes[i].coll_template);
    }
    pthread_mutex_lock(&tw_timeline_lock);
    tw_submit_graph_locked(s, x, colls);
    pthread_mutex_unlock(&tw_timeline_lock);
    replay_host_side(x, s, false);
    if (colls != NULL)
        tw_timeline_flush();   /* post arrivals now: a peer may be waiting */
    return TW_OK;
}

/* ---- node handles: cudaGraphNode_t values are stable small objects naming (graph, index) ---- */

#define NODE_REF_MAGIC 0x4e4f4445u
struct tw_node_ref {
    uint32_t magic;
    uint32_t index;
    tw_graph *graph;
};

/* The handle of node `index` of g, made on first request (lock held). */
void *tw_graph_node_handle_locked(tw_graph *g, uint32_t index)
{
    if (index >= g->node_count)
        return NULL;
    if (index >= g->node_ref_capacity) {
        uint32_t capacity = g->node_ref_capacity ? g->node_ref_capacity : 64;
        while (capacity <= index)
            capacity *= 2;
        struct tw_node_ref **grown = realloc(g->node_refs, capacity * sizeof *grown);
        if (grown == NULL)
            return NULL;
        memset(grown + g->node_ref_capacity, 0, (capacity - g->node_ref_capacity) * sizeof *grown);
        g->node_refs = grown;
        g->node_ref_capacity = capacity;
    }
    if (g->node_refs[index] == NULL) {
        struct tw_node_ref *ref = malloc(sizeof *ref);
        if (ref == NULL)
            return NULL;
        *ref = (struct tw_node_ref){NODE_REF_MAGIC, index, g};
        g->node_refs[index] = ref;
    }
    return g->node_refs[index];
}

void *tw_graph_node_handle(tw_graph *g, uint32_t index)
{
    pthread_mutex_lock(&tw_timeline_lock);
    void *h = tw_graph_node_handle_locked(g, index);
    pthread_mutex_unlock(&tw_timeline_lock);
    return h;
}

/* The (graph, index) a handle names; false for NULL or a handle of a destroyed graph. */
bool tw_graph_node_lookup(const void *handle, tw_graph **g, uint32_t *index)
{
    const struct tw_node_ref *ref = handle;
    if (ref == NULL || ref->magic != NODE_REF_MAGIC || ref->graph == NULL)
        return false;
    *g = ref->graph;
    *index = ref->index;
    return true;
}

static void free_node_refs(tw_graph *g)
{
    for (uint32_t i = 0; i < g->node_ref_capacity; i++) {
        if (g->node_refs[i] != NULL) {
            g->node_refs[i]->magic = 0;
            free(g->node_refs[i]);
        }
    }
    free(g->node_refs);
}

/* The capture dependencies of s as node handles (valid until the next call on this thread). */
size_t tw_capture_dependencies(tw_stream *s, void *const **out_handles)
{
    static __thread void *handles[16];
    uint32_t deps[16];
    uint32_t count = 0;
    pthread_mutex_lock(&tw_timeline_lock);
    tw_graph *g = tw_stream_capture_graph(s);
    if (g != NULL && tw_stream_capture_tail(s, deps, &count))
        for (uint32_t i = 0; i < count; i++)
            handles[i] = tw_graph_node_handle_locked(g, deps[i]);
    pthread_mutex_unlock(&tw_timeline_lock);
    *out_handles = handles;
    return count;
}
