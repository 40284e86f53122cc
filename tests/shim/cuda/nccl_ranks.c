/* N ranks in N processes (fork) talking through NCCL under the shim: one GPU each, a
 * communicator from one unique id, then the scenario named on the command line. Each rank
 * prints `rank R key value` lines the test reads. Plain C: the entry points come from the
 * shim through dlsym, the types from the vendor headers.
 *
 *   nccl_ranks NRANKS SCENARIO      scenarios: values, timing, split, graph, overlap, mismatch, die, bad
 *   nccl_ranks NRANKS loop COUNT BYTES   COUNT synchronised all-reduces (scripts/bench_collectives.py)
 *   nccl_ranks NRANKS churn COUNT        COUNT all-reduces of fresh values into one buffer, each read
 *                                        back at once and checked: prints how many were wrong */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cuda_runtime_api.h>
#include <nccl.h>

#define FN(name) static __typeof__(name) *p_##name
FN(cudaSetDevice);
FN(cudaMalloc);
FN(cudaMemcpy);
FN(cudaStreamCreate);
FN(cudaStreamSynchronize);
FN(cudaDeviceSynchronize);
FN(cudaMemsetAsync);
FN(ncclGetUniqueId);
FN(ncclCommInitRank);
FN(ncclCommDestroy);
FN(ncclCommSplit);
FN(ncclCommCount);
FN(ncclCommUserRank);
FN(ncclAllReduce);
FN(ncclAllGather);
FN(ncclReduceScatter);
FN(ncclBroadcast);
FN(ncclReduce);
FN(ncclAlltoAll);
FN(ncclSend);
FN(ncclRecv);
FN(ncclGroupStart);
FN(ncclGroupEnd);
FN(ncclCommShrink);
FN(ncclGetLastError);
FN(cudaStreamBeginCapture);
FN(cudaStreamEndCapture);
FN(cudaGraphInstantiate);
FN(cudaGraphLaunch);

