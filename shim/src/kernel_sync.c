/* Kernels that synchronise GPUs through peers' memory (vLLM's custom all-reduce, FlashInfer's
 * and TensorRT-LLM's IPC all-reduces, torch symmetric memory): a kernel whose arguments point
 * into memory other processes own (opened from their cudaIpc handles, or VMM handles imported
 * from their shareable fds; directly or through a table of pointers, launch.c peer_owners) spins
 * on flags those processes' kernels write. On the timeline it is a collective among the owners of that memory and this
 * process: it starts when every one of them has reached its own launch of the same kind, and
 * lasts its predicted duration. Launches are matched by order, per set of participants, as
 * the kernels themselves match (each waits for the peers' flags of the same round).
 *
 * The participants form a communicator of their own in the collectives page (keyed by the
 * sorted pids); its n-th launch in each process meets the n-th launch in the others. A launch
 * captured into a CUDA graph is matched at every replay. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tw_core.h"

#define MAX_PARTICIPANTS TW_COLL_MAX_RANKS
#define MAX_GROUPS 64

typedef struct peer_group {
    uint64_t key;
    int index;                  /* this process's place among the sorted pids */
    int count;
    uint64_t next_seq;
} peer_group;

static peer_group groups[MAX_GROUPS];
static int group_count;
static pthread_mutex_t groups_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct kernel_template {
    peer_group *group;
    tw_desc desc;               /* the kernel's descriptor: its duration, its name */
    uint64_t name_hash;         /* launches of different kernels in one round are a mismatch */
} kernel_template;

static int compare_pids(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static uint64_t hash_words(const void *data, size_t bytes)
{
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ULL ^ 0x6b65726e656cULL;
    for (size_t i = 0; i < bytes; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h ? h : 1;
}

/* The group of {this process} + peers, joined on first use. */
static peer_group *group_of(const int32_t *peer_pids, int peer_count, int device)
{
    int32_t pids[MAX_PARTICIPANTS];
    int n = 0;
    pids[n++] = getpid();
    for (int i = 0; i < peer_count && n < MAX_PARTICIPANTS; i++) {
        bool seen = false;
        for (int k = 0; k < n; k++)
            seen |= pids[k] == peer_pids[i];
        if (!seen)
            pids[n++] = peer_pids[i];
    }
    qsort(pids, (size_t)n, sizeof pids[0], compare_pids);
    uint64_t key = hash_words(pids, (size_t)n * sizeof pids[0]);
    pthread_mutex_lock(&groups_lock);
    peer_group *g = NULL;
    for (int i = 0; i < group_count && g == NULL; i++)
        if (groups[i].key == key)
            g = &groups[i];
    if (g == NULL && group_count < MAX_GROUPS) {
        int index = 0;
        while (pids[index] != getpid())
            index++;
        char why[200];
        if (tw_coll_comm_join(key, n, index, device, why, sizeof why) == TW_OK) {
            g = &groups[group_count++];
            *g = (peer_group){.key = key, .index = index, .count = n};
        } else {
            TW_ERROR("kernel synchronised through peers' memory: %s", why);
        }
    }
    pthread_mutex_unlock(&groups_lock);
    return g;
}

static tw_coll_launch *bind_kernel(const void *coll_template)
{
    const kernel_template *t = coll_template;
    tw_coll_op op = {.comm_key = t->group->key, .op_key = __atomic_add_fetch(&t->group->next_seq, 1, __ATOMIC_RELAXED),
                     .kind = TW_COLL_KERNEL, .count = t->name_hash, .expected = (uint32_t)t->group->count,
                     .index = t->group->index, .kernel_name = tw_name_get(t->desc.name_id)};
    tw_coll_ref ref;
    if (tw_coll_open(&op, &ref) != TW_OK) {
        TW_ERROR("kernel synchronised through peers' memory: the run's table of collectives is full");
        return NULL;
    }
    tw_coll_deposit(&ref, 0);
    tw_coll_launch *l = tw_coll_launch_new(1, t->desc.name_id);
    tw_coll_launch_set(l, 0, &ref, &t->desc);
    return l;
}

void tw_submit_peer_kernel(tw_stream *s, const tw_desc *desc, const int32_t *peer_pids, int peer_count)
{
    peer_group *g = group_of(peer_pids, peer_count, tw_stream_device(s));
    kernel_template *t = malloc(sizeof *t);
    if (g == NULL || t == NULL) {
        free(t);
        tw_submit(s, desc);   /* counted as a plain kernel; the error above says why */
        return;
    }
    const char *name = tw_name_get(desc->name_id);
    *t = (kernel_template){.group = g, .desc = *desc, .name_hash = hash_words(name, strlen(name))};
    if (tw_capture_collective(s, t, bind_kernel))
        return;   /* the template lives as long as the graph */
    tw_coll_launch *l = bind_kernel(t);
    free(t);
    if (l == NULL)
        tw_submit(s, desc);
    else
        tw_submit_collective(s, l);
}
