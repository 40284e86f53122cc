"""Helpers shared by the tests: run a command under emulate, compile CUDA programs."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def emulate_cli(*args: str) -> subprocess.CompletedProcess:
    """`emulate ARGS` as a user types it (for its exit status and messages)."""
    return subprocess.run([sys.executable, "-m", "emulator", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=120)


@dataclass
class EmulatedRun:
    exit_status: int
    run_dir: Path
    stdout: str
    stderr: str

    @property
    def summary(self) -> dict:
        return json.loads((self.run_dir / "summary.json").read_text())

    def kernels_csv(self) -> str:
        return (self.run_dir / "kernels.csv").read_text()

    def crash_reports(self) -> str:
        """What crashed processes wrote (shim/src/crash.c), for assertion messages."""
        return "\n".join(p.read_text(errors="replace") for p in sorted((self.run_dir / "crash").glob("*.txt")))


def run_emulated(cmd: list[str], run_dir: Path, gpu: str = "h100", extra: list[str] | None = None,
                 env: dict[str, str] | None = None, timeout: float = 600) -> EmulatedRun:
    """Run `emulate --gpu GPU --out RUN_DIR [extra] -- CMD` and collect what it left."""
    argv = [sys.executable, "-m", "emulator", "--gpu", gpu, "--out", str(run_dir), *(extra or []), "--", *cmd]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    return EmulatedRun(proc.returncode, run_dir, proc.stdout, proc.stderr)


def compile_cuda(nvcc_path: str, source: Path, out_dir: Path, arch: str = "sm_90") -> Path:
    """nvcc with the shared cudart, so the shim's exports stand in for libcudart.so.13."""
    exe = out_dir / source.stem
    if not exe.exists():
        subprocess.run([nvcc_path, "-cudart", "shared", f"-arch={arch}", "-o", str(exe), str(source)],
                       check=True, capture_output=True, text=True)
    return exe


def torch_cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.version.cuda is not None


requires_cuda_torch = pytest.mark.skipif(not torch_cuda_available(), reason="needs a CUDA build of torch")
