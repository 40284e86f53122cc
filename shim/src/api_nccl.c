/* NCCL (nccl.h) onto the collectives core (collectives.c): communicators of any number of
 * ranks, in one process (ncclCommInitAll, several devices) or across the run's processes
 * (torch's ProcessGroupNCCL, vLLM's pynccl), and their collectives as rendezvous on the
 * virtual timeline: each rank's op starts when every participant's stream has reached it and
 * lasts its predicted duration; host-backed buffers move and reduce their bytes as NCCL would.
 *
 * Every call is matched by order, as NCCL matches it: the n-th collective a rank issues on a
 * communicator meets the n-th of every other rank (a different op there ends the run, naming
 * both), the n-th send from a to b meets the n-th receive by b from a. Ops issued between
 * ncclGroupStart and ncclGroupEnd form one launch per stream that completes as a whole. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nccl.h>

#include "tw_core.h"

#define COMM_MAGIC 0x4e43434c4d4d4f43ull   /* "COMMLCCN" */
#define COMM_DEAD 0x444145444d4d4f43ull    /* a destroyed communicator, kept to say so */
#define UID_MAGIC 0x4449554c43434e54ull    /* "TNCCLUID" */
#define P2P_KEY_BIT (1ULL << 63)
#define SPLIT_KEY_BIT (1ULL << 62)
#define GROUP_MAX_OPS 4096
#define PREMUL_OPS_MAX 1024

struct ncclComm {
    uint64_t magic;
    int nranks, rank, device;
    uint64_t key;                 /* the run-wide identity: hash of the unique id */
    uint64_t next_seq;            /* collectives issued on it */
    uint64_t split_seq;
    uint32_t *send_seq, *recv_seq;   /* per peer */
    char last_error[160];
};

static uint64_t hash_bytes(const void *data, size_t n, uint64_t h)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h ? h : 1;   /* 0 means a free slot in the shared page */
}

static void set_error(ncclComm_t comm, const char *api, const char *what)
{
    TW_ERROR("%s: %s", api, what);
    if (comm != NULL && (comm->magic == COMM_MAGIC || comm->magic == COMM_DEAD))
        snprintf(comm->last_error, sizeof comm->last_error, "%s: %s", api, what);
}

/* ncclInvalidArgument with a line naming the call, for a NULL, foreign or destroyed comm. */
static ncclResult_t check_comm(const ncclComm_t comm, const char *api)
{
    if (comm != NULL && comm->magic == COMM_MAGIC)
        return ncclSuccess;
    bool dead = comm != NULL && comm->magic == COMM_DEAD;
    set_error(dead ? comm : NULL, api, comm == NULL ? "communicator is NULL"
                                       : dead       ? "communicator used after ncclCommDestroy/Abort"
                                                    : "not a communicator");
    return ncclInvalidArgument;
}

static uint32_t dtype_tw(ncclDataType_t t)
{
    switch (t) {
    case ncclInt8: case ncclUint8: return TW_DT_I8;
    case ncclInt32: case ncclUint32: return TW_DT_I32;
    case ncclInt64: case ncclUint64: return TW_DT_I64;
    case ncclFloat16: return TW_DT_F16;
    case ncclBfloat16: return TW_DT_BF16;
    case ncclFloat32: return TW_DT_F32;
    case ncclFloat64: return TW_DT_F64;
    case ncclFloat8e4m3: return TW_DT_F8E4M3;
    case ncclFloat8e5m2: return TW_DT_F8E5M2;
    default: return TW_DT_UNKNOWN;
    }
}

/* ---- versions, unique ids, errors ---- */

TW_EXPORT ncclResult_t ncclGetVersion(int *version)
{
    if (!version)
        return ncclInvalidArgument;
    *version = NCCL_VERSION_CODE;
    return ncclSuccess;
}

TW_EXPORT ncclResult_t ncclGetUniqueId(ncclUniqueId *uniqueId)
{
    if (!uniqueId)
        return ncclInvalidArgument;
    /* unique per call: pid, a counter and the host clock; ranks exchange it out of band */
    static uint64_t counter;
    uint64_t words[4] = {UID_MAGIC, (uint64_t)getpid(), __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED),
                         (uint64_t)tw_host_mono_ns()};
    memset(uniqueId, 0, sizeof(*uniqueId));
    memcpy(uniqueId->internal, words, sizeof(words));
    return ncclSuccess;
}

