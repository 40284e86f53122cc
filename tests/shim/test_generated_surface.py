"""The generated API surface: every name a framework imports or a real vendor library exports is
exported by libtimewarp.so, unversioned; unimplemented names answer with their library's
not-supported status; the driver entry-point table resolves names by version and flavour."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shim.build import SHIM_DIR, vendor_include_dirs

REPO = SHIM_DIR.parent
GEN = SHIM_DIR / "gen"
MANIFEST = GEN / "out" / "manifest.txt"

# The not-supported status each library's stubs must return, by the header constant's name.
NOT_SUPPORTED = {
    "cudart": ("cuda_runtime_api.h", "cudaErrorNotSupported"),
    "driver": ("cuda.h", "CUDA_ERROR_NOT_SUPPORTED"),
    "cublas": ("cublas_api.h", "CUBLAS_STATUS_NOT_SUPPORTED"),
    "cublasLt": ("cublasLt.h", "CUBLAS_STATUS_NOT_SUPPORTED"),
    "cudnn": ("cudnn.h", "CUDNN_STATUS_NOT_SUPPORTED"),
    "nccl": ("nccl.h", "ncclInvalidUsage"),
    "cusparse": ("cusparse.h", "CUSPARSE_STATUS_NOT_SUPPORTED"),
    "cufft": ("cufft.h", "CUFFT_NOT_SUPPORTED"),
    "cusolver": ("cusolver_common.h", "CUSOLVER_STATUS_NOT_SUPPORTED"),
    "cupti": ("cupti.h", "CUPTI_ERROR_NOT_SUPPORTED"),
    "cufile": ("cufile.h", "CU_FILE_PLATFORM_NOT_SUPPORTED"),
}


def _exports(lib: Path) -> dict[str, str]:
    """Defined dynamic symbols of lib: name (with any @version) -> nm type letter."""
    out = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True,
                         check=True).stdout
    syms = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            syms[parts[2]] = parts[1]
    return syms


def _manifest() -> list[tuple[str, str, str]]:
    return [tuple(line.split("\t")) for line in MANIFEST.read_text().splitlines()]  # type: ignore[misc]


def _import_names() -> set[str]:
    names = set()
    for path in [*sorted((GEN / "imports").glob("*.txt")), *sorted((GEN / "inputs").glob("*.txt"))]:
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                names.add(line.split()[1])
    return names


def _header_constants(wanted: dict[str, tuple[str, str]], tmp: Path) -> dict[str, int]:
    """Values of header enum constants, by compiling a program that prints them."""
    includes = sorted({f"#include <{h}>" for h, _ in wanted.values()})
    prints = "".join(f'    printf("{lib} %d\\n", (int){const});\n' for lib, (_, const) in wanted.items())
    src = tmp / "consts.c"
    src.write_text("\n".join(["#include <stdio.h>", "#include <stdalign.h>", *includes,
                              "int main(void) {", prints, "    return 0;", "}"]))
    exe = tmp / "consts"
    flags = [f"-I{d}" for d in vendor_include_dirs()]
    subprocess.run(["cc", "-std=gnu11", "-w", *flags, str(src), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    return {lib: int(v) for lib, v in (line.split() for line in out.splitlines())}


def _run_probe(shim_lib: Path, body: str) -> dict:
    """Run a ctypes probe in a child process (the library's constructors stay out of pytest)."""
    code = "import ctypes, json, sys\nlib = ctypes.CDLL(sys.argv[1])\n" + textwrap.dedent(body)
    env = {**os.environ, "TIMEWARP_LOG_LEVEL": "0"}
    env.pop("TIMEWARP_RUN_DIR", None)
    proc = subprocess.run([sys.executable, "-c", code, str(shim_lib)], capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_import_list_name_is_exported_unversioned(shim_lib: Path) -> None:
    syms = _exports(shim_lib)
    assert not [s for s in syms if "@" in s], "exports must be unversioned"
    missing = sorted(_import_names() - syms.keys())
    assert not missing, f"{len(missing)} imported names not exported, e.g. {missing[:10]}"


def test_every_real_library_export_is_mirrored(shim_lib: Path) -> None:
    syms = _exports(shim_lib)
    rows = _manifest()
    assert len(rows) > 3000
    missing = sorted(name for _, name, _ in rows if name not in syms)
    assert not missing, f"{len(missing)} generated names not exported, e.g. {missing[:10]}"
    # the runtime internals nvcc-generated code calls are part of the surface
    for name in ("__cudaRegisterFatBinary", "__cudaRegisterFunction", "__cudaPushCallConfiguration",
                 "__cudaPopCallConfiguration", "__cudaGetKernel", "cudaMemcpyAsync_ptsz",
                 "cuMemcpyHtoD_v2_ptds", "cublasSgemm_v2", "cublasGemmEx_64", "ncclAllReduce"):
        assert name in syms, name


def test_unimplemented_stub_returns_not_supported(shim_lib: Path, tmp_path: Path) -> None:
    syms = _exports(shim_lib)
    picks: dict[str, str] = {}
    for lib, name, kind in _manifest():
        # a stub nobody has overridden yet (still weak), returning its library's status
        if lib in NOT_SUPPORTED and kind == "status" and syms.get(name) == "W" and lib not in picks:
            picks[lib] = name
    assert {"cudart", "driver", "cublas", "cudnn", "nccl"} <= picks.keys()
    expected = _header_constants({lib: NOT_SUPPORTED[lib] for lib in picks}, tmp_path)
    result = _run_probe(shim_lib, f"""
        out = {{}}
        for family, name in {json.dumps(picks)}.items():
            fn = getattr(lib, name)
            fn.restype = ctypes.c_uint64
            # typed stubs ignore their arguments; cuFile returns an 8-byte struct in rax
            out[family] = int(fn()) & 0xffffffff
        print(json.dumps(out))
    """)
    assert result == expected, picks


def test_get_proc_address_resolves_by_version_and_flavour(shim_lib: Path) -> None:
    result = _run_probe(shim_lib, """
        def addr(name):
            return ctypes.cast(getattr(lib, name), ctypes.c_void_p).value
        def proc(name, version, flags=0):
            fn, status = ctypes.c_void_p(), ctypes.c_int(-1)
            rc = lib.cuGetProcAddress_v2(name.encode(), ctypes.byref(fn), version,
                                         ctypes.c_uint64(flags), ctypes.byref(status))
            return [rc, status.value, fn.value]
        legacy_fn = ctypes.c_void_p()
        legacy_rc = lib.cuGetProcAddress(b"cuNoSuchFunction", ctypes.byref(legacy_fn), 12000,
                                         ctypes.c_uint64(0))
        rt_fn, rt_status = ctypes.c_void_p(), ctypes.c_int(-1)
        rt_rc = lib.cudaGetDriverEntryPointByVersion(b"cuMemcpyAsync", ctypes.byref(rt_fn), 12000,
                                                     ctypes.c_ulonglong(2), ctypes.byref(rt_status))
        print(json.dumps({
            "alloc": proc("cuMemAlloc", 12000), "alloc_v2": addr("cuMemAlloc_v2"),
            "alloc_old": proc("cuMemAlloc", 2000), "alloc_v1": addr("cuMemAlloc"),
            "bogus": proc("cuNoSuchFunction", 12000),
            "too_old": proc("cuMemCreate", 9000),
            "per_thread": proc("cuMemcpyAsync", 12000, 2), "ptsz": addr("cuMemcpyAsync_ptsz"),
            "legacy_stream": proc("cuMemcpyAsync", 12000, 1), "plain": addr("cuMemcpyAsync"),
            "legacy_rc": legacy_rc,
            "runtime": [rt_rc, rt_status.value, rt_fn.value],
        }))
    """)
    assert result["alloc"] == [0, 0, result["alloc_v2"]]
    assert result["alloc_old"] == [0, 0, result["alloc_v1"]]
    # CUDA 12+ contract: success, NULL pointer, the reason in the status out-parameter
    assert result["bogus"] == [0, 1, None]
    assert result["too_old"] == [0, 2, None]
    assert result["per_thread"] == [0, 0, result["ptsz"]]
    assert result["legacy_stream"] == [0, 0, result["plain"]]
    assert result["legacy_rc"] == 500  # CUDA_ERROR_NOT_FOUND: the v1 call has no status out
    assert result["runtime"] == [0, 0, result["ptsz"]]


@pytest.mark.skipif(not any((d / "cudaTypedefs.h").is_file() for d in vendor_include_dirs()),
                    reason="needs the CUDA headers of the wheels")
def test_checked_in_output_matches_the_generator() -> None:
    proc = subprocess.run([sys.executable, "-m", "shim.gen.generate", "--check"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
