"""Calls the shim's cuBLAS / cuBLASLt / cuDNN / cuFFT exports through ctypes, as a framework
would, so tests/shim/test_libraries.py can check the records they leave. Run under
LD_PRELOAD=libtimewarp.so with TIMEWARP_RUN_DIR set; argv[1] names the scenario.
Prints `key=value` lines the test reads (statuses, heuristic results)."""

from __future__ import annotations

import ctypes as C
import sys

LIB = C.CDLL(None)  # the preloaded shim's exports
c_void_pp = C.POINTER(C.c_void_p)

# vendor enum values used below (cublas_api.h, library_types.h, cublasLt.h, cudnn_graph.h)
CUDA_R_16F, CUDA_R_32F, CUDA_R_16BF = 2, 0, 14
CUBLAS_COMPUTE_32F = 68
CUBLAS_OP_N, CUBLAS_OP_T = 0, 1
LT_DESC_TRANSA, LT_DESC_EPILOGUE = 3, 7
LT_EPILOGUE_BIAS = 4
LT_PREF_MAX_WORKSPACE = 1
LT_LAYOUT_BATCH_COUNT = 5


def out(key: str, value: object) -> None:
    print(f"{key}={value}", flush=True)


def sync() -> None:
    LIB.cudaDeviceSynchronize()


def gemm_ex() -> None:
    h = C.c_void_p()
    out("create", LIB.cublasCreate_v2(C.byref(h)))
    alpha, beta = C.c_float(1.0), C.c_float(0.0)
    a, b, c = C.c_void_p(0x1000), C.c_void_p(0x2000), C.c_void_p(0x3000)
    # C(m=64 x n=32) = A^T(64 x 128) B(128 x 32), fp16 in/out, fp32 compute
    st = LIB.cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, 64, 32, 128, C.byref(alpha), a, CUDA_R_16F, 128,
                          b, CUDA_R_16F, 128, C.byref(beta), c, CUDA_R_16F, 64, CUBLAS_COMPUTE_32F, -1)
    out("gemm", st)
    sync()
    out("destroy", LIB.cublasDestroy_v2(h))


def lt_matmul() -> None:
    lt = C.c_void_p()
    out("create", LIB.cublasLtCreate(C.byref(lt)))
    op = C.c_void_p()
    LIB.cublasLtMatmulDescCreate(C.byref(op), CUBLAS_COMPUTE_32F, CUDA_R_32F)
    trans = C.c_int32(CUBLAS_OP_T)
    out("set_transa", LIB.cublasLtMatmulDescSetAttribute(op, LT_DESC_TRANSA, C.byref(trans), 4))
    epi = C.c_uint32(LT_EPILOGUE_BIAS)
    out("set_epilogue", LIB.cublasLtMatmulDescSetAttribute(op, LT_DESC_EPILOGUE, C.byref(epi), 4))
    got, written = C.c_uint32(0), C.c_size_t(0)
    LIB.cublasLtMatmulDescGetAttribute(op, LT_DESC_EPILOGUE, C.byref(got), 4, C.byref(written))
    out("get_epilogue", got.value)
    # m=96, n=48, k=256, batch 3: A stored k x m (transposed), B k x n, D m x n
    la, lb, ld = C.c_void_p(), C.c_void_p(), C.c_void_p()
    LIB.cublasLtMatrixLayoutCreate(C.byref(la), CUDA_R_16BF, C.c_uint64(256), C.c_uint64(96), C.c_int64(256))
    LIB.cublasLtMatrixLayoutCreate(C.byref(lb), CUDA_R_16BF, C.c_uint64(256), C.c_uint64(48), C.c_int64(256))
    LIB.cublasLtMatrixLayoutCreate(C.byref(ld), CUDA_R_16BF, C.c_uint64(96), C.c_uint64(48), C.c_int64(96))
    batch = C.c_int32(3)
    for layout in (la, lb, ld):
        LIB.cublasLtMatrixLayoutSetAttribute(layout, LT_LAYOUT_BATCH_COUNT, C.byref(batch), 4)
    pref = C.c_void_p()
    LIB.cublasLtMatmulPreferenceCreate(C.byref(pref))
    max_ws = C.c_uint64(1 << 20)
    LIB.cublasLtMatmulPreferenceSetAttribute(pref, LT_PREF_MAX_WORKSPACE, C.byref(max_ws), 8)

    class Heur(C.Structure):
        _fields_ = [("algo", C.c_uint64 * 8), ("workspace", C.c_size_t), ("state", C.c_int),
                    ("waves", C.c_float), ("reserved", C.c_int * 4)]

    results = (Heur * 4)()
    count = C.c_int(0)
    st = LIB.cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, ld, ld, pref, 4, results, C.byref(count))
    out("heuristic", st)
    out("heuristic_count", count.value)
    out("heuristic_state", results[0].state)
    out("heuristic_workspace", results[0].workspace)
    out("heuristic_waves", results[0].waves)
    alpha, beta = C.c_float(1.0), C.c_float(0.0)
    st = LIB.cublasLtMatmul(lt, op, C.byref(alpha), C.c_void_p(0x1000), la, C.c_void_p(0x2000), lb,
                            C.byref(beta), C.c_void_p(0x3000), ld, C.c_void_p(0x3000), ld,
                            C.byref(results[0].algo), None, C.c_size_t(0), None)
    out("matmul", st)
    sync()


