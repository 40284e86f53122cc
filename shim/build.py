"""Build glue for the shim: find the CUDA headers the pip wheels ship and run make.

The shim needs only a C compiler and the vendor headers (nvidia/*/include inside the
installed CUDA wheels, or a CUDA toolkit's include directory as a fallback).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

SHIM_DIR = Path(__file__).resolve().parent
LIB_NAME = "libtimewarp.so"
log = logging.getLogger(__name__)


def vendor_include_dirs() -> list[Path]:
    """Include directories of the NVIDIA wheels (cu13 first), then a toolkit's."""
    dirs: list[Path] = []
    spec = importlib.util.find_spec("nvidia")
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        base = Path(root)
        preferred = base / "cu13" / "include"
        if preferred.is_dir():
            dirs.append(preferred)
        for inc in sorted(base.glob("*/include")):
            if inc.is_dir() and inc not in dirs and inc.parent.name != "cu12":
                dirs.append(inc)
    # A toolkit only where the user names one: the wheels carry every header the shim needs, and
    # a machine's /usr/local/cuda (absent on users' machines) must not change what builds.
    cuda_home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    if cuda_home and (Path(cuda_home) / "include").is_dir():
        dirs.append(Path(cuda_home) / "include")
    return dirs


def build_dir() -> Path:
    return SHIM_DIR / "build"


def library_path() -> Path:
    return build_dir() / LIB_NAME


def governor_path() -> Path:
    """The clock's governor program (shim/tools/governor.c), built with the library."""
    return build_dir() / "timewarp-governor"


class ShimBuildError(RuntimeError):
    """The shim did not build: str() is one line naming why (`python -m shim.build` shows make's
    whole output)."""


def _first_error(output: str) -> str:
    """The compiler's or make's first error line, the one that names the cause."""
    for line in output.splitlines():
        if ": error:" in line or ": fatal error:" in line or line.startswith("make: ***"):
            return line.strip()
    return output.strip().splitlines()[-1] if output.strip() else "no output"


def build(jobs: int | None = None, quiet: bool = True) -> Path:
    """Run make for the shim (incremental). Returns the library path or raises ShimBuildError."""
    if shutil.which("make") is None:
        raise ShimBuildError("building the shim needs `make` and a C compiler")
    includes = vendor_include_dirs()
    if not any((d / "cuda_runtime_api.h").is_file() for d in includes):
        raise ShimBuildError(
            "CUDA headers not found: install the CUDA wheels (pip install torch, or "
            "nvidia-cuda-runtime) or set CUDA_HOME"
        )
    flags = " ".join(f"-isystem {d}" for d in includes)
    cmd = ["make", "-C", str(SHIM_DIR), f"-j{jobs or os.cpu_count() or 2}",
           f"VENDOR_INCLUDES={flags}"]
    result = subprocess.run(cmd, capture_output=quiet, text=True)
    if result.returncode != 0:
        detail = (result.stdout or "") + (result.stderr or "") if quiet else ""
        raise ShimBuildError(f"the shim did not build: {_first_error(detail)} (all of it: python -m shim.build)"
                             if quiet else "the shim did not build (output above)")
    return library_path()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="build the timewarp shim")
    parser.add_argument("--print-includes", action="store_true")
    args = parser.parse_args(argv)
    if args.print_includes:
        print(" ".join(f"-isystem {d}" for d in vendor_include_dirs()))
        return 0
    try:
        path = build(quiet=False)
    except ShimBuildError as err:
        print(err, file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
