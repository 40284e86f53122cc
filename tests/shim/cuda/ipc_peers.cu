// Two processes, one GPU each, sharing memory through CUDA IPC handles (sent over a pipe):
// the bytes of a small allocation are the same in both, and a kernel that reaches into the
// peer's memory synchronises with the peer's launch of it (a kernel-level collective, as vLLM's
// custom all-reduce). A torch kernel whose by-value struct happens to hold a pointer into the
// peer's memory (an unset field: stack bytes) meets nobody. Prints `rank R key value` lines.
#include <cstdio>
#include <cstring>
#include <ctime>
#include <sys/wait.h>
#include <unistd.h>

#include <cuda_runtime.h>

#define CHECK(call)                                                                       \
    do {                                                                                  \
        cudaError_t e_ = (call);                                                          \
        if (e_ != cudaSuccess) {                                                          \
            fprintf(stderr, "rank %d: %s: %s\n", rank, #call, cudaGetErrorString(e_));    \
            return 4;                                                                     \
        }                                                                                 \
    } while (0)

__global__ void exchange(int *mine, const int *peer, int rounds)
{
    // stands for a custom all-reduce round: write my flag, read the peer's
    for (int i = 0; i < rounds; i++)
        mine[threadIdx.x] = peer[threadIdx.x] + 1;
}

namespace at {
namespace native {
// stands for ATen's reduce_kernel: a by-value ReduceOp whose unused dst[1] holds stack bytes
struct ReduceArgs {
    const float *src;
    float *dst[2];
};
__global__ void reduce_kernel(ReduceArgs args)
{
    args.dst[0][threadIdx.x] = args.src[threadIdx.x];
}
}  // namespace native
}  // namespace at

static long long now_ns()
{
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int rank;

static int run(int to_peer, int from_peer)
{
    CHECK(cudaSetDevice(rank));
    int *small = nullptr, *big = nullptr;
    CHECK(cudaMalloc(&small, 256));
    CHECK(cudaMalloc(&big, 64 << 20));
    int value = 1000 + rank;
    CHECK(cudaMemcpy(small, &value, sizeof value, cudaMemcpyHostToDevice));
    cudaIpcMemHandle_t handles[2], peer_handles[2];
    CHECK(cudaIpcGetMemHandle(&handles[0], small));
    CHECK(cudaIpcGetMemHandle(&handles[1], big));
    if (write(to_peer, handles, sizeof handles) != sizeof handles || read(from_peer, peer_handles, sizeof peer_handles) != sizeof peer_handles)
        return 5;
    int *peer_small = nullptr, *peer_big = nullptr;
    CHECK(cudaIpcOpenMemHandle((void **)&peer_small, peer_handles[0], cudaIpcMemLazyEnablePeerAccess));
    CHECK(cudaIpcOpenMemHandle((void **)&peer_big, peer_handles[1], cudaIpcMemLazyEnablePeerAccess));
    int seen = 0;
    CHECK(cudaMemcpy(&seen, peer_small, sizeof seen, cudaMemcpyDeviceToHost));
    printf("rank %d peer_value %d\n", rank, seen);
    // write into the peer's memory at offset 4, then tell it through the pipe
    int mark = 2000 + rank;
    CHECK(cudaMemcpy(peer_small + 1, &mark, sizeof mark, cudaMemcpyHostToDevice));
    char token = 'x';
    if (write(to_peer, &token, 1) != 1 || read(from_peer, &token, 1) != 1)
        return 5;
    CHECK(cudaMemcpy(&seen, small + 1, sizeof seen, cudaMemcpyDeviceToHost));
    printf("rank %d written_by_peer %d\n", rank, seen);

    // rank 0 alone: an ATen kernel whose unset field points into the peer's buffer
    if (rank == 0) {
        at::native::ReduceArgs args = {(const float *)small, {(float *)small + 8, (float *)peer_big}};
        at::native::reduce_kernel<<<1, 8>>>(args);
    }
    // rank r arrives r x 10 ms late at a kernel reading the peer's memory
    CHECK(cudaDeviceSynchronize());
    printf("rank %d t0 %lld\n", rank, now_ns());
    timespec late = {0, rank * 10000000L};
    nanosleep(&late, nullptr);
    printf("rank %d issued %lld\n", rank, now_ns());
    exchange<<<1, 32>>>(big, peer_big, 1);
    CHECK(cudaDeviceSynchronize());
    printf("rank %d done %lld\n", rank, now_ns());
    CHECK(cudaIpcCloseMemHandle(peer_small));
    CHECK(cudaIpcCloseMemHandle(peer_big));
    return 0;
}

int main()
{
    int a[2], b[2];
    if (pipe(a) != 0 || pipe(b) != 0)
        return 2;
    pid_t child = fork();
    rank = child == 0 ? 1 : 0;
    int status = rank == 0 ? run(a[1], b[0]) : run(b[1], a[0]);
    fflush(stdout);
    if (rank == 0) {
        int child_status = 0;
        waitpid(child, &child_status, 0);
        return status != 0 ? status : (WIFEXITED(child_status) ? WEXITSTATUS(child_status) : 6);
    }
    return status;
}
