/* cudart node-level graph API: cudaGraphAdd*Node, cudaGraphAddNode, node types and edges,
 * kernel-node parameters (graph and instantiated), cudaGraphExecUpdate, cudaGraphDebugDotPrint,
 * capture into an existing graph. Translates the runtime's parameter structs onto the core's
 * tw_node_params (graph_nodes.c). Conditional nodes, memory alloc/free nodes and external
 * semaphore nodes are not modelled: those calls say not-supported. */
#include <string.h>

#include <cuda_runtime_api.h>

#include "tw_core.h"

static cudaError_t rt(cudaError_t status)
{
    return (cudaError_t)tw_runtime_status(status);
}

static cudaError_t node_status(int status)
{
    return status == TW_OK ? cudaSuccess : status == TW_ERR_NOMEM ? rt(cudaErrorMemoryAllocation)
                                                                  : rt(cudaErrorInvalidValue);
}

static tw_dim3 dim(dim3 d) { return (tw_dim3){d.x, d.y, d.z}; }
static dim3 to_dim3(tw_dim3 d) { return (dim3){d.x, d.y, d.z}; }

static cudaError_t add(cudaGraphNode_t *node, cudaGraph_t graph, const cudaGraphNode_t *deps, size_t count,
                       const tw_node_params *p)
{
    if (node == NULL || graph == NULL)
        return rt(cudaErrorInvalidValue);
    return node_status(tw_graph_node_add((tw_graph *)graph, p, (void *const *)deps, count, (void **)node));
}

static void kernel_params(const struct cudaKernelNodeParams *k, tw_node_params *p)
{
    memset(p, 0, sizeof *p);
    p->type = TW_NODE_TYPE_KERNEL;
    p->kernel = tw_kernel_from_stub(k->func);
    p->grid = dim(k->gridDim);
    p->block = dim(k->blockDim);
    p->smem = k->sharedMemBytes;
    p->args = k->kernelParams;
}

TW_EXPORT cudaError_t cudaGraphAddKernelNode(cudaGraphNode_t *node, cudaGraph_t graph, const cudaGraphNode_t *deps,
                                             size_t count, const struct cudaKernelNodeParams *params)
{
    if (params == NULL)
        return rt(cudaErrorInvalidValue);
    tw_node_params p;
    kernel_params(params, &p);
    if (p.kernel == NULL)
        return rt(cudaErrorInvalidDeviceFunction);
    return add(node, graph, deps, count, &p);
}

static void memset_params(void *dst, size_t pitch, unsigned value, unsigned elem, size_t width, size_t height,
                          tw_node_params *p)
{
    memset(p, 0, sizeof *p);
    p->type = TW_NODE_TYPE_MEMSET;
    p->dst = dst;
    p->pitch = height > 1 ? pitch : width * elem;
    p->value = value;
    p->elem = elem;
    p->width = width;
    p->height = height ? height : 1;
}

TW_EXPORT cudaError_t cudaGraphAddMemsetNode(cudaGraphNode_t *node, cudaGraph_t graph, const cudaGraphNode_t *deps,
                                             size_t count, const struct cudaMemsetParams *params)
{
    if (params == NULL)
        return rt(cudaErrorInvalidValue);
    tw_node_params p;
    memset_params(params->dst, params->pitch, params->value, params->elementSize, params->width, params->height,
                  &p);
    return add(node, graph, deps, count, &p);
}

static void memcpy_params(void *dst, const void *src, size_t bytes, tw_node_params *p)
{
    memset(p, 0, sizeof *p);
    p->type = TW_NODE_TYPE_MEMCPY;
    p->dst = dst;
    p->src = src;
    p->bytes = bytes;
}

TW_EXPORT cudaError_t cudaGraphAddMemcpyNode1D(cudaGraphNode_t *node, cudaGraph_t graph,
                                               const cudaGraphNode_t *deps, size_t count, void *dst,
                                               const void *src, size_t bytes, enum cudaMemcpyKind kind)
{
    if ((unsigned)kind > cudaMemcpyDefault)
        return rt(cudaErrorInvalidMemcpyDirection);
    tw_node_params p;
    memcpy_params(dst, src, bytes, &p);
    return add(node, graph, deps, count, &p);
}

