"""The cubin/fatbin reader (shim/src/fatbin.c) against nvcc output and torch's fat binaries.

fatbin.c is compiled alone into a small harness (tests/shim/cuda/drv_fatbin_harness.c) that
prints, per kernel, the parameter layout and attributes the parser finds. The expected
layouts follow from the kernel signatures in drv_kernels.cu and the C ABI.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CUDA_DIR = Path(__file__).resolve().parent / "cuda"
KERNELS = CUDA_DIR / "drv_kernels.cu"
HARNESS = CUDA_DIR / "drv_fatbin_harness.c"
TORCH_CUDA = None
try:
    import torch

    TORCH_CUDA = Path(torch.__file__).parent / "lib" / "libtorch_cuda.so"
except ImportError:
    pass

# (offset, size) per parameter, and the parameter block size, from the signatures
EXPECTED = {
    "_Z2k1PfidcP6float4": ([(0, 8), (8, 4), (16, 8), (24, 1), (32, 8)], 40),
    "_Z2k23Bigsx": ([(0, 48), (48, 2), (56, 8)], 64),
    "_Z2k3v": ([], 0),
    "k4": ([(0, 8), (8, 1), (16, 8), (32, 16)], 48),
    "_Z2lbPf2S54Huge": ([(0, 8), (8, 5), (16, 4400)], 4416),
    "_Z2tkIdEvPT_S0_y": ([(0, 8), (8, 8), (16, 8)], 24),
    "_Z2tkIsEvPT_S0_y": ([(0, 8), (8, 2), (16, 8)], 24),
    "scale": ([(0, 8), (8, 4), (12, 4)], 16),
}


@dataclass
class Kernel:
    name: str
    params: list[tuple[int, int]] | None
    param_bytes: int | None
    regs: int
    smem: int
    max_threads: int
    arch: int


LINE = re.compile(
    r"kernel (\S+) count=(\d+) bytes=(\d+) params=(\S*) regs=(-?\d+) smem=(\d+) maxthreads=(\d+) arch=(\d+)"
)


def parse(output: str) -> dict[str, Kernel]:
    kernels: dict[str, Kernel] = {}
    for line in output.splitlines():
        if m := LINE.match(line):
            params = [tuple(int(x) for x in p.split(":")) for p in m.group(4).split(",") if p]
            kernels[m.group(1)] = Kernel(m.group(1), params, int(m.group(3)), int(m.group(5)),
                                         int(m.group(6)), int(m.group(7)), int(m.group(8)))
        elif line.startswith("kernel "):
            name = line.split()[1]
            kernels[name] = Kernel(name, None, None, -1, 0, 0, 0)
    return kernels


@pytest.fixture(scope="session")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    out = tmp_path_factory.mktemp("harness") / "drv_fatbin_harness"
    subprocess.run([cc, "-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter",
                    f"-I{REPO / 'shim/src'}", f"-I{REPO / 'shim/include'}", "-o", str(out), str(HARNESS),
                    "-ldl", "-lpthread"], check=True, capture_output=True, text=True)
    return out


@pytest.fixture(scope="session")
def images(nvcc: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The test kernels as a cubin, PTX and fatbins: multi-arch, zstd, LZ4, PTX-only."""
    out = tmp_path_factory.mktemp("images")
    variants = {
        "cubin": ["-arch=sm_90", "-cubin"],
        "cubin_sm80": ["-arch=sm_80", "-cubin"],
        "ptx": ["-arch=sm_90", "-ptx"],
        "fatbin_multi": ["-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=sm_90",
                         "-gencode", "arch=compute_90,code=compute_90", "-fatbin"],
        "fatbin_zstd": ["-arch=sm_90", "-Xfatbin", "-compress-all", "-fatbin"],
        "fatbin_lz4": ["-arch=sm_90", "-Xfatbin", "-compress-all", "-Xfatbin", "-compress-mode=speed",
                       "-fatbin"],
        "fatbin_ptx_only": ["-gencode", "arch=compute_90,code=compute_90", "-fatbin"],
    }
    paths = {}
    for name, flags in variants.items():
        path = out / f"kernels.{name}"
        subprocess.run([nvcc, *flags, "-o", str(path), str(KERNELS)], check=True, capture_output=True, text=True)
        paths[name] = path
    return paths


