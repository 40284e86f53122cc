"""Runtime calls through cuda-python's `cuda.bindings.runtime`, which carries a statically linked
CUDA runtime: it reaches the driver through cuGetExportTable (shim/src/api_driver_export.c)
rather than through libcudart. Prints `RESULT key=value` lines for tests/shim/test_export_tables.py.

    python static_runtime_program.py CUBIN   (a cubin of tests/shim/cuda/drv_kernels.cu)
    python static_runtime_program.py lookup  (cuGetExportTable found by symbol and by entry point)
"""

from __future__ import annotations

import ctypes
import sys

from cuda.bindings import runtime as rt

N_FLOATS = 1024        # the kernel's array: 4 KiB, host-backed
BLOCK = 128


def ok(result):  # noqa: ANN001, ANN201 - cuda-python's (status, values...) tuples
    status = result[0] if isinstance(result, tuple) else result
    if status != rt.cudaError_t.cudaSuccess:
        print(f"RESULT failed={status.name}", flush=True)
        raise SystemExit(1)
    if not isinstance(result, tuple) or len(result) == 1:
        return None
    return result[1] if len(result) == 2 else result[1:]


def dim3(x: int) -> rt.dim3:
    d = rt.dim3()
    d.x, d.y, d.z = x, 1, 1
    return d


def device_facts() -> None:
    print(f"RESULT device_count={ok(rt.cudaGetDeviceCount())}")
    prop = ok(rt.cudaGetDeviceProperties(0))
    name = prop.name.split(b"\0")[0].decode()
    print(f"RESULT sm_count={prop.multiProcessorCount} total_mem={prop.totalGlobalMem} "
          f"cc={prop.major}.{prop.minor} name={name}")
    print(f"RESULT runtime_version={ok(rt.cudaRuntimeGetVersion())} driver_version={ok(rt.cudaDriverGetVersion())}")


def memory_round_trip() -> None:
    size = 64 << 10
    pattern = bytes((i * 131 + 7) % 256 for i in range(size))
    src = ctypes.create_string_buffer(pattern, size)
    back = ctypes.create_string_buffer(size)
    free_before, _ = ok(rt.cudaMemGetInfo())
    a, b = ok(rt.cudaMalloc(size)), ok(rt.cudaMalloc(size))
    free_after, _ = ok(rt.cudaMemGetInfo())
    ok(rt.cudaMemcpy(a, ctypes.addressof(src), size, rt.cudaMemcpyKind.cudaMemcpyHostToDevice))
    ok(rt.cudaMemcpy(b, a, size, rt.cudaMemcpyKind.cudaMemcpyDeviceToDevice))
    ok(rt.cudaMemset(b, 0x5A, 256))
    stream = ok(rt.cudaStreamCreate())
    ok(rt.cudaMemcpyAsync(ctypes.addressof(back), b, size, rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream))
    ok(rt.cudaStreamSynchronize(stream))
    expected = b"\x5a" * 256 + pattern[256:]
    print(f"RESULT roundtrip_ok={int(back.raw == expected)} allocated={free_before - free_after}")
    # the runtime initialised device 0 through the driver: its primary context is retained (active)
    flags, active = ctypes.c_uint(), ctypes.c_int()
    ctypes.CDLL("libcuda.so.1").cuDevicePrimaryCtxGetState(0, ctypes.byref(flags), ctypes.byref(active))
    print(f"RESULT primary_active={active.value}")
    ok(rt.cudaStreamDestroy(stream))
    ok(rt.cudaFree(a))
    ok(rt.cudaFree(b))


def second_device() -> None:
    ok(rt.cudaSetDevice(1))
    p = ok(rt.cudaMalloc(4096))
    attrs = ok(rt.cudaPointerGetAttributes(p))
    print(f"RESULT current_device={ok(rt.cudaGetDevice())} pointer_device={attrs.device}")
    ok(rt.cudaFree(p))
    ok(rt.cudaSetDevice(0))


