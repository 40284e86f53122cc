/* Node-level graph construction (cudaGraphAdd*Node, node queries, edges, kernel-node
 * parameters, cudaGraphExecUpdate, a DOT dump). A node made here holds what it was given
 * (tw_node_params) beside its prediction slot: kernel nodes get their slot by launching the
 * kernel into a scratch capture (the launch path builds the descriptor), memcpy and memset
 * nodes move their bytes at each replay (graph.c), child graphs are copied in, followed by an
 * empty node that stands for them. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timeline_internal.h"


static pthread_mutex_t scratch_lock = PTHREAD_MUTEX_INITIALIZER;
static tw_stream *scratch_streams[TW_TIMELINE_DEVICES];

/* The prediction slot of one launch of p's kernel, made by capturing the launch into a scratch
 * graph on the current device (no op is queued). NULL when the launch is invalid. */
static tw_prediction_slot *kernel_slot(const tw_node_params *p)
{
    int device = tw_device_current();
    if (p->kernel == NULL || device < 0 || device >= TW_TIMELINE_DEVICES)
        return NULL;
    pthread_mutex_lock(&scratch_lock);
    if (scratch_streams[device] == NULL)
        scratch_streams[device] = tw_stream_create(device, TW_STREAM_NON_BLOCKING, 0);
    tw_stream *s = scratch_streams[device];
    tw_graph *scratch = tw_graph_create();
    tw_prediction_slot *slot = NULL;
    if (s != NULL && scratch != NULL) {
        pthread_mutex_lock(&tw_timeline_lock);
        tw_stream_capture_set(s, scratch, TW_CAPTURE_RELAXED, 0);
        pthread_mutex_unlock(&tw_timeline_lock);
        int status = tw_launch_kernel(p->kernel, p->grid, p->block, p->smem, p->args, s, 0);
        pthread_mutex_lock(&tw_timeline_lock);
        if (status == 0 && scratch->node_count == 1)
            slot = scratch->nodes[0].slot;
        tw_stream_capture_set(s, NULL, 0, 0);
        pthread_mutex_unlock(&tw_timeline_lock);
    }
    tw_graph_destroy(scratch);
    pthread_mutex_unlock(&scratch_lock);
    return slot;
}

/* Copies are named by direction as the timeline names them (TW_COPY_* order). */
static const char *const copy_names[8] = {"memcpy", "memcpy HtoD (pageable)", "memcpy HtoD (pinned)",
                                          "memcpy DtoH (pageable)", "memcpy DtoH (pinned)", "memcpy DtoD",
                                          "memcpy HtoH", "memcpy PtoP"};

static tw_prediction_slot *copy_slot(const tw_node_params *p, bool memset_op)
{
    tw_desc desc;
    memset(&desc, 0, sizeof desc);
    desc.device = (uint32_t)tw_device_current();
    if (memset_op) {
        desc.kind = TW_OP_MEMSET;
        desc.bytes = p->width * p->elem * p->height;
        desc.name_id = tw_name_intern("memset");
    } else {
        int kind = tw_mem_copy_kind(p->dst, p->src);
        desc.kind = TW_OP_MEMCPY;
        desc.dims[0] = kind;
        desc.bytes = p->bytes;
        desc.name_id = tw_name_intern(copy_names[kind >= 1 && kind <= 7 ? kind : 0]);
    }
    pthread_mutex_lock(&tw_timeline_lock);
    tw_prediction_slot *slot = tw_predict_slot_locked(&desc);
    pthread_mutex_unlock(&tw_timeline_lock);
    return slot;
}

/* The slot and timeline kind a node of these parameters needs (lock not held). */
static int node_slot(const tw_node_params *p, uint32_t *kind, tw_prediction_slot **slot)
{
    *slot = NULL;
    *kind = TW_NODE_EMPTY;
    switch (p->type) {
    case TW_NODE_TYPE_KERNEL:
        *kind = TW_NODE_OP;
        *slot = kernel_slot(p);
        return *slot != NULL ? TW_OK : TW_ERR_INVALID;
    case TW_NODE_TYPE_MEMCPY:
        if (p->bytes != 0 && (p->dst == NULL || p->src == NULL))
            return TW_ERR_INVALID;
        *kind = TW_NODE_OP;
        *slot = copy_slot(p, false);
        return TW_OK;
    case TW_NODE_TYPE_MEMSET:
        if (p->dst == NULL || (p->elem != 1 && p->elem != 2 && p->elem != 4) ||
            (p->height > 1 && p->pitch < p->width * p->elem))
            return TW_ERR_INVALID;
        *kind = TW_NODE_OP;
        *slot = copy_slot(p, true);
        return TW_OK;
    case TW_NODE_TYPE_HOST:
        *kind = TW_NODE_HOST_FUNC;
        return p->fn != NULL ? TW_OK : TW_ERR_INVALID;
    case TW_NODE_TYPE_EMPTY:
    case TW_NODE_TYPE_GRAPH:
        return TW_OK;
    case TW_NODE_TYPE_WAIT_EVENT:
    case TW_NODE_TYPE_EVENT_RECORD:
        return p->event != NULL ? TW_OK : TW_ERR_INVALID;
    default:
        return TW_ERR_INVALID;
    }
}