TW_EXPORT const char *ncclGetErrorString(ncclResult_t result)
{
    switch (result) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
    case ncclSystemError: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
    case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
    case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case ncclInvalidUsage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    case ncclTimeout: return "NCCL operation timed out";
    default: return "unknown result code";
    }
}

TW_EXPORT const char *ncclGetLastError(ncclComm_t comm)
{
    return comm != NULL && (comm->magic == COMM_MAGIC || comm->magic == COMM_DEAD) ? comm->last_error : "";
}

/* ---- groups ---- */

typedef struct group_op {
    ncclComm_t comm;
    tw_stream *stream;
    uint32_t kind;                /* enum tw_coll_kind (TW_COLL_SEND / TW_COLL_RECV for p2p halves) */
    const void *send;
    void *recv;
    uint64_t count;
    ncclDataType_t dtype;
    uint32_t redop;
    int root;                     /* root, or the peer of a send/recv */
    double scale;                 /* pre-multiplied sum */
} group_op;

static __thread int t_group_depth;
static __thread group_op *t_ops;
static __thread uint32_t t_op_count, t_op_capacity;
static __thread uint64_t t_pending_joins[64];
static __thread int t_pending_join_count;

/* ---- communicators ---- */

static ncclResult_t comm_create(ncclComm_t *out, int nranks, uint64_t key, int rank, int device, const char *api)
{
    *out = NULL;
    char why[200];
    int rc = tw_coll_comm_join(key, nranks, rank, device, why, sizeof why);
    if (rc != TW_OK) {
        set_error(NULL, api, why);
        return rc == TW_ERR_NOMEM ? ncclSystemError : ncclInvalidUsage;
    }
    ncclComm_t c = calloc(1, sizeof(*c));
    uint32_t *seqs = calloc(2 * (size_t)nranks, sizeof *seqs);
    if (c == NULL || seqs == NULL) {
        free(c);
        free(seqs);
        return ncclSystemError;
    }
    c->magic = COMM_MAGIC;
    c->nranks = nranks;
    c->rank = rank;
    c->device = device;
    c->key = key;
    c->send_seq = seqs;
    c->recv_seq = seqs + nranks;
    *out = c;
    return ncclSuccess;
}

/* Init is collective: it returns once every rank has joined (at ncclGroupEnd inside a group). */
static void wait_joined(uint64_t key)
{
    if (t_group_depth > 0 && t_pending_join_count < 64) {
        t_pending_joins[t_pending_join_count++] = key;
        return;
    }
    tw_coll_comm_wait_joined(key);
}

static ncclResult_t init_rank(ncclComm_t *comm, int nranks, const ncclUniqueId *id, int rank, const char *api)
{
    if (!comm)
        return ncclInvalidArgument;
    *comm = NULL;
    uint64_t magic;
    memcpy(&magic, id->internal, sizeof magic);
    if (magic != UID_MAGIC) {
        set_error(NULL, api, "the unique id did not come from ncclGetUniqueId");
        return ncclInvalidArgument;
    }
    if (nranks < 1 || rank < 0 || rank >= nranks) {
        char why[96];
        snprintf(why, sizeof why, "rank %d is not in [0, %d)", rank, nranks);
        set_error(NULL, api, why);
        return ncclInvalidArgument;
    }
    uint64_t key = hash_bytes(id->internal, 32, 0xcbf29ce484222325ULL);
    ncclResult_t r = comm_create(comm, nranks, key, rank, tw_device_current(), api);
    if (r == ncclSuccess)
        wait_joined(key);
    return r;
}

TW_EXPORT ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId commId, int rank)
{
    return init_rank(comm, nranks, &commId, rank, "ncclCommInitRank");
}

TW_EXPORT ncclResult_t ncclCommInitRankConfig(ncclComm_t *comm, int nranks, ncclUniqueId commId, int rank,
                                              ncclConfig_t *config)
{
    /* blocking or not, the communicator is ready when this returns */
    return init_rank(comm, nranks, &commId, rank, "ncclCommInitRankConfig");
}

