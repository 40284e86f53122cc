/* NCCL (nccl.h) for single-process communicators. torch's ProcessGroupNCCL and vLLM's pynccl
 * (ctypes on libnccl.so.2) create a communicator even when the world has one rank; its
 * collectives are then recorded as TW_OP_COLLECTIVE ops (dims[0] = ranks, dims[1] = count)
 * on the caller's stream, and a 1-rank collective moves its data for real (out = in) where
 * both buffers are host-addressable. Communicators of more than one rank need the
 * multi-process rendezvous (the multi-GPU work): they fail loudly with ncclInvalidUsage. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nccl.h>

#include "tw_core.h"

#define COMM_MAGIC 0x4e43434c4d4d4f43ull /* "COMMLCCN" */
#define UID_MAGIC 0x4449554c43434e54ull  /* "TNCCLUID" */

struct ncclComm {
    uint64_t magic;
    int nranks, rank, device;
    ncclUniqueId id;
    char last_error[128];
};

static int comm_ok(const ncclComm_t c)
{
    return c != NULL && c->magic == COMM_MAGIC;
}

static size_t dtype_bytes(ncclDataType_t t)
{
    switch (t) {
    case ncclInt8: case ncclUint8: case ncclFloat8e4m3: case ncclFloat8e5m2: return 1;
    case ncclFloat16: case ncclBfloat16: return 2;
    case ncclInt32: case ncclUint32: case ncclFloat32: return 4;
    case ncclInt64: case ncclUint64: case ncclFloat64: return 8;
    default: return 0;
    }
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

/* ---- communicators ---- */

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
    uint64_t words[4] = {UID_MAGIC, (uint64_t)getpid(),
                         __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED),
                         (uint64_t)tw_host_mono_ns()};
    memset(uniqueId, 0, sizeof(*uniqueId));
    memcpy(uniqueId->internal, words, sizeof(words));
    return ncclSuccess;
}

static ncclResult_t comm_new(ncclComm_t *out, int nranks, const ncclUniqueId *id, int rank,
                             int device, const char *api)
{
    if (!out)
        return ncclInvalidArgument;
    *out = NULL;
    if (nranks < 1 || rank < 0 || rank >= nranks)
        return ncclInvalidArgument;
    if (nranks > 1) {
        /* the rendezvous across processes belongs to the multi-GPU work */
        TW_ERROR("%s: nranks=%d: multi-rank NCCL communicators are not supported yet "
                 "(single-rank only)", api, nranks);
        tw_unimplemented("ncclCommInitRank(nranks>1)");
        return ncclInvalidUsage;
    }
    ncclComm_t c = calloc(1, sizeof(*c));
    if (!c)
        return ncclSystemError;
    c->magic = COMM_MAGIC;
    c->nranks = nranks;
    c->rank = rank;
    c->device = device;
    if (id)
        c->id = *id;
    *out = c;
    return ncclSuccess;
}

TW_EXPORT ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId commId, int rank)
{
    return comm_new(comm, nranks, &commId, rank, tw_device_current(), "ncclCommInitRank");
}

TW_EXPORT ncclResult_t ncclCommInitRankConfig(ncclComm_t *comm, int nranks, ncclUniqueId commId,
                                              int rank, ncclConfig_t *config)
{
    /* the config tunes channels and blocking; a 1-rank communicator is ready at once */
    return comm_new(comm, nranks, &commId, rank, tw_device_current(), "ncclCommInitRankConfig");
}

TW_EXPORT ncclResult_t ncclCommInitRankScalable(ncclComm_t *newcomm, int nranks, int myrank, int nId,
                                                ncclUniqueId *commIds, ncclConfig_t *config)
{
    return comm_new(newcomm, nranks, nId > 0 ? commIds : NULL, myrank, tw_device_current(),
                    "ncclCommInitRankScalable");
}

TW_EXPORT ncclResult_t ncclCommInitAll(ncclComm_t *comm, int ndev, const int *devlist)
{
    if (ndev < 1)
        return ncclInvalidArgument;
    int device = devlist ? devlist[0] : 0;
    if (!tw_device_valid(device))
        return ncclInvalidArgument;
    return comm_new(comm, ndev, NULL, 0, device, "ncclCommInitAll");
}

TW_EXPORT ncclResult_t ncclCommSplit(ncclComm_t comm, int color, int key, ncclComm_t *newcomm,
                                     ncclConfig_t *config)
{
    if (!comm_ok(comm) || !newcomm)
        return ncclInvalidArgument;
    *newcomm = NULL;
    if (color == NCCL_SPLIT_NOCOLOR)
        return ncclSuccess;
    return comm_new(newcomm, 1, &comm->id, 0, comm->device, "ncclCommSplit");
}