/* A linear 3D copy (pitched pointers, no arrays) whose rows are contiguous on both sides. */
static cudaError_t memcpy3d_params(const struct cudaMemcpy3DParms *c, tw_node_params *p)
{
    if (c == NULL || c->srcArray != NULL || c->dstArray != NULL)
        return rt(cudaErrorInvalidValue);
    size_t row = c->extent.width;
    if ((c->srcPtr.pitch != row && c->extent.height * c->extent.depth > 1) ||
        (c->dstPtr.pitch != row && c->extent.height * c->extent.depth > 1) || c->srcPos.x || c->srcPos.y ||
        c->srcPos.z || c->dstPos.x || c->dstPos.y || c->dstPos.z) {
        tw_unimplemented("cudaGraphAddMemcpyNode(pitched or offset)");
        return rt(cudaErrorNotSupported);
    }
    memcpy_params(c->dstPtr.ptr, c->srcPtr.ptr, row * c->extent.height * c->extent.depth, p);
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaGraphAddMemcpyNode(cudaGraphNode_t *node, cudaGraph_t graph, const cudaGraphNode_t *deps,
                                             size_t count, const struct cudaMemcpy3DParms *params)
{
    tw_node_params p;
    cudaError_t st = memcpy3d_params(params, &p);
    return st != cudaSuccess ? st : add(node, graph, deps, count, &p);
}

TW_EXPORT cudaError_t cudaGraphAddHostNode(cudaGraphNode_t *node, cudaGraph_t graph, const cudaGraphNode_t *deps,
                                           size_t count, const struct cudaHostNodeParams *params)
{
    if (params == NULL)
        return rt(cudaErrorInvalidValue);
    tw_node_params p = {.type = TW_NODE_TYPE_HOST, .fn = params->fn, .data = params->userData};
    return add(node, graph, deps, count, &p);
}

TW_EXPORT cudaError_t cudaGraphAddEmptyNode(cudaGraphNode_t *node, cudaGraph_t graph, const cudaGraphNode_t *deps,
                                            size_t count)
{
    tw_node_params p = {.type = TW_NODE_TYPE_EMPTY};
    return add(node, graph, deps, count, &p);
}

TW_EXPORT cudaError_t cudaGraphAddEventRecordNode(cudaGraphNode_t *node, cudaGraph_t graph,
                                                  const cudaGraphNode_t *deps, size_t count, cudaEvent_t event)
{
    tw_node_params p = {.type = TW_NODE_TYPE_EVENT_RECORD, .event = (tw_event *)event};
    return add(node, graph, deps, count, &p);
}

TW_EXPORT cudaError_t cudaGraphAddEventWaitNode(cudaGraphNode_t *node, cudaGraph_t graph,
                                                const cudaGraphNode_t *deps, size_t count, cudaEvent_t event)
{
    tw_node_params p = {.type = TW_NODE_TYPE_WAIT_EVENT, .event = (tw_event *)event};
    return add(node, graph, deps, count, &p);
}

TW_EXPORT cudaError_t cudaGraphAddChildGraphNode(cudaGraphNode_t *node, cudaGraph_t graph,
                                                 const cudaGraphNode_t *deps, size_t count, cudaGraph_t child)
{
    tw_node_params p = {.type = TW_NODE_TYPE_GRAPH, .child = (tw_graph *)child};
    return add(node, graph, deps, count, &p);
}

/* The generic form (CUDA 12.2+): the node types above; the others are not modelled. */
TW_EXPORT cudaError_t cudaGraphAddNode(cudaGraphNode_t *node, cudaGraph_t graph, const cudaGraphNode_t *deps,
                                       const cudaGraphEdgeData *edges, size_t count,
                                       struct cudaGraphNodeParams *params)
{
    if (params == NULL)
        return rt(cudaErrorInvalidValue);
    tw_node_params p = {0};
    switch (params->type) {
    case cudaGraphNodeTypeKernel: {
        struct cudaKernelNodeParams k = {params->kernel.func, params->kernel.gridDim, params->kernel.blockDim,
                                         params->kernel.sharedMemBytes, params->kernel.kernelParams,
                                         params->kernel.extra};
        return cudaGraphAddKernelNode(node, graph, deps, count, &k);
    }
    case cudaGraphNodeTypeMemcpy: {
        cudaError_t st = memcpy3d_params(&params->memcpy.copyParams, &p);
        return st != cudaSuccess ? st : add(node, graph, deps, count, &p);
    }
    case cudaGraphNodeTypeMemset:
        memset_params(params->memset.dst, params->memset.pitch, params->memset.value, params->memset.elementSize,
                      params->memset.width, params->memset.height, &p);
        return add(node, graph, deps, count, &p);
    case cudaGraphNodeTypeHost:
        p = (tw_node_params){.type = TW_NODE_TYPE_HOST, .fn = params->host.fn, .data = params->host.userData};
        return add(node, graph, deps, count, &p);
    case cudaGraphNodeTypeGraph: return cudaGraphAddChildGraphNode(node, graph, deps, count, params->graph.graph);
    case cudaGraphNodeTypeEmpty: return cudaGraphAddEmptyNode(node, graph, deps, count);
    case cudaGraphNodeTypeWaitEvent: return cudaGraphAddEventWaitNode(node, graph, deps, count, params->eventWait.event);
    case cudaGraphNodeTypeEventRecord:
        return cudaGraphAddEventRecordNode(node, graph, deps, count, params->eventRecord.event);
    default:
        tw_unimplemented("cudaGraphAddNode(conditional, memory or semaphore node)");
        return rt(cudaErrorNotSupported);
    }
}

TW_EXPORT cudaError_t cudaGraphNodeGetType(cudaGraphNode_t node, enum cudaGraphNodeType *type)
{
    tw_node_params p;
    if (type == NULL || tw_graph_node_get(node, &p) != TW_OK)
        return rt(cudaErrorInvalidValue);
    *type = (enum cudaGraphNodeType)(p.type - 1); /* tw_node_type numbers them from 1 */
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaGraphKernelNodeGetParams(cudaGraphNode_t node, struct cudaKernelNodeParams *params)
{
    tw_node_params p;
    if (params == NULL || tw_graph_node_get(node, &p) != TW_OK || p.type != TW_NODE_TYPE_KERNEL)
        return rt(cudaErrorInvalidValue);
    memset(params, 0, sizeof *params);
    params->func = (void *)p.kernel; /* the kernel handle (NULL for a captured launch) */
    params->gridDim = to_dim3(p.grid);
    params->blockDim = to_dim3(p.block);
    params->sharedMemBytes = p.smem;
    return cudaSuccess;
}

TW_EXPORT cudaError_t cudaGraphKernelNodeSetParams(cudaGraphNode_t node, const struct cudaKernelNodeParams *params)
{
    if (params == NULL)
        return rt(cudaErrorInvalidValue);
    tw_node_params p;
    kernel_params(params, &p);
    if (p.kernel == NULL)
        return rt(cudaErrorInvalidDeviceFunction);
    return node_status(tw_graph_node_set(node, &p));
}

TW_EXPORT cudaError_t cudaGraphExecKernelNodeSetParams(cudaGraphExec_t exec, cudaGraphNode_t node,
                                                       const struct cudaKernelNodeParams *params)
{
    if (params == NULL)
        return rt(cudaErrorInvalidValue);
    tw_node_params p;
    kernel_params(params, &p);
    if (p.kernel == NULL)
        return rt(cudaErrorInvalidDeviceFunction);
    return node_status(tw_graph_exec_node_set((tw_graph_exec *)exec, node, &p));
}

static cudaError_t edges(cudaGraphNode_t node, bool dependents, cudaGraphNode_t *out, cudaGraphEdgeData *data,
                         size_t *count)
{
    if (count == NULL)
        return rt(cudaErrorInvalidValue);
    int status = tw_graph_node_edges(node, dependents, (void **)out, count);
    if (status == TW_OK && data != NULL && out != NULL)
        memset(data, 0, *count * sizeof *data); /* default edges */
    return node_status(status);
}

TW_EXPORT cudaError_t cudaGraphNodeGetDependencies(cudaGraphNode_t node, cudaGraphNode_t *deps,
                                                   cudaGraphEdgeData *data, size_t *count)
{
    return edges(node, false, deps, data, count);
}

TW_EXPORT cudaError_t cudaGraphNodeGetDependentNodes(cudaGraphNode_t node, cudaGraphNode_t *dependents,
                                                     cudaGraphEdgeData *data, size_t *count)
{
    return edges(node, true, dependents, data, count);
}

TW_EXPORT cudaError_t cudaGraphAddDependencies(cudaGraph_t graph, const cudaGraphNode_t *from,
                                               const cudaGraphNode_t *to, const cudaGraphEdgeData *data,
                                               size_t count)
{
    return node_status(tw_graph_add_dependencies((tw_graph *)graph, (void *const *)from, (void *const *)to, count));
}

TW_EXPORT cudaError_t cudaGraphExecUpdate(cudaGraphExec_t exec, cudaGraph_t graph,
                                          cudaGraphExecUpdateResultInfo *info)
{
    if (exec == NULL || graph == NULL)
        return rt(cudaErrorInvalidValue);
    void *error_node = NULL;
    int status = tw_graph_exec_update((tw_graph_exec *)exec, (tw_graph *)graph, &error_node);
    if (info != NULL) {
        memset(info, 0, sizeof *info);
        info->result = status == TW_OK ? cudaGraphExecUpdateSuccess : cudaGraphExecUpdateErrorTopologyChanged;
        info->errorNode = (cudaGraphNode_t)error_node;
    }
    return status == TW_OK ? cudaSuccess : rt(cudaErrorGraphExecUpdateFailure);
}

TW_EXPORT cudaError_t cudaGraphDebugDotPrint(cudaGraph_t graph, const char *path, unsigned int flags)
{
    int status = tw_graph_dot_print((tw_graph *)graph, path);
    return status == TW_OK ? cudaSuccess : status == TW_ERR_NOT_FOUND ? rt(cudaErrorOperatingSystem)
                                                                      : rt(cudaErrorInvalidValue);
}

static int core_mode(enum cudaStreamCaptureMode mode)
{
    return mode == cudaStreamCaptureModeThreadLocal ? TW_CAPTURE_THREAD_LOCAL
           : mode == cudaStreamCaptureModeRelaxed   ? TW_CAPTURE_RELAXED
                                                    : TW_CAPTURE_GLOBAL;
}

TW_EXPORT cudaError_t cudaStreamBeginCaptureToGraph(cudaStream_t stream, cudaGraph_t graph,
                                                    const cudaGraphNode_t *deps, const cudaGraphEdgeData *data,
                                                    size_t count, enum cudaStreamCaptureMode mode)
{
    if ((uintptr_t)stream <= 1)
        return rt(cudaErrorStreamCaptureUnsupported);
    if (graph == NULL || (unsigned)mode > cudaStreamCaptureModeRelaxed || (count > 0 && deps == NULL))
        return rt(cudaErrorInvalidValue);
    int status = tw_capture_begin_to_graph(tw_stream_resolve(stream), (tw_graph *)graph, (void *const *)deps, count,
                                           core_mode(mode));
    return status == TW_OK ? cudaSuccess : status == TW_ERR_NOMEM ? rt(cudaErrorMemoryAllocation)
                                                                  : rt(cudaErrorIllegalState);
}

TW_EXPORT cudaError_t cudaStreamUpdateCaptureDependencies(cudaStream_t stream, cudaGraphNode_t *deps,
                                                          const cudaGraphEdgeData *data, size_t count,
                                                          unsigned int flags)
{
    if (flags > cudaStreamSetCaptureDependencies || (count > 0 && deps == NULL))
        return rt(cudaErrorInvalidValue);
    tw_stream *s = tw_stream_resolve(stream);
    if (tw_stream_capture_graph(s) == NULL)
        return rt(cudaErrorIllegalState);
    return node_status(tw_capture_set_dependencies(s, (void *const *)deps, count,
                                                   flags == cudaStreamAddCaptureDependencies));
}