# ---- cuDNN backend
CUDNN_TYPE_HANDLE, CUDNN_TYPE_DATA_TYPE, CUDNN_TYPE_BOOLEAN, CUDNN_TYPE_INT64 = 0, 1, 2, 3
CUDNN_TYPE_FLOAT, CUDNN_TYPE_CONVOLUTION_MODE, CUDNN_TYPE_HEUR_MODE = 4, 7, 8
CUDNN_TYPE_BACKEND_DESCRIPTOR, CUDNN_TYPE_CHAR = 15, 24
CUDNN_DATA_HALF, CUDNN_DATA_FLOAT = 2, 0
D_CONV, D_ENGINE, D_ENGINECFG, D_HEUR, D_PLAN = 1, 2, 3, 4, 5
D_OP_CONV_FWD, D_OPGRAPH, D_VARPACK, D_TENSOR = 10, 15, 16, 17
A_CONV_COMP, A_CONV_MODE, A_CONV_DIL, A_CONV_STRIDES, A_CONV_POST, A_CONV_PRE, A_CONV_NDIM = range(100, 107)
A_HEUR_MODE, A_HEUR_GRAPH, A_HEUR_RESULTS = 200, 201, 202
A_CFG_ENGINE = 300
A_PLAN_HANDLE, A_PLAN_CFG, A_PLAN_WS, A_PLAN_JSON = 400, 401, 402, 405
A_FWD_ALPHA, A_FWD_BETA, A_FWD_CONV, A_FWD_W, A_FWD_X, A_FWD_Y = range(700, 706)
A_GRAPH_HANDLE, A_GRAPH_OPS, A_GRAPH_COUNT = 800, 801, 802
A_T_ALIGN, A_T_DTYPE, A_T_DIMS, A_T_STRIDES, A_T_UID, A_T_VIRTUAL = 900, 901, 902, 903, 906, 907
A_VP_UIDS, A_VP_PTRS, A_VP_WS = 1000, 1001, 1003
A_ENGINE_GRAPH, A_ENGINE_INDEX = 1300, 1301


def check(st: int, what: str) -> None:
    if st != 0:
        out("error", f"{what}:{st}")
        sys.exit(1)


def make(kind: int) -> C.c_void_p:
    d = C.c_void_p()
    check(LIB.cudnnBackendCreateDescriptor(kind, C.byref(d)), f"create{kind}")
    return d


def set_i64(d: C.c_void_p, attr: int, values: list[int]) -> None:
    arr = (C.c_int64 * len(values))(*values)
    check(LIB.cudnnBackendSetAttribute(d, attr, CUDNN_TYPE_INT64, C.c_int64(len(values)), arr), f"set{attr}")