TW_EXPORT ncclResult_t ncclCommInitRankScalable(ncclComm_t *newcomm, int nranks, int myrank, int nId,
                                                ncclUniqueId *commIds, ncclConfig_t *config)
{
    if (nId < 1 || commIds == NULL) {
        set_error(NULL, "ncclCommInitRankScalable", "no unique ids given");
        return ncclInvalidArgument;
    }
    return init_rank(newcomm, nranks, &commIds[0], myrank, "ncclCommInitRankScalable");
}

TW_EXPORT ncclResult_t ncclCommInitAll(ncclComm_t *comm, int ndev, const int *devlist)
{
    if (comm == NULL || ndev < 1 || ndev > TW_COLL_MAX_RANKS)
        return ncclInvalidArgument;
    for (int i = 0; i < ndev; i++)
        if (!tw_device_valid(devlist ? devlist[i] : i))
            return ncclInvalidUsage;
    ncclUniqueId id;
    ncclGetUniqueId(&id);
    uint64_t key = hash_bytes(id.internal, 32, 0xcbf29ce484222325ULL);
    for (int i = 0; i < ndev; i++) {
        ncclResult_t r = comm_create(&comm[i], ndev, key, i, devlist ? devlist[i] : i, "ncclCommInitAll");
        if (r != ncclSuccess)
            return r;
    }
    return ncclSuccess;
}

static bool split_deposited(void *ref)
{
    return tw_coll_all_deposited(ref);
}

/* ncclCommSplit is collective over the parent: each rank posts (color, key); the ranks of a
 * color, ordered by (key, parent rank), form the new communicator. */
TW_EXPORT ncclResult_t ncclCommSplit(ncclComm_t comm, int color, int key, ncclComm_t *newcomm, ncclConfig_t *config)
{
    ncclResult_t r = check_comm(comm, "ncclCommSplit");
    if (r != ncclSuccess || !newcomm)
        return r != ncclSuccess ? r : ncclInvalidArgument;
    *newcomm = NULL;
    uint64_t split = ++comm->split_seq;
    tw_coll_op op = {.comm_key = comm->key, .op_key = SPLIT_KEY_BIT | split, .kind = TW_COLL_SPLIT,
                     .expected = (uint32_t)comm->nranks, .index = comm->rank};
    tw_coll_ref ref;
    if (tw_coll_open(&op, &ref) != TW_OK)
        return ncclSystemError;
    tw_coll_deposit(&ref, (int64_t)((uint64_t)(uint32_t)color << 32 | (uint32_t)key));
    tw_wait_for(split_deposited, &ref, tw_coll_progress_word(), "nccl:split");
    int members = 0, my_rank = 0;
    for (int k = 0; k < comm->nranks; k++) {
        uint64_t posted = (uint64_t)tw_coll_aux(&ref, k);
        int their_color = (int)(uint32_t)(posted >> 32), their_key = (int)(uint32_t)posted;
        if (their_color != color)
            continue;
        members++;
        if (their_key < key || (their_key == key && k < comm->rank))
            my_rank++;
    }
    tw_coll_release(&ref);
    if (color == NCCL_SPLIT_NOCOLOR)
        return ncclSuccess;
    uint64_t words[3] = {comm->key, split, (uint64_t)(uint32_t)color};
    uint64_t new_key = hash_bytes(words, sizeof words, 0x84222325cbf29ce4ULL);
    r = comm_create(newcomm, members, new_key, my_rank, comm->device, "ncclCommSplit");
    if (r == ncclSuccess)
        wait_joined(new_key);
    return r;
}

static ncclResult_t comm_end(ncclComm_t comm, const char *api)
{
    if (comm == NULL)
        return ncclSuccess;
    ncclResult_t r = check_comm(comm, api);
    if (r != ncclSuccess)
        return r;
    tw_coll_comm_leave(comm->key);
    comm->magic = COMM_DEAD;   /* the memory is kept so a later use is diagnosed, not a crash */
    return ncclSuccess;
}