TW_EXPORT ncclResult_t ncclCommFinalize(ncclComm_t comm)
{
    return comm_ok(comm) ? ncclSuccess : ncclInvalidArgument;
}

TW_EXPORT ncclResult_t ncclCommDestroy(ncclComm_t comm)
{
    if (comm == NULL)
        return ncclSuccess;
    if (!comm_ok(comm))
        return ncclInvalidArgument;
    comm->magic = 0;
    free(comm);
    return ncclSuccess;
}

TW_EXPORT ncclResult_t ncclCommAbort(ncclComm_t comm)
{
    return ncclCommDestroy(comm);
}

TW_EXPORT ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *asyncError)
{
    if (!comm_ok(comm) || !asyncError)
        return ncclInvalidArgument;
    *asyncError = ncclSuccess;
    return ncclSuccess;
}

TW_EXPORT ncclResult_t ncclCommCount(const ncclComm_t comm, int *count)
{
    if (!comm_ok(comm) || !count)
        return ncclInvalidArgument;
    *count = comm->nranks;
    return ncclSuccess;
}

TW_EXPORT ncclResult_t ncclCommCuDevice(const ncclComm_t comm, int *device)
{
    if (!comm_ok(comm) || !device)
        return ncclInvalidArgument;
    *device = comm->device;
    return ncclSuccess;
}

TW_EXPORT ncclResult_t ncclCommUserRank(const ncclComm_t comm, int *rank)
{
    if (!comm_ok(comm) || !rank)
        return ncclInvalidArgument;
    *rank = comm->rank;
    return ncclSuccess;
}

TW_EXPORT ncclResult_t ncclCommRegister(const ncclComm_t comm, void *buff, size_t size, void **handle)
{
    if (!comm_ok(comm) || !handle)
        return ncclInvalidArgument;
    *handle = buff; /* registration only speeds up real transports */
    return ncclSuccess;
}

