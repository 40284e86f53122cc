/* Stream capture and CUDA graphs: while a stream captures, its ops (kernels, copies, library
 * calls) become nodes with dependencies from the capturing streams' tails; instantiate
 * freezes them; a launch replays every node on the launching stream (timeline.c). */
#include <stdlib.h>
#include <string.h>

#include "timeline_internal.h"

static uint32_t next_graph_id = 1;
static uint64_t next_capture_id = 1;

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

void tw_graph_destroy(tw_graph *g)
{
    if (g == NULL)
        return;
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
    } else {
        tw_graph *g = tw_graph_create();
        if (g == NULL) {
            status = TW_ERR_NOMEM;
        } else {
            g->capture_streams[g->capture_stream_count++] = s;
            tw_stream_capture_set(s, g, mode, __atomic_fetch_add(&next_capture_id, 1, __ATOMIC_RELAXED));
        }
    }
    pthread_mutex_unlock(&tw_timeline_lock);
    return status;
}

int tw_capture_end(tw_stream *s, tw_graph **out_graph)
{
    pthread_mutex_lock(&tw_timeline_lock);
    tw_graph *g = tw_stream_capture_graph(s);
    int status = TW_OK;
    if (g == NULL || g->capture_streams[0] != s) {
        status = TW_ERR_INVALID;
    } else {
        for (uint32_t i = 0; i < g->capture_stream_count; i++)
            tw_stream_capture_set(g->capture_streams[i], NULL, 0, 0);
        g->capture_stream_count = 0;
        *out_graph = g;
    }
    pthread_mutex_unlock(&tw_timeline_lock);
    return status;
}

int tw_graph_instantiate(tw_graph *g, tw_graph_exec **out_exec)
{
    tw_graph_exec *x = calloc(1, sizeof *x);
    if (x == NULL)
        return TW_ERR_NOMEM;
    pthread_mutex_lock(&tw_timeline_lock);
    x->node_count = g->node_count;
    x->graph_id = g->id;
    x->nodes = calloc(g->node_count ? g->node_count : 1, sizeof *x->nodes);
    x->node_end_ns = calloc(g->node_count ? g->node_count : 1, sizeof *x->node_end_ns);
    if (x->nodes == NULL || x->node_end_ns == NULL)
        abort();
    for (uint32_t i = 0; i < g->node_count; i++) {
        x->nodes[i] = g->nodes[i];
        x->nodes[i].deps = NULL;
        x->coll_node_count += g->nodes[i].kind == TW_NODE_COLL;
        if (g->nodes[i].dep_count > 0) {
            x->nodes[i].deps = malloc(g->nodes[i].dep_count * sizeof(uint32_t));
            if (x->nodes[i].deps == NULL)
                abort();
            memcpy(x->nodes[i].deps, g->nodes[i].deps, g->nodes[i].dep_count * sizeof(uint32_t));
        }
    }
    pthread_mutex_unlock(&tw_timeline_lock);
    *out_exec = x;
    return TW_OK;
}

void tw_graph_exec_destroy(tw_graph_exec *x)
{
    /* a queued replay may still reference it; graphs are few, so it is kept */
    (void)x;
}

int tw_graph_launch(tw_graph_exec *x, tw_stream *s)
{
    pthread_mutex_lock(&tw_timeline_lock);
    if (tw_stream_capture_graph(s) != NULL) {
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
    if (colls != NULL)
        tw_timeline_flush();   /* post arrivals now: a peer may be waiting */
    return TW_OK;
}