/* The indexes of dependency handles, all nodes of g (lock held). */
static int dep_indexes(tw_graph *g, void *const *deps, size_t count, uint32_t *out)
{
    for (size_t i = 0; i < count; i++) {
        tw_graph *owner;
        if (deps == NULL || !tw_graph_node_lookup(deps[i], &owner, &out[i]) || owner != g)
            return TW_ERR_INVALID;
    }
    return TW_OK;
}

/* Copy the child's nodes into g after `deps`, then an empty node after all of them (lock held);
 * returns that node's index. */
static uint32_t add_child_locked(tw_graph *g, const tw_graph *child, const uint32_t *deps, uint32_t dep_count)
{
    uint32_t first = g->node_count;
    uint32_t n = child->node_count;
    for (uint32_t i = 0; i < n; i++) {
        const tw_graph_node *c = &child->nodes[i];
        uint32_t count = c->dep_count ? c->dep_count : dep_count;
        uint32_t *remapped = malloc((count ? count : 1) * sizeof *remapped);
        if (remapped == NULL)
            abort();
        for (uint32_t d = 0; d < count; d++)
            remapped[d] = c->dep_count ? first + c->deps[d] : deps[d];
        uint32_t at = tw_graph_add_node_locked(g, c->kind, c->slot, remapped, count);
        free(remapped);
        g->nodes[at].host_fn = c->host_fn;
        g->nodes[at].host_data = c->host_data;
        g->nodes[at].params = c->params;
    }
    uint32_t *all = malloc((n ? n : 1) * sizeof *all);
    if (all == NULL)
        abort();
    for (uint32_t i = 0; i < n; i++)
        all[i] = first + i;
    uint32_t at = tw_graph_add_node_locked(g, TW_NODE_EMPTY, NULL, n ? all : deps, n ? n : dep_count);
    free(all);
    return at;
}

int tw_graph_node_add(tw_graph *g, const tw_node_params *p, void *const *deps, size_t dep_count, void **out_node)
{
    if (g == NULL || p == NULL || out_node == NULL || (dep_count > 0 && deps == NULL) || dep_count > UINT32_MAX)
        return TW_ERR_INVALID;
    if (p->type == TW_NODE_TYPE_GRAPH && (p->child == NULL || p->child == g))
        return TW_ERR_INVALID;
    uint32_t kind;
    tw_prediction_slot *slot;
    int status = node_slot(p, &kind, &slot);
    if (status != TW_OK)
        return status;
    uint32_t *indexes = malloc((dep_count ? dep_count : 1) * sizeof *indexes);
    if (indexes == NULL)
        return TW_ERR_NOMEM;
    pthread_mutex_lock(&tw_timeline_lock);
    status = dep_indexes(g, deps, dep_count, indexes);
    if (status == TW_OK) {
        uint32_t at = p->type == TW_NODE_TYPE_GRAPH ? add_child_locked(g, p->child, indexes, (uint32_t)dep_count)
                                                    : tw_graph_add_node_locked(g, kind, slot, indexes,
                                                                               (uint32_t)dep_count);
        g->nodes[at].params = *p;
        g->nodes[at].params.args = NULL; /* the caller's argument memory is not ours to keep */
        g->nodes[at].host_fn = p->type == TW_NODE_TYPE_HOST ? p->fn : NULL;
        g->nodes[at].host_data = p->type == TW_NODE_TYPE_HOST ? p->data : NULL;
        *out_node = tw_graph_node_handle_locked(g, at);
    }
    pthread_mutex_unlock(&tw_timeline_lock);
    free(indexes);
    return status;
}

/* A captured node's type follows from its op. */
static int captured_type(const tw_graph_node *node)
{
    if (node->kind == TW_NODE_HOST_FUNC)
        return TW_NODE_TYPE_HOST;
    if (node->kind != TW_NODE_OP || node->slot == NULL)
        return TW_NODE_TYPE_EMPTY;
    switch (node->slot->desc.kind) {
    case TW_OP_MEMCPY: return TW_NODE_TYPE_MEMCPY;
    case TW_OP_MEMSET: return TW_NODE_TYPE_MEMSET;
    default: return TW_NODE_TYPE_KERNEL;
    }
}