TW_EXPORT ncclResult_t ncclCommDeregister(const ncclComm_t comm, void *handle)
{
    return comm_ok(comm) ? ncclSuccess : ncclInvalidArgument;
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
    return comm_ok(comm) ? comm->last_error : "";
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

TW_EXPORT ncclResult_t ncclRedOpCreatePreMulSum(ncclRedOp_t *op, void *scalar, ncclDataType_t datatype,
                                                ncclScalarResidence_t residence, ncclComm_t comm)
{
    if (!op || !comm_ok(comm) || dtype_bytes(datatype) == 0)
        return ncclInvalidArgument;
    *op = ncclNumOps; /* the first dynamic operator id; the arithmetic never runs here */
    return ncclSuccess;
}

TW_EXPORT ncclResult_t ncclRedOpDestroy(ncclRedOp_t op, ncclComm_t comm)
{
    return comm_ok(comm) && (int)op >= (int)ncclNumOps ? ncclSuccess : ncclInvalidArgument;
}

/* ---- groups and self send/receive pairing ---- */

/* Point-to-point on a 1-rank communicator pairs a send to self with a receive from self;
 * unmatched ones wait here (per thread) until their partner arrives, as inside a group. */
#define P2P_PENDING 64
typedef struct p2p_half {
    ncclComm_t comm;
    const void *send;
    void *recv;
    size_t bytes;
} p2p_half;

static __thread int t_group_depth;
static __thread p2p_half t_sends[P2P_PENDING], t_recvs[P2P_PENDING];
static __thread int t_nsends, t_nrecvs;

TW_EXPORT ncclResult_t ncclGroupStart(void)
{
    t_group_depth++;
    return ncclSuccess;
}

TW_EXPORT ncclResult_t ncclGroupEnd(void)
{
    if (t_group_depth <= 0)
        return ncclInvalidUsage;
    if (--t_group_depth == 0 && (t_nsends || t_nrecvs)) {
        /* a group that closes with an unpaired self send/recv would hang real NCCL */
        TW_ERROR("ncclGroupEnd: %d send(s) and %d recv(s) to self left unpaired", t_nsends, t_nrecvs);
        t_nsends = t_nrecvs = 0;
        return ncclInvalidUsage;
    }
    return ncclSuccess;
}

static bool p2p_pair(p2p_half *queue, int *n, const p2p_half *mine, bool mine_is_send)
{
    for (int i = 0; i < *n; i++) {
        if (queue[i].comm == mine->comm && queue[i].bytes == mine->bytes) {
            if (mine_is_send)
                tw_mem_copy_data(queue[i].recv, mine->send, mine->bytes);
            else
                tw_mem_copy_data(mine->recv, queue[i].send, mine->bytes);
            queue[i] = queue[--*n];
            return true;
        }
    }
    return false;
}

/* ---- collectives ---- */

enum { COLL_ALLREDUCE, COLL_ALLGATHER, COLL_REDUCESCATTER, COLL_BROADCAST, COLL_REDUCE,
       COLL_SEND, COLL_RECV, COLL_ALLTOALL, COLL_GATHER, COLL_SCATTER, COLL_COUNT };

static const char *const coll_names[COLL_COUNT] = {
    "nccl:allreduce", "nccl:allgather", "nccl:reducescatter", "nccl:broadcast", "nccl:reduce",
    "nccl:send", "nccl:recv", "nccl:alltoall", "nccl:gather", "nccl:scatter",
};
static uint32_t coll_name_ids[COLL_COUNT];

static uint32_t coll_name_id(int which)
{
    uint32_t id = __atomic_load_n(&coll_name_ids[which], __ATOMIC_RELAXED);
    if (TW_UNLIKELY(id == 0)) {
        id = tw_name_intern(coll_names[which]); /* idempotent: a race interns it twice, same id */
        __atomic_store_n(&coll_name_ids[which], id, __ATOMIC_RELAXED);
    }
    return id;
}

/* Record the op; `bytes` is the larger of what is sent and received by this rank. */
static ncclResult_t coll_submit(int which, ncclComm_t comm, size_t count, ncclDataType_t dt,
                                size_t bytes, cudaStream_t stream)
{
    tw_desc d;
    memset(&d, 0, sizeof(d));
    d.kind = TW_OP_COLLECTIVE;
    d.device = (uint32_t)comm->device;
    d.dtype_a = d.dtype_out = dtype_tw(dt);
    d.dims[0] = comm->nranks;
    d.dims[1] = (int64_t)count;
    d.bytes = bytes;
    d.name_id = coll_name_id(which);
    tw_submit(tw_stream_resolve(stream), &d);
    return ncclSuccess;
}

static ncclResult_t coll_check(ncclComm_t comm, ncclDataType_t dt, int root)
{
    if (!comm_ok(comm) || dtype_bytes(dt) == 0 || root < 0 || root >= comm->nranks)
        return ncclInvalidArgument;
    return ncclSuccess;
}

TW_EXPORT ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count,
                                     ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                                     cudaStream_t stream)
{
    ncclResult_t r = coll_check(comm, datatype, 0);
    if (r != ncclSuccess)
        return r;
    size_t bytes = count * dtype_bytes(datatype);
    if (sendbuff != recvbuff) /* one rank: the reduction of one input is the input */
        tw_mem_copy_data(recvbuff, sendbuff, bytes);
    return coll_submit(COLL_ALLREDUCE, comm, count, datatype, bytes, stream);
}

TW_EXPORT ncclResult_t ncclReduce(const void *sendbuff, void *recvbuff, size_t count,
                                  ncclDataType_t datatype, ncclRedOp_t op, int root, ncclComm_t comm,
                                  cudaStream_t stream)
{
    ncclResult_t r = coll_check(comm, datatype, root);
    if (r != ncclSuccess)
        return r;
    size_t bytes = count * dtype_bytes(datatype);
    if (sendbuff != recvbuff)
        tw_mem_copy_data(recvbuff, sendbuff, bytes);
    return coll_submit(COLL_REDUCE, comm, count, datatype, bytes, stream);
}

TW_EXPORT ncclResult_t ncclBroadcast(const void *sendbuff, void *recvbuff, size_t count,
                                     ncclDataType_t datatype, int root, ncclComm_t comm,
                                     cudaStream_t stream)
{
    ncclResult_t r = coll_check(comm, datatype, root);
    if (r != ncclSuccess)
        return r;
    size_t bytes = count * dtype_bytes(datatype);
    if (sendbuff != recvbuff)
        tw_mem_copy_data(recvbuff, sendbuff, bytes);
    return coll_submit(COLL_BROADCAST, comm, count, datatype, bytes, stream);
}

TW_EXPORT ncclResult_t ncclBcast(void *buff, size_t count, ncclDataType_t datatype, int root,
                                 ncclComm_t comm, cudaStream_t stream)
{
    return ncclBroadcast(buff, buff, count, datatype, root, comm, stream);
}