#define LOAD(name)                                                              \
    do {                                                                        \
        p_##name = (__typeof__(name) *)dlsym(RTLD_DEFAULT, #name);              \
        if (p_##name == NULL) {                                                 \
            fprintf(stderr, "missing %s (run under emulate)\n", #name);        \
            exit(3);                                                            \
        }                                                                       \
    } while (0)

#define CHECK(call)                                                             \
    do {                                                                        \
        int rc_ = (int)(call);                                                  \
        if (rc_ != 0) {                                                         \
            fprintf(stderr, "rank %d: %s failed: %d\n", rank, #call, rc_);      \
            exit(4);                                                            \
        }                                                                       \
    } while (0)

static int rank, nranks;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void load_all(void)
{
    LOAD(cudaSetDevice); LOAD(cudaMalloc); LOAD(cudaMemcpy); LOAD(cudaStreamCreate);
    LOAD(cudaStreamSynchronize); LOAD(cudaDeviceSynchronize); LOAD(cudaMemsetAsync); LOAD(ncclGetUniqueId); LOAD(ncclCommInitRank);
    LOAD(ncclCommDestroy); LOAD(ncclCommSplit); LOAD(ncclCommCount); LOAD(ncclCommUserRank); LOAD(ncclAllReduce);
    LOAD(ncclAllGather); LOAD(ncclReduceScatter); LOAD(ncclBroadcast); LOAD(ncclReduce); LOAD(ncclAlltoAll);
    LOAD(ncclSend); LOAD(ncclRecv); LOAD(ncclGroupStart); LOAD(ncclGroupEnd);
    LOAD(ncclCommShrink); LOAD(ncclGetLastError);
    LOAD(cudaStreamBeginCapture); LOAD(cudaStreamEndCapture); LOAD(cudaGraphInstantiate); LOAD(cudaGraphLaunch);
}

/* A device buffer of n floats holding `values`. */
static float *device_floats(const float *values, size_t n)
{
    float *d = NULL;
    CHECK(p_cudaMalloc((void **)&d, n * sizeof(float)));
    if (values != NULL)
        CHECK(p_cudaMemcpy(d, values, n * sizeof(float), cudaMemcpyHostToDevice));
    return d;
}

static void read_floats(float *host, const float *device, size_t n)
{
    CHECK(p_cudaMemcpy(host, device, n * sizeof(float), cudaMemcpyDeviceToHost));
}

/* Every collective's values, with small host-backed buffers (4 floats per rank). */
static void scenario_values(ncclComm_t comm, cudaStream_t s)
{
    enum { N = 4 };
    float mine[N * 8], out[N * 8];
    for (int i = 0; i < N * nranks; i++)
        mine[i] = (float)(rank + 1) * 10.0f + (float)i;
    float *send = device_floats(mine, N * nranks), *recv = device_floats(NULL, N * nranks);

    CHECK(p_ncclAllReduce(send, recv, N, ncclFloat, ncclSum, comm, s));
    read_floats(out, recv, N);
    printf("rank %d allreduce_sum %g %g\n", rank, out[0], out[3]);

    CHECK(p_ncclAllReduce(send, recv, N, ncclFloat, ncclMax, comm, s));
    read_floats(out, recv, N);
    printf("rank %d allreduce_max %g\n", rank, out[0]);

    int32_t ints[N] = {rank + 1, 2, 3, 4}, int_out[N];
    int32_t *dint = NULL;
    CHECK(p_cudaMalloc((void **)&dint, sizeof ints));
    CHECK(p_cudaMemcpy(dint, ints, sizeof ints, cudaMemcpyHostToDevice));
    CHECK(p_ncclAllReduce(dint, dint, N, ncclInt32, ncclProd, comm, s));   /* in place */
    CHECK(p_cudaMemcpy(int_out, dint, sizeof int_out, cudaMemcpyDeviceToHost));
    printf("rank %d allreduce_prod_int %d %d\n", rank, int_out[0], int_out[1]);

    CHECK(p_ncclAllGather(send, recv, N, ncclFloat, comm, s));
    read_floats(out, recv, N * nranks);
    printf("rank %d allgather %g %g\n", rank, out[0], out[N * (nranks - 1)]);

    CHECK(p_ncclReduceScatter(send, recv, N, ncclFloat, ncclSum, comm, s));
    read_floats(out, recv, N);
    printf("rank %d reducescatter %g\n", rank, out[0]);

    CHECK(p_ncclBroadcast(send, recv, N, ncclFloat, nranks - 1, comm, s));
    read_floats(out, recv, N);
    printf("rank %d broadcast %g\n", rank, out[0]);

    CHECK(p_ncclAlltoAll(send, recv, N, ncclFloat, comm, s));
    read_floats(out, recv, N * nranks);
    printf("rank %d alltoall %g %g\n", rank, out[0], out[N * (nranks - 1)]);

    /* a ring through grouped send/recv: each rank gets its left neighbour's first float */
    CHECK(p_ncclGroupStart());
    CHECK(p_ncclSend(send, N, ncclFloat, (rank + 1) % nranks, comm, s));
    CHECK(p_ncclRecv(recv, N, ncclFloat, (rank + nranks - 1) % nranks, comm, s));
    CHECK(p_ncclGroupEnd());
    read_floats(out, recv, N);
    printf("rank %d ring %g\n", rank, out[0]);
    CHECK(p_cudaStreamSynchronize(s));
}

/* Rank r arrives r x 10 ms late; a 64 MiB all-reduce (unbacked) completes for all at once. */
static void scenario_timing(ncclComm_t comm, cudaStream_t s)
{
    size_t count = 16u << 20;
    float *buf = NULL;
    CHECK(p_cudaMalloc((void **)&buf, count * sizeof(float)));
    CHECK(p_cudaStreamSynchronize(s));
    int64_t t0 = now_ns();
    struct timespec late = {0, (long)rank * 10000000L};
    nanosleep(&late, NULL);
    int64_t issued = now_ns();
    CHECK(p_ncclAllReduce(buf, buf, count, ncclFloat, ncclSum, comm, s));
    CHECK(p_cudaStreamSynchronize(s));
    int64_t done = now_ns();
    printf("rank %d t0 %lld\nrank %d issued %lld\nrank %d done %lld\n", rank, (long long)t0, rank,
           (long long)issued, rank, (long long)done);
}

static void scenario_split(ncclComm_t comm, cudaStream_t s)
{
    ncclComm_t half;
    CHECK(p_ncclCommSplit(comm, rank % 2, -rank, &half, NULL));
    int count = 0, new_rank = -1;
    CHECK(p_ncclCommCount(half, &count));
    CHECK(p_ncclCommUserRank(half, &new_rank));
    float one = (float)rank, sum = 0;
    float *d = device_floats(&one, 1);
    CHECK(p_ncclAllReduce(d, d, 1, ncclFloat, ncclSum, half, s));
    read_floats(&sum, d, 1);
    printf("rank %d split_size %d\nrank %d split_rank %d\nrank %d split_sum %g\n", rank, count, rank, new_rank,
           rank, sum);
    CHECK(p_ncclCommDestroy(half));
}

/* An all-reduce captured in a CUDA graph: every replay is a new collective with the data the
 * buffer holds at that replay. */
static void scenario_graph(ncclComm_t comm, cudaStream_t s)
{
    float value = 0, out = 0;
    float *d = device_floats(&value, 1);
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CHECK(p_cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    CHECK(p_ncclAllReduce(d, d, 1, ncclFloat, ncclSum, comm, s));
    CHECK(p_cudaStreamEndCapture(s, &graph));
    CHECK(p_cudaGraphInstantiate(&exec, graph, 0));
    for (int replay = 1; replay <= 3; replay++) {
        value = (float)(replay * 10 + rank);
        CHECK(p_cudaMemcpy(d, &value, sizeof value, cudaMemcpyHostToDevice));
        CHECK(p_cudaGraphLaunch(exec, s));
        CHECK(p_cudaStreamSynchronize(s));
        read_floats(&out, d, 1);
        printf("rank %d graph_replay_%d %g\n", rank, replay, out);
    }
}

/* The host's time, past the shim's virtual clock (a raw syscall is not interposed). */
static int64_t host_ns(void)
{
    struct timespec ts;
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* COUNT all-reduces of BYTES, each waited for: the wall cost of a rendezvous with its sync. */
static void scenario_loop(ncclComm_t comm, cudaStream_t s, int count, size_t nbytes)
{
    float *buf = NULL;
    size_t n = nbytes / sizeof(float) > 0 ? nbytes / sizeof(float) : 1;
    CHECK(p_cudaMalloc((void **)&buf, n * sizeof(float)));
    CHECK(p_ncclAllReduce(buf, buf, n, ncclFloat, ncclSum, comm, s));   /* warm: first rendezvous */
    CHECK(p_cudaStreamSynchronize(s));
    int64_t t0 = host_ns();
    for (int i = 0; i < count; i++) {
        CHECK(p_ncclAllReduce(buf, buf, n, ncclFloat, ncclSum, comm, s));
        CHECK(p_cudaStreamSynchronize(s));
    }
    int64_t t1 = host_ns();
    printf("rank %d host_ns_per_op %.0f\n", rank, count > 0 ? (double)(t1 - t0) / count : 0.0);
}

/* Reads race the last participant's deposit: each result is read back right after the call,
 * while slower ranks are still staging theirs. Alternates sum and max into one output, so a
 * result not written leaves the previous one, which is always wrong. */
static void scenario_churn(ncclComm_t comm, cudaStream_t s, int count)
{
    enum { N = 4 };
    float mine[N], out[N];
    float *send = device_floats(NULL, N), *recv = device_floats(NULL, N);
    int wrong = 0;
    for (int i = 0; i < count; i++) {
        bool max = i % 2 == 1;
        for (int k = 0; k < N; k++)
            mine[k] = (float)((rank + 1) * 10 + i + k);
        CHECK(p_cudaMemcpy(send, mine, sizeof mine, cudaMemcpyHostToDevice));
        CHECK(p_ncclAllReduce(send, recv, N, ncclFloat, max ? ncclMax : ncclSum, comm, s));
        read_floats(out, recv, N);
        for (int k = 0; k < N; k++) {
            /* ranks hold (r + 1) * 10 + i + k, r = 0 .. nranks - 1 */
            float expect = max ? (float)(nranks * 10 + i + k)
                               : (float)(5 * nranks * (nranks + 1) + nranks * (i + k));
            if (out[k] != expect) {
                wrong++;
                break;
            }
        }
    }
    printf("rank %d churn_wrong %d of %d\n", rank, wrong, count);
}

/* A 64 MiB all-reduce on one stream and a 4 GiB memset (bandwidth-bound) issued after it on
 * another stream of the same GPU: the memset runs beside the all-reduce. Then the same memset
 * alone. */
static void scenario_overlap(ncclComm_t comm, cudaStream_t s)
{
    size_t count = 16u << 20, big = (size_t)4 << 30;
    float *buf = NULL;
    void *scratch = NULL;
    cudaStream_t compute;
    CHECK(p_cudaMalloc((void **)&buf, count * sizeof(float)));
    CHECK(p_cudaMalloc(&scratch, big));
    CHECK(p_cudaStreamCreate(&compute));
    CHECK(p_cudaDeviceSynchronize());
    CHECK(p_ncclAllReduce(buf, buf, count, ncclFloat, ncclSum, comm, s));
    CHECK(p_cudaMemsetAsync(scratch, 0, big, compute));
    CHECK(p_cudaDeviceSynchronize());
    CHECK(p_cudaMemsetAsync(scratch, 0, big, compute));
    CHECK(p_cudaDeviceSynchronize());
}

static void scenario_mismatch(ncclComm_t comm, cudaStream_t s)
{
    float *d = device_floats(NULL, 1024);
    if (rank == 0)
        CHECK(p_ncclAllReduce(d, d, 16, ncclFloat, ncclSum, comm, s));
    else
        CHECK(p_ncclAllGather(d, d, 16, ncclFloat, comm, s));
    CHECK(p_cudaStreamSynchronize(s));
    printf("rank %d mismatch_survived 1\n", rank);
}

/* Bad input, in one process: each call returns NCCL's code for it, and nothing hangs. */
static int scenario_bad(void)
{
    ncclUniqueId zero, id;
    memset(&zero, 0, sizeof zero);
    ncclComm_t comm = NULL;
    printf("rank 0 bad_unique_id %d\n", (int)p_ncclCommInitRank(&comm, 1, zero, 0));
    CHECK(p_ncclGetUniqueId(&id));
    printf("rank 0 rank_past_nranks %d\n", (int)p_ncclCommInitRank(&comm, 2, id, 5));
    CHECK(p_ncclCommInitRank(&comm, 1, id, 0));
    CHECK(p_ncclCommDestroy(comm));
    float *d = device_floats(NULL, 4);
    printf("rank 0 use_after_destroy %d\n", (int)p_ncclAllReduce(d, d, 4, ncclFloat, ncclSum, comm, 0));
    printf("rank 0 last_error_names_it %d\n", strstr(p_ncclGetLastError(comm), "ncclCommDestroy") != NULL);
    ncclComm_t shrunk = NULL;
    int exclude = 0;
    printf("rank 0 unimplemented %d\n", (int)p_ncclCommShrink(comm, &exclude, 1, &shrunk, NULL, 0));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    nranks = atoi(argv[1]);
    const char *scenario = argv[2];
    load_all();
    if (strcmp(scenario, "bad") == 0)
        return scenario_bad();
    ncclUniqueId id;
    rank = 0;
    CHECK(p_ncclGetUniqueId(&id));
    for (int r = 1; r < nranks; r++) {
        pid_t pid = fork();
        if (pid == 0) {
            rank = r;
            break;
        }
    }
    CHECK(p_cudaSetDevice(rank));
    cudaStream_t s;
    CHECK(p_cudaStreamCreate(&s));
    ncclComm_t comm;
    CHECK(p_ncclCommInitRank(&comm, nranks, id, rank));
    if (strcmp(scenario, "values") == 0)
        scenario_values(comm, s);
    else if (strcmp(scenario, "timing") == 0)
        scenario_timing(comm, s);
    else if (strcmp(scenario, "split") == 0)
        scenario_split(comm, s);
    else if (strcmp(scenario, "graph") == 0)
        scenario_graph(comm, s);
    else if (strcmp(scenario, "die") == 0 && rank == nranks - 1)
        _exit(0);   /* the last rank leaves; the others wait for it in a collective */
    else if (strcmp(scenario, "die") == 0)
        scenario_timing(comm, s);
    else if (strcmp(scenario, "mismatch") == 0)
        scenario_mismatch(comm, s);
    else if (strcmp(scenario, "overlap") == 0)
        scenario_overlap(comm, s);
    else if (strcmp(scenario, "churn") == 0 && argc >= 4)
        scenario_churn(comm, s, atoi(argv[3]));
    else if (strcmp(scenario, "loop") == 0 && argc >= 5)
        scenario_loop(comm, s, atoi(argv[3]), (size_t)atoll(argv[4]));
    CHECK(p_ncclCommDestroy(comm));
    fflush(stdout);
    if (rank == 0) {
        int failed = 0, status;
        while (wait(&status) > 0)
            failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
        return failed ? 5 : 0;
    }
    return 0;
}