int tw_graph_node_get(const void *handle, tw_node_params *out)
{
    tw_graph *g;
    uint32_t index;
    if (out == NULL || !tw_graph_node_lookup(handle, &g, &index))
        return TW_ERR_INVALID;
    pthread_mutex_lock(&tw_timeline_lock);
    const tw_graph_node *node = &g->nodes[index];
    *out = node->params;
    if (out->type == TW_NODE_TYPE_CAPTURED) {
        out->type = captured_type(node);
        if (node->slot != NULL) { /* what the descriptor kept of a captured launch */
            const tw_desc *d = &node->slot->desc;
            out->grid = (tw_dim3){d->grid[0], d->grid[1], d->grid[2]};
            out->block = (tw_dim3){d->block[0], d->block[1], d->block[2]};
            out->smem = d->smem_bytes;
            out->bytes = d->bytes;
        }
        out->fn = node->host_fn;
        out->data = node->host_data;
    }
    pthread_mutex_unlock(&tw_timeline_lock);
    return TW_OK;
}

/* New parameters for a node of the same type (kernel, memcpy, memset, host). */
int tw_graph_node_set(void *handle, const tw_node_params *p)
{
    tw_graph *g;
    uint32_t index;
    tw_node_params current;
    if (p == NULL || tw_graph_node_get(handle, &current) != TW_OK || !tw_graph_node_lookup(handle, &g, &index))
        return TW_ERR_INVALID;
    if (p->type != current.type)
        return TW_ERR_INVALID;
    uint32_t kind;
    tw_prediction_slot *slot;
    int status = node_slot(p, &kind, &slot);
    if (status != TW_OK)
        return status;
    pthread_mutex_lock(&tw_timeline_lock);
    tw_graph_node *node = &g->nodes[index];
    node->slot = slot;
    node->params = *p;
    node->params.args = NULL;
    if (p->type == TW_NODE_TYPE_HOST) {
        node->host_fn = p->fn;
        node->host_data = p->data;
    }
    pthread_mutex_unlock(&tw_timeline_lock);
    return TW_OK;
}

/* The node's dependencies, or (dependents) the nodes that depend on it. With out NULL, the
 * count only; else up to *count handles and *count set to how many were written. */
int tw_graph_node_edges(const void *handle, bool dependents, void **out, size_t *count)
{
    tw_graph *g;
    uint32_t index;
    if (count == NULL || !tw_graph_node_lookup(handle, &g, &index))
        return TW_ERR_INVALID;
    pthread_mutex_lock(&tw_timeline_lock);
    size_t found = 0;
    if (!dependents) {
        const tw_graph_node *node = &g->nodes[index];
        for (uint32_t d = 0; d < node->dep_count; d++, found++)
            if (out != NULL && found < *count)
                out[found] = tw_graph_node_handle_locked(g, node->deps[d]);
    } else {
        for (uint32_t i = 0; i < g->node_count; i++)
            for (uint32_t d = 0; d < g->nodes[i].dep_count; d++)
                if (g->nodes[i].deps[d] == index) {
                    if (out != NULL && found < *count)
                        out[found] = tw_graph_node_handle_locked(g, i);
                    found++;
                }
    }
    pthread_mutex_unlock(&tw_timeline_lock);
    if (out != NULL && found > *count)
        found = *count;
    *count = found;
    return TW_OK;
}

/* Whether `target` is reachable from `from` through dependencies (lock held). */
static bool depends_on(const tw_graph *g, uint32_t from, uint32_t target, uint8_t *seen)
{
    if (from == target)
        return true;
    if (seen[from])
        return false;
    seen[from] = 1;
    for (uint32_t d = 0; d < g->nodes[from].dep_count; d++)
        if (depends_on(g, g->nodes[from].deps[d], target, seen))
            return true;
    return false;
}

/* Edges from[i] -> to[i]: to[i] runs after from[i]. An edge that would close a cycle, or that
 * exists already, is an invalid value. */
int tw_graph_add_dependencies(tw_graph *g, void *const *from, void *const *to, size_t count)
{
    if (g == NULL || (count > 0 && (from == NULL || to == NULL)))
        return TW_ERR_INVALID;
    int status = TW_OK;
    pthread_mutex_lock(&tw_timeline_lock);
    uint8_t *seen = calloc(g->node_count ? g->node_count : 1, 1);
    for (size_t i = 0; i < count && status == TW_OK && seen != NULL; i++) {
        uint32_t a, b;
        if (dep_indexes(g, &from[i], 1, &a) != TW_OK || dep_indexes(g, &to[i], 1, &b) != TW_OK || a == b) {
            status = TW_ERR_INVALID;
            break;
        }
        memset(seen, 0, g->node_count);
        tw_graph_node *node = &g->nodes[b];
        bool exists = false;
        for (uint32_t d = 0; d < node->dep_count; d++)
            exists |= node->deps[d] == a;
        if (exists || depends_on(g, a, b, seen)) {
            status = TW_ERR_INVALID;
            break;
        }
        uint32_t *grown = realloc(node->deps, (node->dep_count + 1) * sizeof *grown);
        if (grown == NULL) {
            status = TW_ERR_NOMEM;
            break;
        }
        grown[node->dep_count++] = a;
        node->deps = grown;
    }
    if (seen == NULL)
        status = TW_ERR_NOMEM;
    pthread_mutex_unlock(&tw_timeline_lock);
    free(seen);
    return status;
}

