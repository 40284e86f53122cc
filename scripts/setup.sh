#!/usr/bin/env bash
# Sets up a fresh machine for timewarp: a virtualenv in .venv with a CUDA build of torch from
# PyPI (no GPU needed), the project and its test tools, and the shim built with the system C
# compiler; and vLLM for tests/e2e/test_vllm_offline.py in .venv-vllm (TIMEWARP_SKIP_VLLM=1
# skips it). Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VERSION="${TIMEWARP_TORCH_VERSION:-2.13.0}"
VLLM_VERSION="${TIMEWARP_VLLM_VERSION:-0.32.0}"
PYTHON="${PYTHON:-python3}"

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# uv installs everything: it hard-links files from one cache, so the venvs (torch, vLLM, ...)
# share their bytes on disk, and it reads no pip configuration (the build machines' pip
# configuration offers a CPU-only torch through a local find-links folder).
env -u PIP_FIND_LINKS -u PIP_CONFIG_FILE .venv/bin/python -m pip install --isolated -q "uv>=0.5"
UV=.venv/bin/uv
uv_in() { local venv=$1; shift; "$UV" pip install -q --python "$venv/bin/python" "$@"; }
pipi() { uv_in .venv "$@"; }
pipi "torch==${TORCH_VERSION}"
# The headers the shim builds against must match the CUDA runtime torch brought.
cuda_mm=$(.venv/bin/python -c "from importlib.metadata import version; print('.'.join(version('nvidia-cuda-runtime').split('.')[:2]))")
pipi "nvidia-cuda-crt==${cuda_mm}.*" "nvidia-cuda-profiler-api==${cuda_mm}.*" "nvidia-cuda-cccl==${cuda_mm}.*"
pipi -e '.[test]'
check_cuda_torch() {
"$1/bin/python" - <<'PY'
import sys, torch
if torch.version.cuda is None:
    sys.exit(f"setup: torch {torch.__version__} is a CPU-only build; timewarp needs a CUDA build from PyPI")
print(f"setup: {sys.prefix}: torch {torch.__version__} (CUDA {torch.version.cuda})")
PY
}
check_cuda_torch .venv
.venv/bin/python -m shim.build

# vLLM in its own environment: its exact pins (torch, transformers, ...) stay out of .venv. The
# test finds it there (or in $TIMEWARP_VLLM_PYTHON); the workload runs under emulate from .venv.
if [ "${TIMEWARP_SKIP_VLLM:-0}" != 1 ]; then
    [ -x .venv-vllm/bin/python ] || "$UV" venv -q --python "$(command -v "$PYTHON")" .venv-vllm
    uv_in .venv-vllm "vllm==${VLLM_VERSION}"
    check_cuda_torch .venv-vllm
    .venv-vllm/bin/python -c "import vllm; print(f'setup: vLLM {vllm.__version__}')"
fi
