#!/usr/bin/env bash
# Sets up a fresh machine for timewarp: a virtualenv in .venv with a CUDA build of torch from
# PyPI (no GPU needed), the CUDA compiler and headers from PyPI (the toolkit emulate hands to
# programs that JIT-compile kernels, and the CUDA C tests' nvcc), the project and its test
# tools, and the shim built with the system C compiler; and the serving frameworks the tests run,
# each in its own environment with its own pins: vLLM 0.32 (.venv-vllm), vLLM 0.33
# (.venv-vllm-0.33), SGLang (.venv-sglang). TIMEWARP_SKIP_VLLM=1 / TIMEWARP_SKIP_SGLANG=1 skip
# them (their tests then skip). Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VERSION="${TIMEWARP_TORCH_VERSION:-2.13.0}"
VLLM_VERSION="${TIMEWARP_VLLM_VERSION:-0.32.0}"
VLLM_NEXT_VERSION="${TIMEWARP_VLLM_NEXT_VERSION:-0.33.0}"
SGLANG_VERSION="${TIMEWARP_SGLANG_VERSION:-0.5.23}"
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
# The CUDA compiler of the same release (nvcc checks that the runtime headers are its own), and
# the library headers JIT-compiled kernels include (curand.h): emulate assembles a CUDA_HOME from
# them (emulator/environment.py) for FlashInfer's and SGLang's JIT, and the CUDA C tests use it.
pipi "nvidia-cuda-nvcc==${cuda_mm}.*" "nvidia-nvvm==${cuda_mm}.*" "nvidia-curand"
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
.venv/bin/python -c "from emulator import environment as e; print(f'setup: CUDA toolkit for emulated programs: {e.cuda_home()}')"

# Each serving framework in its own environment: their exact pins (torch, transformers, ...) stay
# out of .venv and out of each other's. The tests find them there (or in $TIMEWARP_VLLM_PYTHON,
# $TIMEWARP_VLLM_0_33_PYTHON, $TIMEWARP_SGLANG_PYTHON); the workloads run under emulate.
framework_venv() {
    local venv=$1 requirement=$2 module=$3
    [ -x "$venv/bin/python" ] || "$UV" venv -q --python "$(command -v "$PYTHON")" "$venv"
    uv_in "$venv" "$requirement"
    check_cuda_torch "$venv"
    "$venv/bin/python" -c "import $module; print(f'setup: $venv: $module {$module.__version__}')"
}
if [ "${TIMEWARP_SKIP_VLLM:-0}" != 1 ]; then
    framework_venv .venv-vllm "vllm==${VLLM_VERSION}" vllm
    framework_venv .venv-vllm-0.33 "vllm==${VLLM_NEXT_VERSION}" vllm
fi
if [ "${TIMEWARP_SKIP_SGLANG:-0}" != 1 ]; then
    framework_venv .venv-sglang "sglang==${SGLANG_VERSION}" sglang
fi
