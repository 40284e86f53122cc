/* The data of collectives whose buffers are host-backed (small tensors: torch.distributed's
 * barrier and object collectives, vLLM's control values): every participant staged its send
 * bytes in the shared staging area when it issued the op (api_nccl.c); the received bytes are
 * computed here as NCCL would and written into this process's receive buffer. That happens
 * when the op completes on the timeline, or earlier when the program reads or overwrites the
 * receive buffer (a copy, a memset, the next collective on it): such an access first waits
 * until every participant has staged its data. Kernels never run, so nothing else reads it. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tw_core.h"

#define MAX_PENDING 1024
#define NCCL_SUM 0
#define NCCL_AVG 4
#define NCCL_STATIC_OPS 5      /* ncclNumOps: higher ids are pre-multiplied sums */

static pthread_mutex_t pending_lock = PTHREAD_MUTEX_INITIALIZER;
static tw_coll_result pending[MAX_PENDING];
static int pending_count;
static int pending_any;       /* read without the lock on every copy: a hint, confirmed under it */

int64_t tw_coll_deposit_aux(bool has_data, double scale)
{
    float narrow = (float)scale;
    uint32_t bits;
    memcpy(&bits, &narrow, sizeof bits);
    return (int64_t)((uint64_t)bits << 32 | (has_data ? 1u : 0u));
}

static bool aux_has_data(int64_t aux)
{
    return (aux & 1) != 0;
}

static double aux_scale(int64_t aux)
{
    uint32_t bits = (uint32_t)((uint64_t)aux >> 32);
    float narrow;
    memcpy(&narrow, &bits, sizeof narrow);
    return narrow;
}

void tw_coll_expect_result(const tw_coll_result *result)
{
    if (result->recv == NULL || result->recv_bytes == 0)
        return;
    tw_alloc a;
    if (tw_mem_lookup(result->recv, &a) && !a.backed)
        return;   /* no bytes exist to write */
    pthread_mutex_lock(&pending_lock);
    if (pending_count < MAX_PENDING) {
        pending[pending_count++] = *result;
        __atomic_store_n(&pending_any, 1, __ATOMIC_RELEASE);
    } else {
        TW_WARN("collectives: over %d results pending; the data of nccl %s is not written", MAX_PENDING,
                tw_coll_kind_name((int)result->kind));
    }
    pthread_mutex_unlock(&pending_lock);
}

/* Writes what participant `r->rank` receives, from every participant's staged bytes. */
static void compute_result(const tw_coll_result *r)
{
    size_t width = tw_nccl_dtype_bytes((int)r->dtype);
    int n = r->kind == TW_COLL_P2P ? 2 : r->nranks;
    const void *inputs[TW_COLL_MAX_RANKS];
    double scales[TW_COLL_MAX_RANKS];
    bool scaled = false;
    for (int k = 0; k < n; k++) {
        int64_t aux = tw_coll_aux(&r->ref, k);
        inputs[k] = aux_has_data(aux) ? tw_coll_staged(&r->ref, k) : NULL;
        scales[k] = aux_scale(aux);
        scaled |= r->redop >= NCCL_STATIC_OPS;
    }
    uint64_t slice = r->count * width;
    uint8_t *out = r->recv;
    int op = r->redop >= NCCL_STATIC_OPS ? NCCL_SUM : (int)r->redop;
    const double *scale_list = scaled ? scales : NULL;
    bool all = true;
    for (int k = 0; k < n; k++)
        all &= inputs[k] != NULL;
    if (!all)   /* a participant staged nothing (its buffer not host-backed, or no room) */
        TW_DEBUG("collectives: nccl %s rank %d: not every participant staged its bytes",
                 tw_coll_kind_name((int)r->kind), r->rank);
    switch (r->kind) {
    case TW_COLL_ALLREDUCE:
    case TW_COLL_REDUCE:
        if (all && (r->kind == TW_COLL_ALLREDUCE || r->rank == r->root))
            tw_reduce((int)r->dtype, op, scale_list, out, inputs, n, r->count);
        break;
    case TW_COLL_REDUCESCATTER:
        if (all) {
            const void *shifted[TW_COLL_MAX_RANKS];
            for (int k = 0; k < n; k++)
                shifted[k] = (const uint8_t *)inputs[k] + (uint64_t)r->rank * slice;
            tw_reduce((int)r->dtype, op, scale_list, out, shifted, n, r->count);
        }
        break;
    case TW_COLL_BROADCAST:
        if (inputs[r->root] != NULL)
            memmove(out, inputs[r->root], slice);
        break;
    case TW_COLL_ALLGATHER:
    case TW_COLL_GATHER:
        if (r->kind == TW_COLL_GATHER && r->rank != r->root)
            break;
        for (int k = 0; k < n; k++)
            if (inputs[k] != NULL)
                memmove(out + (uint64_t)k * slice, inputs[k], slice);
        break;
    case TW_COLL_ALLTOALL:
        for (int k = 0; k < n; k++)
            if (inputs[k] != NULL)
                memmove(out + (uint64_t)k * slice, (const uint8_t *)inputs[k] + (uint64_t)r->rank * slice, slice);
        break;
    case TW_COLL_SCATTER:
        if (inputs[r->root] != NULL)
            memmove(out, (const uint8_t *)inputs[r->root] + (uint64_t)r->rank * slice, slice);
        break;
    case TW_COLL_P2P:
        if (inputs[0] != NULL)
            memmove(out, inputs[0], slice);
        break;
    default:
        break;
    }
}