/* New parameters for the instantiated copy of a graph node (cudaGraphExecKernelNodeSetParams). */
int tw_graph_exec_node_set(tw_graph_exec *x, const void *handle, const tw_node_params *p)
{
    tw_graph *g;
    uint32_t index;
    tw_node_params current;
    if (x == NULL || p == NULL || tw_graph_node_get(handle, &current) != TW_OK ||
        !tw_graph_node_lookup(handle, &g, &index) || g->id != x->graph_id || index >= x->node_count ||
        p->type != current.type)
        return TW_ERR_INVALID;
    uint32_t kind;
    tw_prediction_slot *slot;
    int status = node_slot(p, &kind, &slot);
    if (status != TW_OK)
        return status;
    pthread_mutex_lock(&tw_timeline_lock);
    tw_graph_node *node = &x->nodes[x->exec_index[index]];
    node->slot = slot;
    node->params = *p;
    node->params.args = NULL;
    if (p->type == TW_NODE_TYPE_HOST) {
        node->host_fn = p->fn;
        node->host_data = p->data;
    }
    pthread_mutex_unlock(&tw_timeline_lock);
    return TW_OK;
}

/* cudaGraphExecUpdate: g must have x's topology (same nodes, types and edges, index for index);
 * then x takes g's parameters. Otherwise *error_node names the first node that differs. */
int tw_graph_exec_update(tw_graph_exec *x, tw_graph *g, void **error_node)
{
    if (x == NULL || g == NULL)
        return TW_ERR_INVALID;
    int status = TW_OK;
    pthread_mutex_lock(&tw_timeline_lock);
    *error_node = NULL;
    if (g->node_count != x->node_count) {
        status = TW_ERR_NOT_FOUND;
    }
    for (uint32_t i = 0; i < g->node_count && status == TW_OK; i++) {
        const tw_graph_node *n = &g->nodes[i], *old = &x->nodes[x->exec_index[i]];
        bool same = n->kind == old->kind && captured_type(n) == captured_type(old) &&
                    n->params.type == old->params.type && n->dep_count == old->dep_count;
        for (uint32_t d = 0; same && d < n->dep_count; d++)
            same = x->exec_index[n->deps[d]] == old->deps[d];
        if (!same) {
            status = TW_ERR_NOT_FOUND;
            *error_node = tw_graph_node_handle_locked(g, i);
        }
    }
    for (uint32_t i = 0; i < g->node_count && status == TW_OK; i++) {
        tw_graph_node *old = &x->nodes[x->exec_index[i]];
        old->slot = g->nodes[i].slot;
        old->params = g->nodes[i].params;
        old->host_fn = g->nodes[i].host_fn;
        old->host_data = g->nodes[i].host_data;
    }
    if (status == TW_OK)
        x->graph_id = g->id;
    pthread_mutex_unlock(&tw_timeline_lock);
    return status;
}

static const char *type_label(int type)
{
    static const char *const labels[] = {"captured", "kernel", "memcpy", "memset", "host", "graph",
                                         "empty", "wait_event", "event_record"};
    return type >= 0 && type <= TW_NODE_TYPE_EVENT_RECORD ? labels[type] : "node";
}

/* cudaGraphDebugDotPrint: the graph as DOT, one vertex per node labelled with its type and op. */
int tw_graph_dot_print(tw_graph *g, const char *path)
{
    if (g == NULL || path == NULL)
        return TW_ERR_INVALID;
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return TW_ERR_NOT_FOUND;
    pthread_mutex_lock(&tw_timeline_lock);
    fprintf(f, "digraph timewarp_graph_%u {\n", g->id);
    for (uint32_t i = 0; i < g->node_count; i++) {
        const tw_graph_node *n = &g->nodes[i];
        int type = n->params.type ? n->params.type : captured_type(n);
        const char *name = n->slot != NULL ? tw_name_get(n->slot->desc.name_id) : NULL;
        fprintf(f, "  n%u [label=\"%u %s%s%s\"];\n", i, i, type_label(type), name ? "\\n" : "",
                name ? name : "");
        for (uint32_t d = 0; d < n->dep_count; d++)
            fprintf(f, "  n%u -> n%u;\n", n->deps[d], i);
    }
    fprintf(f, "}\n");
    pthread_mutex_unlock(&tw_timeline_lock);
    return fclose(f) == 0 ? TW_OK : TW_ERR_NOT_FOUND;
}
