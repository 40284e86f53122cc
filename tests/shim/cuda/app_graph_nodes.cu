// Node-level graph construction: kernel, memset, memcpy, host, empty, child-graph and event
// nodes, edges added afterwards (also forward ones, and a refused cycle), kernel-node
// parameters on the graph and on the instantiated graph, cudaGraphExecUpdate, a DOT dump, and
// capture into an existing graph. argv[1]: where the DOT dump goes. Prints RESULT key=value lines.
#include <cstdio>
#include <cstring>
#include <cuda_runtime.h>

#include "check.h"

__global__ void node_first(float *y, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] = 1.0f;
}

__global__ void node_second(float *y, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] += 1.0f;
}

__global__ void node_child(float *y, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] *= 2.0f;
}

static int host_runs;
static void count_run(void *) { host_runs++; }

static cudaKernelNodeParams kernel(void *func, unsigned grid, void **args) {
    cudaKernelNodeParams p;
    memset(&p, 0, sizeof p);
    p.func = func;
    p.gridDim = dim3(grid);
    p.blockDim = dim3(256);
    p.kernelParams = args;
    return p;
}

int main(int argc, char **argv) {
    const size_t n = 1 << 24; // 64 MiB: kernels of tens of microseconds
    float *big = NULL;
    unsigned char *small_a = NULL, *small_b = NULL;
    CHECK(cudaMalloc(&big, n * sizeof(float)));
    CHECK(cudaMalloc(&small_a, 4096));
    CHECK(cudaMalloc(&small_b, 4096));
    size_t count = n;
    void *args[] = {&big, &count};
    const unsigned grid = (unsigned)(n / 256);

    cudaGraph_t g;
    CHECK(cudaGraphCreate(&g, 0));
    // `second` is made first and without dependencies; the edge first -> second comes later
    cudaGraphNode_t second, first, set, copy, host, empty, child_node, record;
    cudaKernelNodeParams p2 = kernel((void *)node_second, grid, args);
    cudaKernelNodeParams p1 = kernel((void *)node_first, grid, args);
    CHECK(cudaGraphAddKernelNode(&second, g, NULL, 0, &p2));
    CHECK(cudaGraphAddKernelNode(&first, g, NULL, 0, &p1));
    CHECK(cudaGraphAddDependencies(g, &first, &second, NULL, 1));
    int cycle = cudaGraphAddDependencies(g, &second, &first, NULL, 1);
    cudaGetLastError();
    cudaMemsetParams ms;
    memset(&ms, 0, sizeof ms);
    ms.dst = small_a;
    ms.value = 0x5a;
    ms.elementSize = 1;
    ms.width = 4096;
    ms.height = 1;
    CHECK(cudaGraphAddMemsetNode(&set, g, &second, 1, &ms));
    CHECK(cudaGraphAddMemcpyNode1D(&copy, g, &set, 1, small_b, small_a, 4096, cudaMemcpyDeviceToDevice));
    cudaHostNodeParams hp = {count_run, NULL};
    CHECK(cudaGraphAddHostNode(&host, g, &copy, 1, &hp));
    CHECK(cudaGraphAddEmptyNode(&empty, g, &host, 1));
    cudaGraph_t child;
    CHECK(cudaGraphCreate(&child, 0));
    cudaGraphNode_t c1, c2;
    cudaKernelNodeParams pc = kernel((void *)node_child, grid, args);
    CHECK(cudaGraphAddKernelNode(&c1, child, NULL, 0, &pc));
    CHECK(cudaGraphAddKernelNode(&c2, child, &c1, 1, &pc));
    CHECK(cudaGraphAddChildGraphNode(&child_node, g, &empty, 1, child));
    cudaEvent_t done;
    CHECK(cudaEventCreate(&done));
    CHECK(cudaGraphAddEventRecordNode(&record, g, &child_node, 1, done));

    enum cudaGraphNodeType types[6];
    cudaGraphNode_t typed[6] = {second, set, copy, host, empty, child_node};
    for (int i = 0; i < 6; i++)
        CHECK(cudaGraphNodeGetType(typed[i], &types[i]));
    printf("RESULT cycle=%d types=%d,%d,%d,%d,%d,%d\n", cycle, types[0], types[1], types[2], types[3], types[4],
           types[5]);
    size_t deps = 0, dependents = 0;
    CHECK(cudaGraphNodeGetDependencies(second, NULL, NULL, &deps));
    CHECK(cudaGraphNodeGetDependentNodes(first, NULL, NULL, &dependents));
    cudaGraphNode_t dep_of_second = NULL;
    size_t one = 1;
    CHECK(cudaGraphNodeGetDependencies(second, &dep_of_second, NULL, &one));
    printf("RESULT second_deps=%zu first_dependents=%zu dep_is_first=%d\n", deps, dependents, dep_of_second == first);
    cudaKernelNodeParams got;
    CHECK(cudaGraphKernelNodeGetParams(second, &got));
    printf("RESULT got_grid=%u got_block=%u\n", got.gridDim.x, got.blockDim.x);
    CHECK(cudaGraphDebugDotPrint(g, argc > 1 ? argv[1] : "graph_nodes.dot", 0));

    cudaStream_t s;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    cudaGraphExec_t exec;
    CHECK(cudaGraphInstantiate(&exec, g, 0));
    CHECK(cudaMemset(small_b, 0, 4096));
    CHECK(cudaDeviceSynchronize());
    for (int i = 0; i < 3; i++)
        CHECK(cudaGraphLaunch(exec, s));
    CHECK(cudaStreamSynchronize(s));
    unsigned char back[4096];
    CHECK(cudaMemcpy(back, small_b, 4096, cudaMemcpyDeviceToHost));
    int copied = 1;
    for (int i = 0; i < 4096; i++)
        copied &= back[i] == 0x5a;
    printf("RESULT host_runs=%d copied=%d event_done=%d\n", host_runs, copied, cudaEventQuery(done) == cudaSuccess);

    // the instantiated graph takes a new grid for `second`; the graph itself keeps its own
    cudaKernelNodeParams half = kernel((void *)node_second, grid / 2, args);
    CHECK(cudaGraphExecKernelNodeSetParams(exec, second, &half));
    CHECK(cudaGraphLaunch(exec, s));
    CHECK(cudaStreamSynchronize(s));
    CHECK(cudaGraphKernelNodeGetParams(second, &got));
    printf("RESULT graph_grid_after_exec_set=%u\n", got.gridDim.x);

    // an update from a graph of the same shape; a graph of another shape is refused
    cudaKernelNodeParams quarter = kernel((void *)node_second, grid / 4, args);
    CHECK(cudaGraphKernelNodeSetParams(second, &quarter));
    cudaGraphExecUpdateResultInfo info;
    int same_shape = cudaGraphExecUpdate(exec, g, &info);
    int same_result = info.result;
    CHECK(cudaGraphLaunch(exec, s));
    CHECK(cudaStreamSynchronize(s));
    cudaGraph_t other;
    CHECK(cudaGraphCreate(&other, 0));
    cudaGraphNode_t lone;
    CHECK(cudaGraphAddKernelNode(&lone, other, NULL, 0, &p1));
    int other_shape = cudaGraphExecUpdate(exec, other, &info);
    cudaGetLastError();
    printf("RESULT update_same=%d update_same_result=%d update_other=%d update_other_result=%d\n", same_shape,
           same_result, other_shape, (int)info.result);

    // capture into the existing graph after `record`; then depend on nothing
    size_t before = 0, after = 0;
    CHECK(cudaGraphGetNodes(g, NULL, &before));
    CHECK(cudaStreamBeginCaptureToGraph(s, g, &record, NULL, 1, cudaStreamCaptureModeGlobal));
    node_child<<<grid, 256, 0, s>>>(big, n);
    CHECK(cudaStreamUpdateCaptureDependencies(s, NULL, NULL, 0, cudaStreamSetCaptureDependencies));
    node_child<<<grid, 256, 0, s>>>(big, n);
    cudaGraph_t returned = NULL;
    CHECK(cudaStreamEndCapture(s, &returned));
    CHECK(cudaGraphGetNodes(g, NULL, &after));
    cudaGraphNode_t all[32];
    size_t total = 32;
    CHECK(cudaGraphGetNodes(g, all, &total));
    size_t captured_deps[2] = {0, 0};
    CHECK(cudaGraphNodeGetDependencies(all[total - 2], NULL, NULL, &captured_deps[0]));
    CHECK(cudaGraphNodeGetDependencies(all[total - 1], NULL, NULL, &captured_deps[1]));
    printf("RESULT capture_to_graph_same=%d added=%zu deps=%zu,%zu\n", returned == g, after - before,
           captured_deps[0], captured_deps[1]);
    return 0;
}
