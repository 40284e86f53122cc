"""Extract the CUDA API names a framework's wheels use, for the shim's generated surface.

For each framework package (torch, triton, vllm, sglang) found in site-packages:
  * `readelf --dyn-syms -W` of every .so that NEEDs a CUDA library: undefined symbols with a
    vendor version tag (`cudaMalloc@libcudart.so.13`) map by the tag; unversioned ones (NCCL,
    cuSPARSELt, cuFile, the driver) map by which real vendor library in the wheels exports them,
    or by the driver header's name list;
  * a strings scan of every .so in the package for NUL-terminated API names that are resolved at
    run time (dlsym, cuGetProcAddress, cudaGetDriverEntryPoint): driver `cu*`, NVML `nvml*`,
    and any name a real vendor library exports (CUPTI for proton, for example);
  * a scan of the package's Python and C sources (Triton's launcher in
    triton/backends/nvidia/driver.{c,py}) for driver and NVML names.
Writes shim/gen/imports/<framework>.txt, sorted `library<TAB>symbol` lines, only for the
libraries the shim replaces (NVRTC, nvJitLink, NVSHMEM and cuRAND stay real or unused).
"""

from __future__ import annotations

import argparse
import logging
import re
import subprocess
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("extract_imports")

REPO = Path(__file__).resolve().parent.parent
IMPORTS_DIR = REPO / "shim" / "gen" / "imports"
FRAMEWORKS = ("torch", "triton", "vllm", "sglang")

# Libraries the shim replaces, keyed by the shim's library name.
EMULATED = ("cudart", "driver", "cublas", "cublasLt", "cudnn", "nccl", "cusparse", "cusparseLt",
            "cufft", "cusolver", "cupti", "cufile", "nvml")

# Real library file name (without the .so.N tail) -> shim library name. Also matches version
# tags, which are the library's soname.
SONAME_TO_LIB = {
    "libcudart": "cudart", "libcuda": "driver", "libcublas": "cublas", "libcublasLt": "cublasLt",
    "libcudnn": "cudnn", "libnccl": "nccl", "libcusparse": "cusparse",
    "libcusparseLt": "cusparseLt", "libcufft": "cufft", "libcusolver": "cusolver",
    "libcupti": "cupti", "libcufile": "cufile", "libnvidia-ml": "nvml", "libnvrtc": "nvrtc",
    "libnvJitLink": "nvJitLink", "libnvshmem_host": "nvshmem", "libcurand": "curand",
}
# Vendor libraries whose exports define unversioned names (the sub-libraries of cuDNN are
# loaded by libcudnn.so.9 itself, which the shim replaces).
VENDOR_LIB_FILES = ("libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libcudnn.so.9",
                    "libnccl.so.2", "libcusparse.so.12", "libcusparseLt.so.0", "libcufft.so.12",
                    "libcusolver.so.12", "libcupti.so.13", "libcufile.so.0", "libnvrtc.so.13")

CUDA_NEEDED = re.compile(rb"lib(cuda|cudart|cublas|cublasLt|cudnn|nccl|cusparse|cusparseLt|cufft|"
                         rb"cusolver|cupti|cufile|nvidia-ml|nvrtc)[.]so")
# NUL-terminated identifiers that look like API names of the emulated families.
STRING_NAME = re.compile(rb"\x00((?:cu|nvml|nccl)[A-Za-z0-9_]{3,80})(?=\x00)")
SOURCE_NAME = re.compile(r"\b((?:cu[A-Z]|nvml[A-Z])\w+)")


def _soname_lib(tag: str) -> str | None:
    base = tag.split(".so")[0]
    return SONAME_TO_LIB.get(base)


@dataclass
class DynSym:
    name: str
    version: str  # "" when unversioned
    defined: bool


def read_dyn_syms(path: Path) -> list[DynSym]:
    """Function symbols of a shared object's dynamic symbol table."""
    out = subprocess.run(["readelf", "--dyn-syms", "-W", str(path)], capture_output=True,
                         text=True, check=True).stdout
    syms: list[DynSym] = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 8 or not parts[0].endswith(":"):
            continue
        kind, bind, ndx, name = parts[3], parts[4], parts[6], parts[7]
        if kind not in ("FUNC", "IFUNC", "NOTYPE") or bind not in ("GLOBAL", "WEAK"):
            continue
        base, _, version = name.partition("@")
        syms.append(DynSym(base, version.lstrip("@"), ndx != "UND"))
    return syms


def _needs_cuda(path: Path) -> bool:
    out = subprocess.run(["readelf", "-d", "-W", str(path)], capture_output=True, check=False).stdout
    return any(CUDA_NEEDED.search(line) for line in out.splitlines() if b"NEEDED" in line)