def set_i32(d: C.c_void_p, attr: int, type_: int, value: int) -> None:
    v = C.c_int32(value)
    check(LIB.cudnnBackendSetAttribute(d, attr, type_, C.c_int64(1), C.byref(v)), f"set{attr}")


def set_descs(d: C.c_void_p, attr: int, descs: list[C.c_void_p]) -> None:
    arr = (C.c_void_p * len(descs))(*[x.value for x in descs])
    check(LIB.cudnnBackendSetAttribute(d, attr, CUDNN_TYPE_BACKEND_DESCRIPTOR, C.c_int64(len(descs)), arr),
          f"set{attr}")


def tensor(uid: int, dims: list[int]) -> C.c_void_p:
    t = make(D_TENSOR)
    strides = [0] * len(dims)
    acc = 1
    for i in reversed(range(len(dims))):
        strides[i] = acc
        acc *= dims[i]
    set_i32(t, A_T_DTYPE, CUDNN_TYPE_DATA_TYPE, CUDNN_DATA_HALF)
    set_i64(t, A_T_DIMS, dims)
    set_i64(t, A_T_STRIDES, strides)
    set_i64(t, A_T_UID, [uid])
    set_i64(t, A_T_ALIGN, [16])
    check(LIB.cudnnBackendFinalize(t), "tensor")
    return t