TW_EXPORT ncclResult_t ncclCommFinalize(ncclComm_t comm)
{
    return check_comm(comm, "ncclCommFinalize");
}

TW_EXPORT ncclResult_t ncclCommDestroy(ncclComm_t comm)
{
    return comm_end(comm, "ncclCommDestroy");
}

TW_EXPORT ncclResult_t ncclCommAbort(ncclComm_t comm)
{
    return comm_end(comm, "ncclCommAbort");
}

TW_EXPORT ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *asyncError)
{
    ncclResult_t r = check_comm(comm, "ncclCommGetAsyncError");
    if (r != ncclSuccess || !asyncError)
        return r != ncclSuccess ? r : ncclInvalidArgument;
    *asyncError = ncclSuccess;
    return ncclSuccess;
}

TW_EXPORT ncclResult_t ncclCommCount(const ncclComm_t comm, int *count)
{
    ncclResult_t r = check_comm(comm, "ncclCommCount");
    if (r == ncclSuccess && count != NULL)
        *count = comm->nranks;
    return r != ncclSuccess ? r : (count ? ncclSuccess : ncclInvalidArgument);
}

TW_EXPORT ncclResult_t ncclCommCuDevice(const ncclComm_t comm, int *device)
{
    ncclResult_t r = check_comm(comm, "ncclCommCuDevice");
    if (r == ncclSuccess && device != NULL)
        *device = comm->device;
    return r != ncclSuccess ? r : (device ? ncclSuccess : ncclInvalidArgument);
}

TW_EXPORT ncclResult_t ncclCommUserRank(const ncclComm_t comm, int *rank)
{
    ncclResult_t r = check_comm(comm, "ncclCommUserRank");
    if (r == ncclSuccess && rank != NULL)
        *rank = comm->rank;
    return r != ncclSuccess ? r : (rank ? ncclSuccess : ncclInvalidArgument);
}

TW_EXPORT ncclResult_t ncclCommRegister(const ncclComm_t comm, void *buff, size_t size, void **handle)
{
    ncclResult_t r = check_comm(comm, "ncclCommRegister");
    if (r != ncclSuccess || !handle)
        return r != ncclSuccess ? r : ncclInvalidArgument;
    *handle = buff;   /* registration only speeds up real transports */
    return ncclSuccess;
}

TW_EXPORT ncclResult_t ncclCommDeregister(const ncclComm_t comm, void *handle)
{
    return check_comm(comm, "ncclCommDeregister");
}

/* ---- memory and reduction operators ---- */

TW_EXPORT ncclResult_t ncclMemAlloc(void **ptr, size_t size)
{
    if (!ptr)
        return ncclInvalidArgument;
    int rc = tw_mem_alloc(tw_device_current(), size, TW_MEM_DEVICE, ptr);
    return rc == TW_OK ? ncclSuccess : rc == TW_ERR_NOMEM ? ncclUnhandledCudaError : ncclInvalidArgument;
}

TW_EXPORT ncclResult_t ncclMemFree(void *ptr)
{
    if (!ptr)
        return ncclSuccess;
    return tw_mem_free(ptr) == TW_OK ? ncclSuccess : ncclInvalidArgument;
}

/* Dynamic operators: a scale per id (ids from ncclNumOps up), the scalar read when it is
 * host-resident (a device scalar's value does not exist: 1). */
static double premul_scales[PREMUL_OPS_MAX];
static uint32_t premul_next;

TW_EXPORT ncclResult_t ncclRedOpCreatePreMulSum(ncclRedOp_t *op, void *scalar, ncclDataType_t datatype,
                                                ncclScalarResidence_t residence, ncclComm_t comm)
{
    if (!op || check_comm(comm, "ncclRedOpCreatePreMulSum") != ncclSuccess || tw_nccl_dtype_bytes(datatype) == 0)
        return ncclInvalidArgument;
    uint32_t slot = __atomic_fetch_add(&premul_next, 1, __ATOMIC_RELAXED) % PREMUL_OPS_MAX;
    double scale = 1.0;
    tw_alloc a;
    if (scalar != NULL && (residence == ncclScalarHostImmediate || !tw_mem_lookup(scalar, &a) || a.backed))
        scale = tw_nccl_scalar(scalar, datatype);
    premul_scales[slot] = scale;
    *op = (ncclRedOp_t)(ncclNumOps + (int)slot);
    return ncclSuccess;
}