@dataclass
class NameIndex:
    """What names exist: exports of the real vendor libraries and the driver header's names."""

    exported: dict[str, str] = field(default_factory=dict)  # symbol -> shim library
    driver: set[str] = field(default_factory=set)

    @classmethod
    def build(cls, site: Path) -> NameIndex:
        idx = cls()
        for lib_file in VENDOR_LIB_FILES:
            for path in sorted(site.glob(f"nvidia/*/lib/{lib_file}")):
                lib = _soname_lib(lib_file)
                for sym in read_dyn_syms(path):
                    if sym.defined and lib and not sym.name.startswith("_Z"):
                        idx.exported.setdefault(sym.name, lib)
        for header in ("cuda.h", "cudaTypedefs.h"):
            for path in sorted(site.glob(f"nvidia/*/include/{header}")):
                text = path.read_text(errors="replace")
                idx.driver.update(re.findall(r"\bCUDAAPI\s+(cu[A-Z]\w*)\s*\(", text))
                idx.driver.update(re.findall(r"\bPFN_(cu[A-Z]\w*?)_v\d+", text))
                idx.driver.update(re.findall(r"#define\s+cu[A-Z]\w*\s+(cu[A-Z]\w*)\s*$", text, re.M))
                for base, target in re.findall(r"#define\s+(cu[A-Z]\w*)\s+__CUDA_API_PT[DS][SZ]\((cu\w+)\)",
                                               text):
                    idx.driver.update((base, target, f"{target}_ptds", f"{target}_ptsz"))
        if not idx.exported or not idx.driver:
            log.warning("vendor wheels incomplete under %s: %d exports, %d driver names", site,
                        len(idx.exported), len(idx.driver))
        return idx

    def classify(self, name: str) -> str | None:
        if name in self.exported:
            return self.exported[name]
        if name in self.driver:
            return "driver"
        if re.fullmatch(r"nvml[A-Z]\w+", name) and not name.endswith("_t"):
            return "nvml"  # a function, not a type name (nvmlDevice_t) from the sources
        return None


def extract(pkg_dir: Path, idx: NameIndex) -> tuple[set[tuple[str, str]], dict[str, int]]:
    """(library, symbol) pairs the package uses, and counts of names left out by library."""
    found: set[tuple[str, str]] = set()
    skipped: dict[str, int] = {}
    vendor_names = {Path(f).name.split(".so")[0] for f in VENDOR_LIB_FILES} | {
        "libcupti", "libnvperf_host", "libnvperf_target", "libpcsamplingutil", "libcheckpoint"}
    for so in sorted(pkg_dir.rglob("*.so*")):
        if not so.is_file() or so.is_symlink() or so.name.split(".so")[0] in vendor_names:
            continue  # a vendor library bundled in the package is a provider, not a user
        if _needs_cuda(so):
            for sym in read_dyn_syms(so):
                if sym.defined:
                    continue
                lib = _soname_lib(sym.version) if sym.version else idx.classify(sym.name)
                if lib is None:
                    continue
                if lib in EMULATED:
                    found.add((lib, sym.name))
                else:
                    skipped[lib] = skipped.get(lib, 0) + 1
        data = so.read_bytes()
        for match in STRING_NAME.finditer(data):
            name = match.group(1).decode()
            lib = idx.classify(name)
            if lib in EMULATED:
                found.add((lib, name))
    for src in sorted([*pkg_dir.rglob("*.py"), *pkg_dir.rglob("*.c")]):
        for name in SOURCE_NAME.findall(src.read_text(errors="replace")):
            lib = idx.classify(name)
            if lib in ("driver", "nvml"):
                found.add((lib, name))
    return found, skipped


def default_site_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site-packages", type=Path, default=default_site_packages())
    parser.add_argument("--out", type=Path, default=IMPORTS_DIR)
    parser.add_argument("frameworks", nargs="*", default=list(FRAMEWORKS))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    idx = NameIndex.build(args.site_packages)
    args.out.mkdir(parents=True, exist_ok=True)
    for fw in args.frameworks:
        pkg = args.site_packages / fw
        if not pkg.is_dir():
            log.info("%s: not installed under %s, skipped", fw, args.site_packages)
            continue
        found, skipped = extract(pkg, idx)
        lines = sorted(f"{lib}\t{name}" for lib, name in found)
        (args.out / f"{fw}.txt").write_text("".join(line + "\n" for line in lines))
        per_lib: dict[str, int] = {}
        for lib, _ in found:
            per_lib[lib] = per_lib.get(lib, 0) + 1
        log.info("%s: %d names %s; not emulated: %s", fw, len(lines), dict(sorted(per_lib.items())),
                 dict(sorted(skipped.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
