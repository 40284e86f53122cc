/* Shared between timeline.c, graph.c and predict.c: the op queue entry and graph nodes. */
#ifndef TW_TIMELINE_INTERNAL_H
#define TW_TIMELINE_INTERNAL_H

#include <pthread.h>

#include "tw_core.h"

#define TW_TIMELINE_DEVICES 64   /* device ordinals a process's timeline keeps state for */

struct tw_prediction_slot {
    tw_desc desc;
    uint64_t hash;
    int64_t duration_ns;
    uint32_t model;          /* enum tw_model */
    uint32_t contention;     /* records.h tw_prediction.contention */
    uint32_t ready;          /* 0 = pending in the next batch */
    struct tw_prediction_slot *next_pending;
};

enum tw_node_kind { TW_NODE_OP = 1, TW_NODE_EMPTY = 2, TW_NODE_HOST_FUNC = 3, TW_NODE_COLL = 4 };

typedef struct tw_graph_node {
    uint32_t kind;           /* enum tw_node_kind */
    uint32_t dep_count;
    uint32_t *deps;          /* indexes of earlier nodes */
    tw_prediction_slot *slot;
    void (*host_fn)(void *);
    void *host_data;
    /* a captured collective: every replay binds it anew (next sequence numbers, staged data) */
    const void *coll_template;
    tw_coll_launch *(*coll_bind)(const void *coll_template);
    tw_node_params params;   /* graph_nodes.c: what a node made by the node API was given */
} tw_graph_node;

#define TW_MAX_CAPTURE_STREAMS 64
struct tw_graph {
    tw_graph_node *nodes;
    uint32_t node_count;
    uint32_t node_capacity;
    uint32_t id;
    tw_stream *capture_streams[TW_MAX_CAPTURE_STREAMS]; /* origin first, then joined ones */
    uint32_t capture_stream_count;
    /* graph.c: the capture in progress (mode, who began it, whether an invalid call voided it)
     * and stable node handles (cudaGraphNode_t), made on first request */
    int capture_mode;
    uint32_t capture_tid;
    bool capture_invalidated;
    bool capture_into_existing;  /* cudaStreamBeginCaptureToGraph: the graph is the caller's */
    struct tw_node_ref **node_refs;
    uint32_t node_ref_capacity;
};

struct tw_graph_exec {
    tw_graph_node *nodes;    /* frozen copy */
    uint32_t node_count;
    uint32_t coll_node_count;
    uint32_t graph_id;
    int64_t *node_end_ns;    /* scratch for one replay */
    uint32_t *exec_index;    /* graph.c: the graph's node i is nodes[exec_index[i]] (topological order) */
};

/* The single lock of the timeline; held by tw_submit, launches and flushes. */
extern pthread_mutex_t tw_timeline_lock;

/* predict.c (callers hold tw_timeline_lock) */
tw_prediction_slot *tw_predict_slot_locked(const tw_desc *desc);
void tw_predict_resolve_locked(void);

/* graph.c: append a node while capturing (lock held); returns its index. */
uint32_t tw_graph_add_node_locked(tw_graph *g, uint32_t kind, tw_prediction_slot *slot,
                                  const uint32_t *deps, uint32_t dep_count);

/* timeline.c: queue a whole graph replay (lock held); colls: the launch of each collective
 * node (indexed by node), NULL when the graph has none. */
uint64_t tw_submit_graph_locked(tw_stream *s, tw_graph_exec *x, tw_coll_launch **colls);
/* timeline.c: submit with a known prediction slot (launch path; lock held). */
uint64_t tw_submit_slot_locked(tw_stream *s, tw_prediction_slot *slot, uint32_t flags_extra);

/* graph.c: the stable handle of node `index` of g (lock held) */
void *tw_graph_node_handle_locked(tw_graph *g, uint32_t index);

/* graph.c: whether g is a capture in progress (lock held) */
bool tw_capture_active_locked(const tw_graph *g);

/* capture bookkeeping kept on streams and events (timeline.c), used by graph.c */
void tw_stream_capture_set(tw_stream *s, tw_graph *g, int mode, uint64_t capture_id);
bool tw_stream_capture_tail(const tw_stream *s, uint32_t *deps, uint32_t *dep_count);
void tw_stream_capture_set_tail(tw_stream *s, const uint32_t *deps, uint32_t dep_count);

/* contention.c: kernels beside collectives on the same device (under tw_timeline_lock) */
void tw_contention_collective(int device, int64_t begin_ns, int64_t end_ns, uint32_t contention);
void tw_contention_pending(int device, int64_t arrival_ns, uint64_t pass);
bool tw_contention_must_wait(int device, int64_t end_ns, uint64_t pass);
int64_t tw_contention_end(int device, int64_t start_ns, int64_t duration_ns, uint32_t contention);

#endif