def run_harness(harness: Path, *args: str) -> str:
    proc = subprocess.run([str(harness), *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def fatbin_entries(path: Path) -> list[tuple[int, int, int]]:
    """(kind, arch, flags) of each entry: to check the variants really are what they claim."""
    data = path.read_bytes()
    magic, _, header, body = struct.unpack_from("<IHHQ", data, 0)
    assert magic == 0xBA55ED50
    entries, at = [], header
    while at < header + body:
        kind, _, entry_header, padded = struct.unpack_from("<HHIQ", data, at)
        arch = struct.unpack_from("<I", data, at + 28)[0]
        flags = struct.unpack_from("<Q", data, at + 40)[0]
        entries.append((kind, arch, flags))
        at += entry_header + padded
    return entries


@pytest.mark.parametrize("variant", ["cubin", "cubin_sm80", "fatbin_multi", "fatbin_zstd", "fatbin_lz4",
                                     "fatbin_ptx_only", "ptx"])
def test_layouts_match_signatures(harness: Path, images: dict[str, Path], variant: str) -> None:
    kernels = parse(run_harness(harness, str(images[variant]), "0", "9", "0"))
    assert set(kernels) == set(EXPECTED)
    for name, (params, param_bytes) in EXPECTED.items():
        assert kernels[name].params == params, name
        assert kernels[name].param_bytes == param_bytes, name


def test_compressed_variants_are_compressed(images: dict[str, Path]) -> None:
    zstd = fatbin_entries(images["fatbin_zstd"])
    lz4 = fatbin_entries(images["fatbin_lz4"])
    assert any(kind == 2 and flags & 0x8000 for kind, _, flags in zstd)
    assert any(kind == 2 and flags & 0x2000 for kind, _, flags in lz4)
    assert {arch for kind, arch, _ in fatbin_entries(images["fatbin_multi"]) if kind == 2} == {80, 90}


def test_attributes_from_cubin(harness: Path, images: dict[str, Path]) -> None:
    sm90 = parse(run_harness(harness, str(images["fatbin_multi"]), "0", "9", "0"))
    sm80 = parse(run_harness(harness, str(images["fatbin_multi"]), "0", "8", "0"))
    assert sm90["scale"].arch == 90 and sm80["scale"].arch == 80
    lb = sm90["_Z2lbPf2S54Huge"]
    assert lb.max_threads == 256  # __launch_bounds__(256)
    assert lb.smem == 4000  # float t[1000], without sm_90's 1 KiB reserved area
    assert sm80["_Z2lbPf2S54Huge"].smem == 4000
    assert sm90["_Z2k3v"].smem == 0
    assert all(k.regs > 0 for k in sm90.values())
    assert sm90["_Z2k1PfidcP6float4"].regs >= sm90["_Z2k3v"].regs


def test_global_sizes(harness: Path, images: dict[str, Path]) -> None:
    for variant in ("cubin", "fatbin_zstd"):
        out = run_harness(harness, str(images[variant]), "0", "9", "0", "gvar", "nonexistent")
        assert "global gvar size=148" in out
        assert "global nonexistent missing" in out


def test_lz4_decoder_roundtrip(harness: Path, images: dict[str, Path], tmp_path: Path) -> None:
    """The LZ4 entry of the speed-mode fatbin decodes to exactly the sm_90 cubin nvcc wrote."""
    data = images["fatbin_lz4"].read_bytes()
    header = struct.unpack_from("<H", data, 6)[0]
    kind, _, entry_header, _ = struct.unpack_from("<HHIQ", data, header)
    assert kind == 2
    compressed = struct.unpack_from("<I", data, header + 16)[0]
    plain = struct.unpack_from("<Q", data, header + 56)[0]
    block = tmp_path / "block.lz4"
    block.write_bytes(data[header + entry_header: header + entry_header + compressed])
    proc = subprocess.run([str(harness), "--lz4", str(block), str(plain)], capture_output=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stdout == images["cubin"].read_bytes()


def test_garbage_and_corruption_never_crash(harness: Path, images: dict[str, Path]) -> None:
    assert "garbage ok" in run_harness(harness, "--garbage")
    for variant in ("cubin", "fatbin_multi", "fatbin_zstd", "fatbin_lz4", "ptx"):
        assert "mutate ok" in run_harness(harness, "--mutate", str(images[variant]), "1500")


def torch_fatbin_offsets(path: Path) -> list[int]:
    """File offsets of the fat binaries in the .nv_fatbin section of an ELF shared library."""
    with path.open("rb") as f:
        head = f.read(64)
        shoff = struct.unpack_from("<Q", head, 0x28)[0]
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", head, 0x3A)
        f.seek(shoff)
        sections = [struct.unpack_from("<IIQQQQIIQQ", f.read(shentsize)) for _ in range(shnum)]
        names_off = sections[shstrndx][4]
        for sec in sections:
            f.seek(names_off + sec[0])
            if f.read(11) == b".nv_fatbin\0":
                f.seek(sec[4])
                data = f.read(sec[5])
                base = sec[4]
                break
        else:
            return []
    offsets, at = [], 0
    while at + 16 <= len(data):
        magic, _, header, body = struct.unpack_from("<IHHQ", data, at)
        if magic != 0xBA55ED50:
            at += 8
            continue
        offsets.append(base + at)
        at += header + body
    return offsets


@pytest.mark.skipif(TORCH_CUDA is None or not TORCH_CUDA.exists(), reason="needs CUDA torch")
def test_torch_vectorized_elementwise_kernels_parse(harness: Path) -> None:
    assert TORCH_CUDA is not None
    offsets = torch_fatbin_offsets(TORCH_CUDA)
    assert len(offsets) > 100
    for offset in offsets:
        kernels = parse(run_harness(harness, str(TORCH_CUDA), str(offset), "9", "0"))
        vectorized = {n: k for n, k in kernels.items() if "vectorized_elementwise_kernel" in n}
        if vectorized:
            break
    else:
        pytest.fail("no vectorized_elementwise_kernel in torch's fat binaries")
    assert all(k.params is not None for k in kernels.values()), "every kernel of the fatbin has a layout"
    for kernel in vectorized.values():
        # vectorized_elementwise_kernel<vec, func_t, array_t>(int N, func_t f, array_t data)
        assert kernel.params is not None and len(kernel.params) == 3
        assert kernel.params[0] == (0, 4)
        offsets_seen = [off for off, _ in kernel.params]
        assert offsets_seen == sorted(offsets_seen)
        assert kernel.param_bytes >= kernel.params[-1][0] + kernel.params[-1][1]
        assert kernel.arch == 90 and kernel.regs > 0