def conv_fwd() -> None:
    h = C.c_void_p()
    check(LIB.cudnnCreate(C.byref(h)), "cudnnCreate")
    # x [8, 64, 56, 56], w [128, 64, 3, 3], stride 1 pad 1 -> y [8, 128, 56, 56]
    x, w, y = tensor(1, [8, 64, 56, 56]), tensor(2, [128, 64, 3, 3]), tensor(3, [8, 128, 56, 56])
    conv = make(D_CONV)
    set_i32(conv, A_CONV_COMP, CUDNN_TYPE_DATA_TYPE, CUDNN_DATA_FLOAT)
    set_i32(conv, A_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1)
    set_i64(conv, A_CONV_NDIM, [2])
    set_i64(conv, A_CONV_DIL, [1, 1])
    set_i64(conv, A_CONV_STRIDES, [1, 1])
    set_i64(conv, A_CONV_PRE, [1, 1])
    set_i64(conv, A_CONV_POST, [1, 1])
    check(LIB.cudnnBackendFinalize(conv), "conv")
    op = make(D_OP_CONV_FWD)
    set_descs(op, A_FWD_X, [x])
    set_descs(op, A_FWD_W, [w])
    set_descs(op, A_FWD_Y, [y])
    set_descs(op, A_FWD_CONV, [conv])
    alpha, beta = C.c_float(1.0), C.c_float(0.0)
    check(LIB.cudnnBackendSetAttribute(op, A_FWD_ALPHA, CUDNN_TYPE_FLOAT, C.c_int64(1), C.byref(alpha)), "a")
    check(LIB.cudnnBackendSetAttribute(op, A_FWD_BETA, CUDNN_TYPE_FLOAT, C.c_int64(1), C.byref(beta)), "b")
    check(LIB.cudnnBackendFinalize(op), "op")
    graph = make(D_OPGRAPH)
    check(LIB.cudnnBackendSetAttribute(graph, A_GRAPH_HANDLE, CUDNN_TYPE_HANDLE, C.c_int64(1), C.byref(h)), "gh")
    set_descs(graph, A_GRAPH_OPS, [op])
    check(LIB.cudnnBackendFinalize(graph), "graph")
    count = C.c_int64(0)
    gcount = C.c_int64(0)
    check(LIB.cudnnBackendGetAttribute(graph, A_GRAPH_COUNT, CUDNN_TYPE_INT64, C.c_int64(1), C.byref(count),
                                       C.byref(gcount)), "global_count")
    out("engine_global_count", gcount.value)
    heur = make(D_HEUR)
    set_descs(heur, A_HEUR_GRAPH, [graph])
    set_i32(heur, A_HEUR_MODE, CUDNN_TYPE_HEUR_MODE, 0)
    check(LIB.cudnnBackendFinalize(heur), "heur")
    check(LIB.cudnnBackendGetAttribute(heur, A_HEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, C.c_int64(0),
                                       C.byref(count), None), "results_count")
    out("heuristic_count", count.value)
    cfgs = [make(D_ENGINECFG) for _ in range(count.value)]
    arr = (C.c_void_p * len(cfgs))(*[c.value for c in cfgs])
    check(LIB.cudnnBackendGetAttribute(heur, A_HEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                       C.c_int64(len(cfgs)), C.byref(count), arr), "results")
    engine = make(D_ENGINE)
    earr = (C.c_void_p * 1)(engine.value)
    check(LIB.cudnnBackendGetAttribute(cfgs[0], A_CFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, C.c_int64(1),
                                       C.byref(count), earr), "cfg_engine")
    index = C.c_int64(-1)
    check(LIB.cudnnBackendGetAttribute(engine, A_ENGINE_INDEX, CUDNN_TYPE_INT64, C.c_int64(1), C.byref(count),
                                       C.byref(index)), "engine_index")
    out("engine_index", index.value)
    plan = make(D_PLAN)
    check(LIB.cudnnBackendSetAttribute(plan, A_PLAN_HANDLE, CUDNN_TYPE_HANDLE, C.c_int64(1), C.byref(h)), "ph")
    set_descs(plan, A_PLAN_CFG, [cfgs[0]])
    check(LIB.cudnnBackendFinalize(plan), "plan")
    ws = C.c_int64(-1)
    check(LIB.cudnnBackendGetAttribute(plan, A_PLAN_WS, CUDNN_TYPE_INT64, C.c_int64(1), C.byref(count),
                                       C.byref(ws)), "plan_ws")
    out("plan_workspace", ws.value)
    json = C.create_string_buffer(256)
    check(LIB.cudnnBackendGetAttribute(plan, A_PLAN_JSON, CUDNN_TYPE_CHAR, C.c_int64(256), C.byref(count),
                                       json), "plan_json")
    out("plan_json", json.value.decode())
    # the caller may drop everything but the plan: the plan keeps its graph alive
    for d in (x, w, y, conv, op, graph, heur, engine, *cfgs):
        check(LIB.cudnnBackendDestroyDescriptor(d), "destroy")
    vp = make(D_VARPACK)
    set_i64(vp, A_VP_UIDS, [1, 2, 3])
    ptrs = (C.c_void_p * 3)(0x1000, 0x2000, 0x3000)
    check(LIB.cudnnBackendSetAttribute(vp, A_VP_PTRS, 6, C.c_int64(3), ptrs), "vp_ptrs")
    check(LIB.cudnnBackendFinalize(vp), "vp")
    out("execute", LIB.cudnnBackendExecute(h, plan, vp))
    sync()


def fft() -> None:
    plan = C.c_int(0)
    out("create", LIB.cufftCreate(C.byref(plan)))
    out("auto", LIB.cufftSetAutoAllocation(plan, 0))
    n = (C.c_longlong * 2)(64, 128)
    ws = C.c_size_t(0)
    # C2C single precision: CUDA_C_32F = 4
    st = LIB.cufftXtMakePlanMany(plan, 2, n, None, C.c_longlong(1), C.c_longlong(0), 4, None,
                                 C.c_longlong(1), C.c_longlong(0), 4, C.c_longlong(5), C.byref(ws), 4)
    out("make", st)
    out("workspace", ws.value)
    out("workarea", LIB.cufftSetWorkArea(plan, C.c_void_p(0x4000)))
    out("exec", LIB.cufftXtExec(plan, C.c_void_p(0x1000), C.c_void_p(0x2000), -1))
    sync()
    out("destroy", LIB.cufftDestroy(plan))


if __name__ == "__main__":
    {"gemm_ex": gemm_ex, "lt_matmul": lt_matmul, "conv_fwd": conv_fwd, "fft": fft}[sys.argv[1]]()
