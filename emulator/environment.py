"""The environment a program runs in under emulate (DESIGN §1 step 2)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from shim import build

log = logging.getLogger(__name__)

BIN_DIR = Path(__file__).resolve().parent / "bin"

# Sonames that code may dlopen by name or find by scanning: each names the shim.
SHIM_SONAMES = (
    "libcuda.so.1", "libcuda.so", "libnvidia-ml.so.1", "libnvidia-ml.so",
    "libcudart.so.13", "libcudart.so", "libcublas.so.13", "libcublasLt.so.13",
    "libcudnn.so.9", "libnccl.so.2", "libnccl.so", "libcufft.so.12", "libcusolver.so.12",
    "libcusparse.so.12", "libcupti.so.13",
)


# Variables emulate extends rather than sets (the rest it adds are switches, listed in run.json).
PATH_VARIABLES = ("LD_PRELOAD", "LD_LIBRARY_PATH", "PATH")


def library_dir(shim_library: Path) -> Path:
    """A directory of symlinks, one per soname, all to the shim."""
    lib_dir = shim_library.parent / "lib"
    lib_dir.mkdir(parents=True, exist_ok=True)
    for soname in SHIM_SONAMES:
        link = lib_dir / soname
        target = os.path.relpath(shim_library, lib_dir)
        if link.is_symlink() and os.readlink(link) == target:
            continue
        tmp = lib_dir / f".{soname}.tmp{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target)
        tmp.replace(link)
    return lib_dir


def pypi_toolkit() -> Path | None:
    """The CUDA toolkit files PyPI's wheels put in this environment (nvidia-cuda-nvcc, -runtime,
    -crt, -nvvm, -curand, ...: `site-packages/nvidia/cu13/{bin,include,lib,nvvm}`), or None."""
    for entry in filter(None, sys.path):
        for nvcc in sorted(Path(entry).glob("nvidia/cu*/bin/nvcc")):
            if (nvcc.parent.parent / "include" / "cuda_runtime_api.h").exists():
                return nvcc.parent.parent
    return None


def cuda_home(build_dir: Path | None = None) -> Path | None:
    """A CUDA_HOME laid out as a toolkit installs it, made of links into the PyPI wheels of this
    environment (scripts/setup.sh installs them), for programs that JIT-compile CUDA code at start
    (FlashInfer's sampler, SGLang's kernels) and for the CUDA C tests. None when this environment
    has no nvcc from PyPI.

    The wheels alone are not a toolkit: they have `lib/libcudart.so.13` but no `libcudart.so` to
    link with `-lcudart`, no `lib64`, and no `lib64/stubs/libcuda.so` for `-lcuda`. nvcc finds its
    profile, compilers and libraries relative to the path it was started by, so `bin/` holds
    links to each file (not a link to the folder: `bin/..` would resolve into the wheel)."""
    toolkit = pypi_toolkit()
    if toolkit is None:
        return None
    home = (build_dir or build.build_dir()) / "cuda-home"
    marker = home / "toolkit.txt"
    if marker.exists() and marker.read_text() == str(toolkit):
        return home
    home.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".cuda-home-", dir=home.parent))
    (staging / "bin").mkdir()
    for item in sorted((toolkit / "bin").iterdir()):
        (staging / "bin" / item.name).symlink_to(item)
    for folder in ("include", "nvvm"):
        if (toolkit / folder).exists():
            (staging / folder).symlink_to(toolkit / folder)
    lib64 = staging / "lib64"
    (lib64 / "stubs").mkdir(parents=True)
    for item in sorted((toolkit / "lib").iterdir()):
        (lib64 / item.name).symlink_to(item)
        stem, dot_so, version = item.name.partition(".so.")
        if dot_so and version and not (lib64 / f"{stem}.so").exists():
            (lib64 / f"{stem}.so").symlink_to(item.name)   # the link-time name: -lcudart, -lcurand
    (staging / "lib").symlink_to("lib64")
    _link_stub(lib64 / "stubs" / "libcuda.so", "libcuda.so.1")
    (staging / "toolkit.txt").write_text(str(toolkit))
    if home.exists():
        if marker.exists() and marker.read_text() == str(toolkit):   # another emulate made it meanwhile
            shutil.rmtree(staging, ignore_errors=True)
            return home
        stale = home.with_name(f".cuda-home-stale-{os.getpid()}")   # made from another environment
        home.rename(stale)
        shutil.rmtree(stale, ignore_errors=True)
    try:
        staging.rename(home)
    except OSError:   # another emulate made it meanwhile
        shutil.rmtree(staging, ignore_errors=True)
    return home


def _link_stub(path: Path, soname: str) -> None:
    """An empty shared library named `soname`, as a toolkit's stubs are: code linked with it
    records NEEDED `soname`, which at run time is the shim (the driver's name on LD_LIBRARY_PATH)."""
    cc = os.environ.get("CC", "cc")
    subprocess.run([cc, "-shared", "-x", "c", "-", "-o", str(path), f"-Wl,-soname,{soname}"], input=b"",
                   check=True, capture_output=True)


def _prepend(value: str, existing: str | None, sep: str = ":") -> str:
    return value if not existing else f"{value}{sep}{existing}"


def program_environment(base: dict[str, str], *, shim_library: Path, run_dir: Path, coordinator: str | None,
                        spec_path: Path, gpus: int, log_level: int | None = None,
                        allow_degraded: bool = False) -> dict[str, str]:
    """The program's environment: the caller's plus the shim and its switches."""
    env = dict(base)
    lib_dir = library_dir(shim_library)
    env["LD_PRELOAD"] = _prepend(str(shim_library), env.get("LD_PRELOAD"), " ")
    env["LD_LIBRARY_PATH"] = _prepend(str(lib_dir), env.get("LD_LIBRARY_PATH"))
    env["PATH"] = _prepend(str(BIN_DIR), env.get("PATH"))
    toolkit_home = cuda_home()
    if toolkit_home is not None:
        # FlashInfer and torch's extension builder take the toolkit from CUDA_HOME (else from the
        # nvcc on PATH: on a host with a partial toolkit, one without curand.h)
        env.setdefault("CUDA_HOME", str(toolkit_home))
    else:
        log.warning("no CUDA compiler from PyPI in %s (scripts/setup.sh installs nvidia-cuda-nvcc): programs that "
                    "JIT-compile CUDA code (FlashInfer, SGLang) will fail to build it", sys.prefix)
    env["TIMEWARP_RUN_DIR"] = str(run_dir)
    env["TIMEWARP_SPEC"] = str(spec_path)
    env["TIMEWARP_GPUS"] = str(gpus)
    if coordinator:
        env["TIMEWARP_COORDINATOR"] = coordinator
    if log_level is not None:
        env["TIMEWARP_LOG_LEVEL"] = str(log_level)
    if allow_degraded:
        env["TIMEWARP_ALLOW_DEGRADED"] = "1"
    else:
        env.pop("TIMEWARP_ALLOW_DEGRADED", None)
    # Documented switches frameworks read to find libraries by path.
    env.setdefault("TRITON_LIBCUDA_PATH", str(lib_dir))
    env.setdefault("VLLM_NCCL_SO_PATH", str(lib_dir / "libnccl.so.2"))
    # vLLM switches (docs/vllm.md), each a documented setting a user may override:
    # - usage stats: a daemon thread that loops on sleep(600) and posts the (emulated) hardware
    #   to a remote endpoint; nothing to report from an emulation, and no network to report to.
    env.setdefault("VLLM_NO_USAGE_STATS", "1")
    # - the V2 model runner computes each request's number of sampled tokens in a Triton
    #   kernel and reads it back to drive the scheduler; kernels never run here, so that count
    #   is whatever the buffer held and requests never finish. The V1 runner takes the count
    #   from the output's shape (one token per request and step without speculation).
    env.setdefault("VLLM_USE_V2_MODEL_RUNNER", "0")
    # OpenMP's idle workers spin on a core for milliseconds after every parallel region (libgomp's
    # default wait policy) in a loop the clock cannot see: on the GPU host that is another core's
    # time, here it holds the clock as a running thread (jumps refused, docs/design.md). Passive
    # workers sleep at once; what the program computes is unchanged.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def ensure_shim() -> Path:
    return build.build()