TW_EXPORT ncclResult_t ncclRedOpDestroy(ncclRedOp_t op, ncclComm_t comm)
{
    return check_comm(comm, "ncclRedOpDestroy") == ncclSuccess && (int)op >= (int)ncclNumOps ? ncclSuccess
                                                                                               : ncclInvalidArgument;
}

/* ---- issuing ops ---- */

static const char *const coll_names[] = {
    "nccl:?", "nccl:allreduce", "nccl:allgather", "nccl:reducescatter", "nccl:broadcast", "nccl:reduce",
    "nccl:send", "nccl:recv", "nccl:alltoall", "nccl:gather", "nccl:scatter", "nccl:sendrecv",
};

static uint32_t name_id_of(const char *name)
{
    return tw_name_intern(name);   /* interned once per name; cheap after the first */
}

/* Bytes this rank sends (stages) and receives for an op, and the staging each participant of
 * the entry reserves (the same on every rank). */
static void op_bytes(const group_op *o, uint64_t *send, uint64_t *recv, uint64_t *stage)
{
    uint64_t one = o->count * tw_nccl_dtype_bytes(o->dtype);
    uint64_t all = one * (uint64_t)o->comm->nranks;
    bool root = o->comm->rank == o->root;
    switch (o->kind) {
    case TW_COLL_ALLREDUCE: *send = one; *recv = one; *stage = one; break;
    case TW_COLL_REDUCE: *send = one; *recv = root ? one : 0; *stage = one; break;
    case TW_COLL_BROADCAST: *send = root ? one : 0; *recv = one; *stage = one; break;
    case TW_COLL_ALLGATHER: *send = one; *recv = all; *stage = one; break;
    case TW_COLL_REDUCESCATTER: *send = all; *recv = one; *stage = all; break;
    case TW_COLL_ALLTOALL: *send = all; *recv = all; *stage = all; break;
    case TW_COLL_GATHER: *send = one; *recv = root ? all : 0; *stage = one; break;
    case TW_COLL_SCATTER: *send = root ? all : 0; *recv = one; *stage = all; break;
    case TW_COLL_SEND: *send = one; *recv = 0; *stage = one; break;
    default: *send = 0; *recv = one; *stage = one; break;   /* TW_COLL_RECV */
    }
}

static bool host_readable(const void *p)
{
    tw_alloc a;
    return p != NULL && (!tw_mem_lookup(p, &a) || a.backed);
}

