"""The serving frameworks' interpreters for the end-to-end tests: each lives in its own
environment made by scripts/setup.sh (their pins differ). A missing one fails the test, as any
dependency setup installs; TIMEWARP_SKIP_VLLM=1 / TIMEWARP_SKIP_SGLANG=1 (setup skipped them on
purpose) make their tests skip."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Framework:
    name: str          # "vllm" or "sglang"
    version: str       # the exact version setup.sh installs
    venv: str          # its environment, relative to the checkout
    python_env: str    # the variable that names another interpreter for it
    skip_env: str      # setup.sh's switch that skips installing it

    @property
    def label(self) -> str:
        return f"{self.name}-{self.version}"


VLLM_0_32 = Framework("vllm", "0.32.0", ".venv-vllm", "TIMEWARP_VLLM_PYTHON", "TIMEWARP_SKIP_VLLM")
VLLM_0_33 = Framework("vllm", "0.33.0", ".venv-vllm-0.33", "TIMEWARP_VLLM_0_33_PYTHON", "TIMEWARP_SKIP_VLLM")
SGLANG = Framework("sglang", "0.5.23", ".venv-sglang", "TIMEWARP_SGLANG_PYTHON", "TIMEWARP_SKIP_SGLANG")


def _version_of(python: str, module: str) -> str | None:
    probe = f"import torch, {module}; assert torch.version.cuda, 'CPU-only torch'; print({module}.__version__)"
    try:
        proc = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def interpreter(framework: Framework) -> str:
    """The interpreter that has `framework`: $python_env, else the checkout's venv."""
    if os.environ.get(framework.skip_env) == "1":
        pytest.skip(f"{framework.skip_env}=1: {framework.label} not installed by setup")
    python = os.environ.get(framework.python_env) or str(REPO / framework.venv / "bin" / "python")
    version = _version_of(python, framework.name)
    if version is None:
        pytest.fail(f"{python} cannot import {framework.name} with a CUDA torch: run scripts/setup.sh "
                    f"(it makes {framework.venv}) or set {framework.python_env}")
    if version != framework.version:
        pytest.fail(f"{python} has {framework.name} {version}, the test wants {framework.version}")
    return python


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_model_dir(python: str, out: Path, shapes: str = "tiny") -> Path:
    """A local model directory (config, offline tokenizer, chat template): scripts/make_model_dir.py."""
    subprocess.run([python, str(REPO / "scripts" / "make_model_dir.py"), shapes, str(out)], check=True,
                   capture_output=True, text=True)
    return out


def serving_benchmarks(summary: dict) -> dict[str, dict]:
    """summary.json's serving benchmarks by result file stem (`rate-4`, `rate-inf`, ...)."""
    serving = summary["serving"]
    assert serving, "no serving section: the client's results were not found in the run directory"
    return {Path(b["file"]).stem.split(".")[0]: b for b in serving["benchmarks"]}


def load_bench_vllm() -> ModuleType:
    """scripts/bench_vllm.py as a module: the tests run vLLM the way the benchmark does."""
    spec = importlib.util.spec_from_file_location("bench_vllm", REPO / "scripts" / "bench_vllm.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_vllm"] = module
    spec.loader.exec_module(module)
    return module