static bool deposited(void *ref)
{
    return tw_coll_all_deposited(ref);
}

/* Writes pending[i] and takes it out of the list (lock held), keeping the others in issue order:
 * two results for one buffer (a sum, then a max into the same output) must be written in the
 * order they were issued, whichever completes or is read first. The write happens under the lock,
 * so a reader of an overlapping range on another thread (the progress thread completes ops)
 * never copies the buffer half-written. Waiting for the staged data happens without the lock;
 * returns false when the list changed meanwhile (the caller looks again). */
static bool materialize_at(int i)
{
    if (!tw_coll_all_deposited(&pending[i].ref)) {
        tw_coll_ref ref = pending[i].ref;
        pthread_mutex_unlock(&pending_lock);
        tw_wait_for(deposited, &ref, tw_coll_progress_word(), "nccl:data");
        pthread_mutex_lock(&pending_lock);
        return false;
    }
    compute_result(&pending[i]);
    pending_count--;
    memmove(&pending[i], &pending[i + 1], (size_t)(pending_count - i) * sizeof pending[0]);
    if (pending_count == 0)
        __atomic_store_n(&pending_any, 0, __ATOMIC_RELEASE);
    return true;
}

static bool overlaps(const tw_coll_result *r, const void *p, uint64_t bytes)
{
    uintptr_t a = (uintptr_t)r->recv, b = (uintptr_t)p;
    return a < b + bytes && b < a + r->recv_bytes;
}

void tw_coll_materialize_range(const void *p, uint64_t bytes)
{
    if (!__atomic_load_n(&pending_any, __ATOMIC_ACQUIRE) || bytes == 0)
        return;
    pthread_mutex_lock(&pending_lock);
    for (int i = 0; i < pending_count;) {
        if (overlaps(&pending[i], p, bytes))
            i = materialize_at(i) ? i : 0;   /* the list changed: index i again, or from the start */
        else
            i++;
    }
    pthread_mutex_unlock(&pending_lock);
}

void tw_coll_materialize_ref(const tw_coll_ref *ref)
{
    if (!__atomic_load_n(&pending_any, __ATOMIC_ACQUIRE))
        return;
    pthread_mutex_lock(&pending_lock);
    for (int i = 0; i < pending_count;) {
        if (pending[i].ref.entry == ref->entry && pending[i].ref.op_key == ref->op_key &&
            pending[i].ref.comm_key == ref->comm_key && pending[i].ref.index == ref->index)
            i = materialize_at(i) ? i : 0;
        else
            i++;
    }
    pthread_mutex_unlock(&pending_lock);
}