/* Opens the op's entry, stages this rank's send bytes, and registers what it receives. */
static ncclResult_t open_op(const group_op *o, tw_coll_ref *ref)
{
    ncclComm_t c = o->comm;
    uint64_t send_bytes, recv_bytes, stage;
    op_bytes(o, &send_bytes, &recv_bytes, &stage);
    tw_coll_op op = {.comm_key = c->key, .dtype = (uint32_t)o->dtype, .count = o->count, .redop = o->redop,
                     .stage_bytes_per_rank = stage <= tw_config_get()->backed_threshold ? stage : 0};
    if (o->kind == TW_COLL_SEND || o->kind == TW_COLL_RECV) {
        int src = o->kind == TW_COLL_SEND ? c->rank : o->root;
        int dst = o->kind == TW_COLL_SEND ? o->root : c->rank;
        uint32_t pair_seq = o->kind == TW_COLL_SEND ? ++c->send_seq[dst] : ++c->recv_seq[src];
        op.op_key = P2P_KEY_BIT | (uint64_t)src << 48 | (uint64_t)dst << 32 | pair_seq;
        op.kind = TW_COLL_P2P;
        op.root = src;
        op.peer = dst;
        op.expected = 2;
        op.index = o->kind == TW_COLL_SEND ? 0 : 1;
    } else {
        op.op_key = ++c->next_seq;
        op.kind = o->kind;
        op.root = (o->kind == TW_COLL_ALLREDUCE || o->kind == TW_COLL_ALLGATHER ||
                   o->kind == TW_COLL_REDUCESCATTER || o->kind == TW_COLL_ALLTOALL) ? 0 : o->root;
        op.expected = (uint32_t)c->nranks;
        op.index = c->rank;
    }
    if (tw_coll_open(&op, ref) != TW_OK) {
        set_error(c, coll_names[o->kind], "the run's table of collectives in flight is full");
        return ncclSystemError;
    }
    uint64_t room = 0;
    void *stage_at = tw_coll_stage(ref, &room);
    bool staged = false;
    if (stage_at != NULL && send_bytes > 0 && send_bytes <= room && host_readable(o->send)) {
        tw_coll_materialize_range(o->send, send_bytes);   /* a pending result it is made of */
        memcpy(stage_at, o->send, send_bytes);
        staged = true;
    }
    if (!staged && op.stage_bytes_per_rank > 0 && send_bytes > 0 && host_readable(o->send))
        TW_WARN("nccl %s (seq %llu): the staging area is full; its received bytes are not written",
                coll_names[o->kind], (unsigned long long)op.op_key);
    tw_coll_deposit(ref, tw_coll_deposit_aux(staged, o->scale));
    if (recv_bytes > 0 && stage_at != NULL && host_readable(o->recv)) {
        tw_coll_result result = {.ref = *ref, .recv = o->recv, .recv_bytes = recv_bytes, .kind = op.kind,
                                 .dtype = (uint32_t)o->dtype, .redop = o->redop, .count = o->count,
                                 .nranks = c->nranks, .rank = c->rank, .root = o->root};
        if (op.kind == TW_COLL_P2P)
            result.count = o->count;
        tw_coll_expect_result(&result);
    }
    return ncclSuccess;
}

static void member_desc(const group_op *o, tw_desc *d)
{
    uint64_t send, recv, stage;
    op_bytes(o, &send, &recv, &stage);
    memset(d, 0, sizeof *d);
    d->kind = TW_OP_COLLECTIVE;
    d->dtype_a = d->dtype_out = dtype_tw(o->dtype);
    d->dims[0] = o->comm->nranks;
    d->dims[1] = (int64_t)o->count;
    d->bytes = send > recv ? send : recv;
    d->name_id = name_id_of(coll_names[o->kind]);
}

/* The ops of one stream opened in issue order, as one launch for the timeline (NULL on error). */
static tw_coll_launch *build_launch(const group_op *ops, uint32_t count)
{
    uint32_t collectives = 0, p2p = 0;
    uint64_t sent = 0, received = 0;
    int peers = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (ops[i].kind == TW_COLL_SEND || ops[i].kind == TW_COLL_RECV) {
            uint64_t s, r, st;
            op_bytes(&ops[i], &s, &r, &st);
            sent += s;
            received += r;
            peers++;
            p2p++;
        } else {
            collectives++;
        }
    }
    const char *name = count == 1 ? coll_names[ops[0].kind] : collectives == 0 ? "nccl:sendrecv" : "nccl:group";
    tw_coll_launch *l = tw_coll_launch_new(count, name_id_of(name));
    for (uint32_t i = 0; i < count; i++) {
        tw_coll_ref ref;
        if (open_op(&ops[i], &ref) != ncclSuccess) {
            free(l);
            return NULL;
        }
        bool is_p2p = ops[i].kind == TW_COLL_SEND || ops[i].kind == TW_COLL_RECV;
        tw_desc d;
        member_desc(&ops[i], &d);
        tw_coll_launch_set(l, i, &ref, is_p2p ? NULL : &d);
    }
    if (p2p > 0) {
        /* the transfers of a group share this GPU's links: one duration for all of them */
        tw_desc d;
        memset(&d, 0, sizeof d);
        d.kind = TW_OP_COLLECTIVE;
        d.dtype_a = d.dtype_out = TW_DT_I8;
        d.dims[0] = ops[0].comm->nranks;
        d.dims[1] = (int64_t)sent;
        d.dims[2] = (int64_t)received;
        d.dims[3] = peers;
        d.bytes = sent > received ? sent : received;
        for (uint32_t i = 0; i < count; i++)
            if (ops[i].kind == TW_COLL_SEND || ops[i].kind == TW_COLL_RECV) {
                d.name_id = name_id_of(p2p == 1 ? coll_names[ops[i].kind] : "nccl:sendrecv");
                break;
            }
        tw_coll_launch_set_p2p(l, &d);
    }
    return l;
}