def launch(cubin_path: str) -> None:
    """A library loaded through the runtime, its global written and read back, `scale` launched
    by a graph on a stream (cuda-python's runtime has no cudaLaunchKernel: a kernel's host stub
    is a C++ symbol), the device synchronized and the launch timed with events."""
    lib = ok(rt.cudaLibraryLoadData(open(cubin_path, "rb").read(), None, None, 0, None, None, 0))
    kernel = ok(rt.cudaLibraryGetKernel(lib, b"scale"))
    gvar, gvar_bytes = ok(rt.cudaLibraryGetGlobal(lib, b"gvar"))
    values = (ctypes.c_float * 37)(*[float(i) for i in range(37)])
    back = (ctypes.c_float * 37)()
    ok(rt.cudaMemcpy(gvar, ctypes.addressof(values), gvar_bytes, rt.cudaMemcpyKind.cudaMemcpyHostToDevice))
    ok(rt.cudaMemcpy(ctypes.addressof(back), gvar, gvar_bytes, rt.cudaMemcpyKind.cudaMemcpyDeviceToHost))
    print(f"RESULT global_bytes={gvar_bytes} global_ok={int(list(back) == list(values))}")

    x = ok(rt.cudaMalloc(N_FLOATS * 4))
    x_arg, n_arg, a_arg = ctypes.c_void_p(int(x)), ctypes.c_int(N_FLOATS), ctypes.c_float(2.0)
    args = (ctypes.c_void_p * 3)(*(ctypes.addressof(v) for v in (x_arg, n_arg, a_arg)))
    params = rt.cudaKernelNodeParams()
    params.func = int(kernel)
    params.gridDim, params.blockDim = dim3(N_FLOATS // BLOCK), dim3(BLOCK)
    params.sharedMemBytes = 0
    params.kernelParams = ctypes.addressof(args)
    graph = ok(rt.cudaGraphCreate(0))
    ok(rt.cudaGraphAddKernelNode(graph, None, 0, params))
    graph_exec = ok(rt.cudaGraphInstantiate(graph, 0))
    stream = ok(rt.cudaStreamCreate())
    start, end = ok(rt.cudaEventCreate()), ok(rt.cudaEventCreate())
    ok(rt.cudaEventRecord(start, stream))
    ok(rt.cudaGraphLaunch(graph_exec, stream))
    ok(rt.cudaEventRecord(end, stream))
    ok(rt.cudaDeviceSynchronize())
    query = rt.cudaEventQuery(end)   # after the device synchronized: complete
    print(f"RESULT end_complete={int((query[0] if isinstance(query, tuple) else query) == rt.cudaError_t.cudaSuccess)}")
    print(f"RESULT launched=1 elapsed_ms={ok(rt.cudaEventElapsedTime(start, end)):.6f}", flush=True)


def lookup() -> None:
    """cuGetExportTable by symbol, through cuGetProcAddress and through the static runtime's
    cudaGetDriverEntryPoint, called for the cudart interface and for a UUID no driver has."""
    libcuda = ctypes.CDLL("libcuda.so.1")
    by_symbol = ctypes.cast(libcuda.cuGetExportTable, ctypes.c_void_p).value
    pfn, status = ctypes.c_void_p(), ctypes.c_int()
    get_proc = libcuda.cuGetProcAddress_v2
    get_proc.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_uint64,
                         ctypes.POINTER(ctypes.c_int)]
    get_proc(b"cuGetExportTable", ctypes.byref(pfn), 13000, 0, ctypes.byref(status))
    entry, _ = ok(rt.cudaGetDriverEntryPoint(b"cuGetExportTable", 0))
    print(f"RESULT proc_address_matches={int(pfn.value == by_symbol)} entry_point_matches={int(entry == by_symbol)}")
    get_table = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_void_p), ctypes.c_char_p)(by_symbol)
    table = ctypes.c_void_p()
    cudart_interface = bytes.fromhex("6bd5fb6c5bf4e74a8987d93912fd9df9")
    status = get_table(ctypes.byref(table), cudart_interface)
    print(f"RESULT cudart_status={status} cudart_table_bytes={ctypes.c_size_t.from_address(table.value).value}")
    table = ctypes.c_void_p(1)
    status = get_table(ctypes.byref(table), bytes.fromhex("0123456789abcdef0123456789abcdef"))
    print(f"RESULT unknown_status={status} unknown_table={table.value or 0}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "lookup":
        lookup()
        raise SystemExit(0)
    device_facts()
    memory_round_trip()
    second_device()
    launch(sys.argv[1])
    print("RESULT done=1", flush=True)
