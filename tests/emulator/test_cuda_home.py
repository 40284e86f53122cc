"""The CUDA toolkit emulate gives programs that JIT-compile kernels (emulator/environment.py
cuda_home): made of PyPI wheels, laid out as a toolkit install, and enough for what FlashInfer's
JIT does: nvcc compiles a kernel that includes curand.h, and the host linker links the module
with `-L$CUDA_HOME/lib64 -L$CUDA_HOME/lib64/stubs -lcudart -lcuda`, leaving it dependent on the
driver and runtime sonames (which under emulate are the shim), not on any file of the build."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from emulator import environment

KERNEL = r"""
#include <curand_kernel.h>
extern "C" __global__ void draw(float *out, unsigned long long seed) {
    curandStatePhilox4_32_10_t state;
    curand_init(seed, threadIdx.x, 0, &state);
    out[threadIdx.x] = curand_uniform(&state);
}
"""


@pytest.fixture(scope="module")
def home() -> Path:
    home = environment.cuda_home()
    if home is None:
        pytest.fail("no nvcc from PyPI in this environment: run scripts/setup.sh (it installs nvidia-cuda-nvcc)")
    return home


def needed(library: Path) -> list[str]:
    dynamic = subprocess.run(["readelf", "-d", str(library)], check=True, capture_output=True, text=True).stdout
    return [line.split("[")[1].rstrip("]") for line in dynamic.splitlines() if "(NEEDED)" in line]


def test_layout_is_a_toolkit_of_pypi_wheels(home: Path) -> None:
    toolkit = environment.pypi_toolkit()
    assert toolkit is not None and "site-packages" in str(toolkit)
    assert (home / "bin" / "nvcc").resolve() == (toolkit / "bin" / "nvcc").resolve()
    for header in ("cuda_runtime_api.h", "curand.h", "crt/host_defines.h"):
        assert (home / "include" / header).exists(), header
    assert (home / "lib64" / "libcudart.so").resolve() == (toolkit / "lib" / "libcudart.so.13").resolve()
    assert (home / "lib").resolve() == (home / "lib64").resolve()
    assert environment.cuda_home() == home   # made once, then reused


def test_jit_style_build_links_against_sonames(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "draw.cu"
    source.write_text(KERNEL)
    obj = tmp_path / "draw.o"
    subprocess.run([str(home / "bin" / "nvcc"), "-c", "-Xcompiler=-fPIC", "-arch=sm_90", str(source), "-o", str(obj)],
                   check=True, capture_output=True, text=True)
    module = tmp_path / "draw.so"
    subprocess.run(["c++", "-shared", str(obj), f"-L{home}/lib64", f"-L{home}/lib64/stubs", "-lcudart", "-lcuda",
                    "-o", str(module)], check=True, capture_output=True, text=True)
    deps = needed(module)
    # -lcuda resolves against the stub (named libcuda.so.1, the driver's soname); the kernel
    # registration needs the runtime's soname
    assert "libcudart.so.13" in deps, deps
    assert all(d.startswith(("libcudart.so.", "libcuda.so.", "libstdc++", "libgcc_s", "libc.", "libm.")) for d in deps), deps


def test_nvcc_links_programs_with_the_shared_runtime(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "main.cu"
    source.write_text(KERNEL + "int main() { return 0; }\n")
    exe = tmp_path / "main"
    subprocess.run([str(home / "bin" / "nvcc"), "-cudart", "shared", "-arch=sm_90", str(source), "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    assert "libcudart.so.13" in needed(exe)