/* A group captured into a CUDA graph: its ops as they were issued, bound at every replay. */
typedef struct captured_group {
    uint32_t count;
    group_op ops[];
} captured_group;

static tw_coll_launch *bind_captured(const void *coll_template)
{
    const captured_group *g = coll_template;
    tw_coll_launch *l = build_launch(g->ops, g->count);
    if (l == NULL)
        TW_ERROR("a collective captured in a CUDA graph could not be replayed (see the error above)");
    return l;
}

static ncclResult_t launch_stream(const group_op *ops, uint32_t count)
{
    if (tw_stream_capture_graph(ops[0].stream) != NULL) {
        /* captured: nothing runs now; each replay of the graph issues these ops anew */
        captured_group *g = malloc(sizeof *g + count * sizeof g->ops[0]);
        if (g == NULL)
            return ncclSystemError;
        g->count = count;
        memcpy(g->ops, ops, count * sizeof *ops);
        if (tw_capture_collective(ops[0].stream, g, bind_captured))
            return ncclSuccess;
        free(g);
    }
    tw_coll_launch *l = build_launch(ops, count);
    if (l == NULL)
        return ncclSystemError;
    tw_submit_collective(ops[0].stream, l);
    return ncclSuccess;
}

/* Every op of the group, one launch per stream (in the order the streams first appear). */
static ncclResult_t run_group(void)
{
    ncclResult_t result = ncclSuccess;
    group_op *ops = t_ops;
    uint32_t count = t_op_count;
    bool *done = calloc(count ? count : 1, sizeof *done);
    group_op *same = malloc((count ? count : 1) * sizeof *same);
    if (done == NULL || same == NULL) {
        free(done);
        free(same);
        return ncclSystemError;
    }
    for (uint32_t i = 0; i < count && result == ncclSuccess; i++) {
        if (done[i])
            continue;
        uint32_t n = 0;
        for (uint32_t k = i; k < count; k++)
            if (!done[k] && ops[k].stream == ops[i].stream) {
                same[n++] = ops[k];
                done[k] = true;
            }
        result = launch_stream(same, n);
    }
    free(done);
    free(same);
    t_op_count = 0;
    return result;
}

static ncclResult_t enqueue(const group_op *o)
{
    if (t_op_count == t_op_capacity) {
        uint32_t capacity = t_op_capacity ? t_op_capacity * 2 : 64;
        if (capacity > GROUP_MAX_OPS)
            return ncclInvalidUsage;
        group_op *grown = realloc(t_ops, capacity * sizeof *grown);
        if (grown == NULL)
            return ncclSystemError;
        t_ops = grown;
        t_op_capacity = capacity;
    }
    t_ops[t_op_count++] = *o;
    return t_group_depth > 0 ? ncclSuccess : run_group();
}

TW_EXPORT ncclResult_t ncclGroupStart(void)
{
    t_group_depth++;
    return ncclSuccess;
}

TW_EXPORT ncclResult_t ncclGroupEnd(void)
{
    if (t_group_depth <= 0) {
        TW_ERROR("ncclGroupEnd without ncclGroupStart");
        return ncclInvalidUsage;
    }
    if (--t_group_depth > 0)
        return ncclSuccess;
    ncclResult_t r = run_group();
    for (int i = 0; i < t_pending_join_count; i++)
        tw_coll_comm_wait_joined(t_pending_joins[i]);
    t_pending_join_count = 0;
    return r;
}

