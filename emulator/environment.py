"""The environment a program runs in under emulate (DESIGN §1 step 2)."""

from __future__ import annotations

import os
from pathlib import Path

from shim import build

BIN_DIR = Path(__file__).resolve().parent / "bin"

# Sonames that code may dlopen by name or find by scanning: each names the shim.
SHIM_SONAMES = (
    "libcuda.so.1", "libcuda.so", "libnvidia-ml.so.1", "libnvidia-ml.so",
    "libcudart.so.13", "libcudart.so", "libcublas.so.13", "libcublasLt.so.13",
    "libcudnn.so.9", "libnccl.so.2", "libnccl.so", "libcufft.so.12", "libcusolver.so.12",
    "libcusparse.so.12", "libcupti.so.13",
)


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


# The switches program_environment sets when the user has not (reported in summary.json).
SWITCHES = ("VLLM_NO_USAGE_STATS", "VLLM_USE_V2_MODEL_RUNNER", "OMP_WAIT_POLICY")


def switches_set(env: dict[str, str], base: dict[str, str]) -> dict[str, str]:
    """The switches emulate set for this run (the user's own values are not emulate's)."""
    return {k: env[k] for k in SWITCHES if k in env and k not in base}


def ensure_shim() -> Path:
    return build.build()