TW_EXPORT ncclResult_t ncclAllGather(const void *sendbuff, void *recvbuff, size_t sendcount,
                                     ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream)
{
    ncclResult_t r = coll_check(comm, datatype, 0);
    if (r != ncclSuccess)
        return r;
    size_t bytes = sendcount * dtype_bytes(datatype);
    if (sendbuff != recvbuff) /* rank 0's slice of the output is its input */
        tw_mem_copy_data(recvbuff, sendbuff, bytes);
    return coll_submit(COLL_ALLGATHER, comm, sendcount, datatype, bytes * (size_t)comm->nranks, stream);
}

TW_EXPORT ncclResult_t ncclReduceScatter(const void *sendbuff, void *recvbuff, size_t recvcount,
                                         ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                                         cudaStream_t stream)
{
    ncclResult_t r = coll_check(comm, datatype, 0);
    if (r != ncclSuccess)
        return r;
    size_t bytes = recvcount * dtype_bytes(datatype);
    if (sendbuff != recvbuff)
        tw_mem_copy_data(recvbuff, sendbuff, bytes);
    return coll_submit(COLL_REDUCESCATTER, comm, recvcount, datatype, bytes * (size_t)comm->nranks,
                       stream);
}

TW_EXPORT ncclResult_t ncclAlltoAll(const void *sendbuff, void *recvbuff, size_t count,
                                    ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream)
{
    ncclResult_t r = coll_check(comm, datatype, 0);
    if (r != ncclSuccess)
        return r;
    size_t bytes = count * dtype_bytes(datatype);
    if (sendbuff != recvbuff)
        tw_mem_copy_data(recvbuff, sendbuff, bytes);
    return coll_submit(COLL_ALLTOALL, comm, count, datatype, bytes, stream);
}

TW_EXPORT ncclResult_t ncclGather(const void *sendbuff, void *recvbuff, size_t count,
                                  ncclDataType_t datatype, int root, ncclComm_t comm, cudaStream_t stream)
{
    ncclResult_t r = coll_check(comm, datatype, root);
    if (r != ncclSuccess)
        return r;
    size_t bytes = count * dtype_bytes(datatype);
    if (sendbuff != recvbuff)
        tw_mem_copy_data(recvbuff, sendbuff, bytes);
    return coll_submit(COLL_GATHER, comm, count, datatype, bytes, stream);
}

TW_EXPORT ncclResult_t ncclScatter(const void *sendbuff, void *recvbuff, size_t count,
                                   ncclDataType_t datatype, int root, ncclComm_t comm, cudaStream_t stream)
{
    ncclResult_t r = coll_check(comm, datatype, root);
    if (r != ncclSuccess)
        return r;
    size_t bytes = count * dtype_bytes(datatype);
    if (sendbuff != recvbuff)
        tw_mem_copy_data(recvbuff, sendbuff, bytes);
    return coll_submit(COLL_SCATTER, comm, count, datatype, bytes, stream);
}

TW_EXPORT ncclResult_t ncclSend(const void *sendbuff, size_t count, ncclDataType_t datatype, int peer,
                                ncclComm_t comm, cudaStream_t stream)
{
    ncclResult_t r = coll_check(comm, datatype, peer);
    if (r != ncclSuccess)
        return r;
    p2p_half mine = {comm, sendbuff, NULL, count * dtype_bytes(datatype)};
    if (!p2p_pair(t_recvs, &t_nrecvs, &mine, true)) {
        if (t_nsends == P2P_PENDING)
            return ncclInvalidUsage;
        t_sends[t_nsends++] = mine;
    }
    return coll_submit(COLL_SEND, comm, count, datatype, mine.bytes, stream);
}

TW_EXPORT ncclResult_t ncclRecv(void *recvbuff, size_t count, ncclDataType_t datatype, int peer,
                                ncclComm_t comm, cudaStream_t stream)
{
    ncclResult_t r = coll_check(comm, datatype, peer);
    if (r != ncclSuccess)
        return r;
    p2p_half mine = {comm, NULL, recvbuff, count * dtype_bytes(datatype)};
    if (!p2p_pair(t_sends, &t_nsends, &mine, false)) {
        if (t_nrecvs == P2P_PENDING)
            return ncclInvalidUsage;
        t_recvs[t_nrecvs++] = mine;
    }
    return coll_submit(COLL_RECV, comm, count, datatype, mine.bytes, stream);
}