static ncclResult_t issue(uint32_t kind, const char *api, const void *send, void *recv, size_t count,
                          ncclDataType_t dtype, ncclRedOp_t redop, int root, ncclComm_t comm, cudaStream_t stream)
{
    ncclResult_t r = check_comm(comm, api);
    if (r != ncclSuccess)
        return r;
    if (tw_nccl_dtype_bytes(dtype) == 0) {
        set_error(comm, api, "unknown data type");
        return ncclInvalidArgument;
    }
    if (root < 0 || root >= comm->nranks) {
        char why[96];
        snprintf(why, sizeof why, "rank %d is not in [0, %d)", root, comm->nranks);
        set_error(comm, api, why);
        return ncclInvalidArgument;
    }
    bool dynamic = (int)redop >= (int)ncclNumOps;
    if (!dynamic && (int)redop < 0) {
        set_error(comm, api, "unknown reduction operator");
        return ncclInvalidArgument;
    }
    group_op o = {.comm = comm, .stream = tw_stream_resolve(stream), .kind = kind, .send = send, .recv = recv,
                  .count = count, .dtype = dtype, .redop = (uint32_t)redop, .root = root,
                  .scale = dynamic ? premul_scales[((int)redop - (int)ncclNumOps) % PREMUL_OPS_MAX] : 1.0};
    return enqueue(&o);
}

TW_EXPORT ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype,
                                     ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream)
{
    return issue(TW_COLL_ALLREDUCE, "ncclAllReduce", sendbuff, recvbuff, count, datatype, op, 0, comm, stream);
}

TW_EXPORT ncclResult_t ncclReduce(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype,
                                  ncclRedOp_t op, int root, ncclComm_t comm, cudaStream_t stream)
{
    return issue(TW_COLL_REDUCE, "ncclReduce", sendbuff, recvbuff, count, datatype, op, root, comm, stream);
}

TW_EXPORT ncclResult_t ncclBroadcast(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype,
                                     int root, ncclComm_t comm, cudaStream_t stream)
{
    return issue(TW_COLL_BROADCAST, "ncclBroadcast", sendbuff, recvbuff, count, datatype, ncclSum, root, comm,
                 stream);
}

TW_EXPORT ncclResult_t ncclBcast(void *buff, size_t count, ncclDataType_t datatype, int root, ncclComm_t comm,
                                 cudaStream_t stream)
{
    return issue(TW_COLL_BROADCAST, "ncclBcast", buff, buff, count, datatype, ncclSum, root, comm, stream);
}

TW_EXPORT ncclResult_t ncclAllGather(const void *sendbuff, void *recvbuff, size_t sendcount,
                                     ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream)
{
    return issue(TW_COLL_ALLGATHER, "ncclAllGather", sendbuff, recvbuff, sendcount, datatype, ncclSum, 0, comm,
                 stream);
}

TW_EXPORT ncclResult_t ncclReduceScatter(const void *sendbuff, void *recvbuff, size_t recvcount,
                                         ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                                         cudaStream_t stream)
{
    return issue(TW_COLL_REDUCESCATTER, "ncclReduceScatter", sendbuff, recvbuff, recvcount, datatype, op, 0, comm,
                 stream);
}

TW_EXPORT ncclResult_t ncclAlltoAll(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype,
                                    ncclComm_t comm, cudaStream_t stream)
{
    return issue(TW_COLL_ALLTOALL, "ncclAlltoAll", sendbuff, recvbuff, count, datatype, ncclSum, 0, comm, stream);
}

TW_EXPORT ncclResult_t ncclGather(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype,
                                  int root, ncclComm_t comm, cudaStream_t stream)
{
    return issue(TW_COLL_GATHER, "ncclGather", sendbuff, recvbuff, count, datatype, ncclSum, root, comm, stream);
}

TW_EXPORT ncclResult_t ncclScatter(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype,
                                   int root, ncclComm_t comm, cudaStream_t stream)
{
    return issue(TW_COLL_SCATTER, "ncclScatter", sendbuff, recvbuff, count, datatype, ncclSum, root, comm, stream);
}

TW_EXPORT ncclResult_t ncclSend(const void *sendbuff, size_t count, ncclDataType_t datatype, int peer,
                                ncclComm_t comm, cudaStream_t stream)
{
    return issue(TW_COLL_SEND, "ncclSend", sendbuff, NULL, count, datatype, ncclSum, peer, comm, stream);
}

TW_EXPORT ncclResult_t ncclRecv(void *recvbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm,
                                cudaStream_t stream)
{
    return issue(TW_COLL_RECV, "ncclRecv", NULL, recvbuff, count, datatype, ncclSum, peer, comm, stream);
}
