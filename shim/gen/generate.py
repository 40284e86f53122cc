"""Generate the shim's exported API surface from the vendor headers and the import lists.

Inputs: the CUDA headers the wheels ship (found like shim/build.py does), the real vendor
libraries' export lists (readelf of nvidia/*/lib/*.so*), shim/gen/imports/*.txt (written by
scripts/extract_imports.py) and shim/gen/inputs/extra_names.txt. Outputs under shim/gen/out/:

  stubs_<unit>.c   one weak stub per name: typed (the header's exact prototype) where a header
                   declares it, else `int name()`; each logs through tw_unimplemented() and
                   returns the library's not-supported status;
  driver_table.c   (driver name, version, per-thread flavour) -> exported symbol, sorted, from
                   cudaTypedefs.h's PFN_<name>_v<version> typedefs;
  driver_table.h   its entry type;
  manifest.txt     `library<TAB>symbol<TAB>kind` for every stub, kind being what a typed stub
                   returns (status, string, void, value) or `untyped` (tests and docs).

Deterministic: everything is sorted. Run: python -m shim.gen.generate [--check].
"""

from __future__ import annotations

import argparse
import logging
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pycparser import c_ast, c_generator, c_parser

from shim.build import SHIM_DIR, vendor_include_dirs

log = logging.getLogger("generate")

GEN_DIR = SHIM_DIR / "gen"
OUT_DIR = GEN_DIR / "out"
IMPORTS_DIR = GEN_DIR / "imports"
INPUTS_DIR = GEN_DIR / "inputs"
NVML_HEADER = SHIM_DIR / "include" / "vendor" / "nvml.h"

# Status types and the not-supported value a typed stub returns for each.
STATUS_RETURN = {
    "cudaError_t": "cudaErrorNotSupported",
    "enum cudaError": "cudaErrorNotSupported",
    "CUresult": "CUDA_ERROR_NOT_SUPPORTED",
    "cublasStatus_t": "CUBLAS_STATUS_NOT_SUPPORTED",
    "cudnnStatus_t": "CUDNN_STATUS_NOT_SUPPORTED",
    "ncclResult_t": "ncclInvalidUsage",
    "cusparseStatus_t": "CUSPARSE_STATUS_NOT_SUPPORTED",
    "cufftResult": "CUFFT_NOT_SUPPORTED",
    "cusolverStatus_t": "CUSOLVER_STATUS_NOT_SUPPORTED",
    "CUptiResult": "CUPTI_ERROR_NOT_SUPPORTED",
    "nvmlReturn_t": "NVML_ERROR_NOT_SUPPORTED",
    "CUfileError_t": "(CUfileError_t){CU_FILE_PLATFORM_NOT_SUPPORTED, CUDA_SUCCESS}",
}
# Flags that make the preprocessed text plain C99 for pycparser (never used for compiling).
PARSE_DEFINES = ("-D__attribute__(x)=", "-D__extension__=", "-D__asm__(x)=", "-D__asm(x)=",
                 "-D__restrict=", "-D__restrict__=", "-D__inline=inline", "-D__inline__=inline",
                 "-D__declspec(x)=", "-D__forceinline=inline")


@dataclass(frozen=True)
class Unit:
    """One generated translation unit: the headers it includes and the ones whose
    declarations it owns (a library's header often includes another library's)."""

    name: str
    headers: tuple[str, ...]
    owners: tuple[str, ...]
    defines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Library:
    name: str
    units: tuple[Unit, ...]
    real_libs: tuple[str, ...]      # file names under nvidia/*/lib whose exports we mirror
    untyped_status: str             # what an `int name()` stub returns (header enum or number)
    prefixes: tuple[str, ...]       # function names a header declares that belong here


def _unit(name: str, *headers: str, owners: tuple[str, ...] = (), defines: tuple[str, ...] = ()) -> Unit:
    return Unit(name, headers, owners or headers, defines)


CUPTI_HEADERS = ("cupti.h", "cupti_profiler_target.h", "cupti_pcsampling.h",
                 "cupti_range_profiler.h", "cupti_sass_metrics.h", "cupti_pmsampling.h")
# cupti_profiler_host.h and cupti_checkpoint.h are C++ only: their names stay untyped
CUPTI_OWNERS = ("cupti_activity.h", "cupti_activity_deprecated.h", "cupti_callbacks.h",
                "cupti_events.h", "cupti_metrics.h", "cupti_result.h", "cupti_common.h",
                "cupti_version.h", "cupti_target.h", *CUPTI_HEADERS)

LIBRARIES: tuple[Library, ...] = (
    # cuda_profiler_api.h comes with the toolkit only (the wheels lack it, and crt/ too)
    Library("cudart", (_unit("cudart", "cuda_runtime_api.h", "cuda_profiler_api.h"),), ("libcudart.so.13",),
            "cudaErrorNotSupported", ("cuda", "__cuda")),
    # __CUDA_API_VERSION_INTERNAL declares every exported driver name as itself: the legacy
    # ones (cuMemAlloc, 32-bit) and the _ptds/_ptsz flavours, as libcuda exports them.
    Library("driver", (_unit("driver", "cuda.h", defines=("__CUDA_API_VERSION_INTERNAL",)),),
            (), "CUDA_ERROR_NOT_SUPPORTED", ("cu",)),
    Library("cublas", (_unit("cublas", "cublas.h", owners=("cublas.h", "cublas_api.h")),
                       _unit("cublasxt", "cublasXt.h")),
            ("libcublas.so.13",), "CUBLAS_STATUS_NOT_SUPPORTED", ("cublas",)),
    Library("cublasLt", (_unit("cublaslt", "cublasLt.h"),), ("libcublasLt.so.13",),
            "CUBLAS_STATUS_NOT_SUPPORTED", ("cublasLt",)),
    Library("cudnn", (_unit("cudnn", "cudnn.h", owners=(
        "cudnn.h", "cudnn_adv.h", "cudnn_cnn.h", "cudnn_graph.h", "cudnn_ops.h", "cudnn_backend.h",
        "cudnn_version.h")),), ("libcudnn.so.9",), "CUDNN_STATUS_NOT_SUPPORTED", ("cudnn",)),
    Library("nccl", (_unit("nccl", "nccl.h"),), ("libnccl.so.2",), "ncclInvalidUsage",
            ("nccl", "pnccl")),
    Library("cusparse", (_unit("cusparse", "cusparse.h"),), ("libcusparse.so.12",),
            "CUSPARSE_STATUS_NOT_SUPPORTED", ("cusparse",)),
    # cusparseLt.h uses `alignas` without including <stdalign.h> (fine in C++, not in C)
    Library("cusparseLt", (_unit("cusparselt", "stdalign.h", "cusparseLt.h", owners=("cusparseLt.h",)),), ("libcusparseLt.so.0",),
            "CUSPARSE_STATUS_NOT_SUPPORTED", ("cusparseLt",)),
    Library("cufft", (_unit("cufft", "cufft.h", "cufftXt.h"),), ("libcufft.so.12",),
            "CUFFT_NOT_SUPPORTED", ("cufft",)),
    Library("cusolver", (_unit("cusolver", "cusolverDn.h", "cusolverSp.h", "cusolverRf.h",
                               "cusolverSp_LOWLEVEL_PREVIEW.h",
                               owners=("cusolverDn.h", "cusolverSp.h", "cusolverRf.h",
                                       "cusolverSp_LOWLEVEL_PREVIEW.h", "cusolver_common.h")),),
            ("libcusolver.so.12",), "CUSOLVER_STATUS_NOT_SUPPORTED", ("cusolver",)),
    Library("cupti", (_unit("cupti", *CUPTI_HEADERS, owners=CUPTI_OWNERS),), ("libcupti.so.13",),
            "CUPTI_ERROR_NOT_SUPPORTED", ("cupti",)),
    Library("cufile", (_unit("cufile", "cufile.h"),), ("libcufile.so.0",),
            "CU_FILE_PLATFORM_NOT_SUPPORTED", ("cuFile",)),
    Library("nvml", (_unit("nvml", "vendor/nvml.h", owners=("nvml.h",)),), (), "3", ("nvml",)),
)


# ----------------------------------------------------------------------------- inputs

def read_exports(path: Path) -> list[str]:
    """Defined, global, C-named function symbols of a shared object, without version tags."""
    out = subprocess.run(["readelf", "--dyn-syms", "-W", str(path)], capture_output=True,
                         text=True, check=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[3] in ("FUNC", "IFUNC") and parts[4] in ("GLOBAL", "WEAK") \
                and parts[6] != "UND":
            name = parts[7].split("@")[0]
            if re.fullmatch(r"[A-Za-z_]\w*", name) and not name.startswith("_Z"):
                names.add(name)
    return sorted(names)


def find_real_lib(file_name: str, include_dirs: list[Path]) -> Path | None:
    for inc in include_dirs:
        cand = inc.parent / "lib" / file_name
        if cand.is_file():
            return cand
    return None


def read_imports() -> dict[str, set[str]]:
    """Import-list and extra names, by library."""
    names: dict[str, set[str]] = {}
    files = sorted(IMPORTS_DIR.glob("*.txt")) + sorted(INPUTS_DIR.glob("*.txt"))
    for path in files:
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                lib, name = line.split("\t") if "\t" in line else line.split()
                names.setdefault(lib, set()).add(name)
    return names


# ----------------------------------------------------------------------------- header parsing

@dataclass
class Proto:
    name: str
    ret: str          # return type, as C text
    params: str       # parameter list with names, as C text
    header: str       # basename of the declaring header
    ret_kind: str     # "status", "string", "void", "value"


@dataclass
class ParsedUnit:
    protos: dict[str, Proto] = field(default_factory=dict)
    typedefs: dict[str, c_ast.Typedef] = field(default_factory=dict)
    macros: set[str] = field(default_factory=set)


def _preprocess(text: str, include_dirs: list[Path], extra: tuple[str, ...]) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".c", delete=False) as tmp:
        tmp.write(text)
    try:
        cmd = ["gcc", "-E", "-std=gnu11", *extra, f"-I{SHIM_DIR / 'include'}",
               *[f"-I{d}" for d in include_dirs], tmp.name]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    finally:
        Path(tmp.name).unlink()


_TYPEDEF_FN = re.compile(r"\(\s*\*\s*(\w+)\s*\)")
_TYPEDEF_NAME = re.compile(r"(\w+)\s*(?:\[[^\]]*\]\s*)*$")


def _split_statements(text: str) -> list[str]:
    """Top-level statements: `;` at brace depth 0, or the `}` closing a function body."""
    out, depth, start, brace_at = [], 0, 0, -1
    for i, ch in enumerate(text):
        if ch == "{":
            if depth == 0:
                brace_at = i
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0 and text[start:brace_at].rstrip().endswith(")"):
                out.append(text[start:i + 1])
                start = i + 1
        elif ch == ";" and depth == 0:
            out.append(text[start:i + 1])
            start = i + 1
    return out


def _vendor_text(pre: str, include_dirs: list[Path]) -> tuple[str, list[str]]:
    """Split preprocessed text into the vendor part (kept) and the typedef names of the
    system part (declared as opaque `int` typedefs, which is all the parser needs)."""
    roots = [str(d) for d in include_dirs] + [str(SHIM_DIR / "include")]
    vendor: list[str] = []
    system: list[str] = []
    current_vendor = False
    for line in pre.splitlines():
        if line.startswith("# "):
            m = re.match(r'# \d+ "([^"]+)"', line)
            if m:
                current_vendor = any(m.group(1).startswith(r) for r in roots)
                vendor.append(line)
            continue
        (vendor if current_vendor else system).append(line)
    typedef_names: set[str] = set()
    for stmt in _split_statements("\n".join(system)):
        s = stmt.strip()
        if not s.startswith("typedef"):
            continue
        body = s.rstrip(";").strip()
        m = _TYPEDEF_FN.search(body)
        name = m.group(1) if m else None
        if name is None:
            m2 = _TYPEDEF_NAME.search(body)
            name = m2.group(1) if m2 else None
        if name:
            typedef_names.add(name)
    for builtin in ("__builtin_va_list", "_Float128", "_Float64", "_Float32", "_Float64x",
                    "_Float32x", "__int128", "__float128"):
        typedef_names.discard(builtin)
    return "\n".join(vendor), sorted(typedef_names)


class _Gen(c_generator.CGenerator):
    pass


def _param_text(gen: _Gen, params: c_ast.ParamList | None) -> str:
    if params is None or not params.params:
        return "void"
    parts = []
    for i, p in enumerate(params.params):
        if isinstance(p, c_ast.EllipsisParam):
            parts.append("...")
            continue
        if isinstance(p, c_ast.Typename):
            if isinstance(p.type, c_ast.TypeDecl) and isinstance(p.type.type, c_ast.IdentifierType) \
                    and p.type.type.names == ["void"] and len(params.params) == 1:
                return "void"
            p = c_ast.Decl(name=f"a{i}", quals=p.quals, align=[], storage=[], funcspec=[],
                           type=_set_declname(p.type, f"a{i}"), init=None, bitsize=None)
        elif isinstance(p, c_ast.Decl) and not p.name:
            p.name = f"a{i}"
            p.type = _set_declname(p.type, f"a{i}")
        parts.append(gen.visit(p))
    return ", ".join(parts)


def _set_declname(node: c_ast.Node, name: str) -> c_ast.Node:
    inner = node
    while not isinstance(inner, c_ast.TypeDecl):
        inner = inner.type
    inner.declname = name
    return node


def _ret_text(gen: _Gen, func: c_ast.FuncDecl) -> tuple[str, c_ast.Node]:
    ret = func.type
    # Render the return type as an abstract declaration: drop the function's own name.
    import copy

    ret_copy = copy.deepcopy(ret)
    _set_declname(ret_copy, None)  # type: ignore[arg-type]
    return gen.visit(c_ast.Typename(name=None, quals=[], align=None, type=ret_copy)), ret


def _ret_kind(ret_text: str) -> str:
    norm = " ".join(ret_text.split())
    if norm in STATUS_RETURN:
        return "status"
    if norm == "void":
        return "void"
    if norm in ("const char *", "char const *"):
        return "string"
    return "value"


def available(unit: Unit, include_dirs: list[Path]) -> Unit:
    """The unit without vendor headers that no include directory has (a toolkit-only header)."""
    def found(h: str) -> bool:
        return h == "stdalign.h" or any((d / h).is_file() for d in [*include_dirs, SHIM_DIR / "include"])

    headers = tuple(h for h in unit.headers if found(h))
    for h in unit.headers:
        if h not in headers:
            log.warning("unit %s: %s not found, its names become untyped", unit.name, h)
    return Unit(unit.name, headers, unit.owners, unit.defines)


def parse_unit(unit: Unit, include_dirs: list[Path], is_ours: re.Pattern[str]) -> ParsedUnit | None:
    includes = "".join(f"#define {d} 1\n" for d in unit.defines) + "".join(
        f"#include <{h}>\n" for h in unit.headers)
    try:
        pre = _preprocess(includes, include_dirs, PARSE_DEFINES)
        macros_out = _preprocess(includes, include_dirs, ("-dM",))
    except subprocess.CalledProcessError as err:
        log.warning("unit %s: headers do not preprocess (%s), names become untyped", unit.name,
                    err.stderr.strip().splitlines()[-1:] if err.stderr else err)
        return None
    vendor, sys_typedefs = _vendor_text(pre, include_dirs)
    prelude = "".join(f"typedef int {n};\n" for n in sys_typedefs)
    try:
        ast = c_parser.CParser().parse(prelude + vendor, filename=unit.name)
    except c_parser.ParseError as err:
        log.warning("unit %s: cannot parse the headers (%s), names become untyped", unit.name, err)
        return None
    gen = _Gen()
    parsed = ParsedUnit()
    parsed.macros = {m.split()[1].split("(")[0] for m in macros_out.splitlines() if m.startswith("#define ")}
    for ext in ast.ext:
        if isinstance(ext, c_ast.Typedef):
            parsed.typedefs[ext.name] = ext
            continue
        if not isinstance(ext, c_ast.Decl) or not isinstance(ext.type, c_ast.FuncDecl):
            continue
        name = ext.name
        header = Path(ext.coord.file).name if ext.coord and ext.coord.file else ""
        if not is_ours.match(name) or header not in unit.owners or "static" in ext.storage:
            continue
        ret, _ = _ret_text(gen, ext.type)
        params = _param_text(gen, ext.type.args)
        parsed.protos.setdefault(name, Proto(name, ret, params, header, _ret_kind(ret)))
    return parsed


# ----------------------------------------------------------------------------- emission

HEADER_COMMENT = ("/* Generated by shim/gen/generate.py from the vendor headers and import lists."
                  " Do not edit.\n * Weak stubs: a hand-written definition in shim/src overrides"
                  " one at link time. */\n")


def _stub_body(name: str, ret: str, kind: str, status: str) -> str:
    if kind == "status":
        return f'tw_unimplemented("{name}"); return {status};'
    if kind == "void":
        return f'tw_unimplemented("{name}");'
    if kind == "string":
        return f'tw_unimplemented("{name}"); return "{name}: not implemented by timewarp";'
    return f'tw_unimplemented("{name}"); {ret} tw_r; __builtin_memset(&tw_r, 0, sizeof tw_r); return tw_r;'


def emit_unit(unit: Unit, lib: Library, typed: list[Proto], untyped: list[str],
              macros: set[str], has_headers: bool) -> str:
    out = [HEADER_COMMENT]
    for d in unit.defines:
        out.append(f"#define {d} 1\n")
    if has_headers:
        out.extend(f"#include <{h}>\n" if not h.startswith("vendor/") else f'#include "{h}"\n'
                   for h in unit.headers)
    out.append('#include "tw_core.h"\n\n#define TW_STUB __attribute__((weak, visibility("default")))\n\n')
    for p in typed:
        status = STATUS_RETURN.get(" ".join(p.ret.split()), "")
        if p.name in macros:
            out.append(f"#undef {p.name}\n")
        out.append(f"TW_STUB {p.ret} {p.name}({p.params}) {{ "
                   f"{_stub_body(p.name, p.ret, p.ret_kind, status)} }}\n")
    if untyped:
        out.append("\n/* exported by the real library or imported, without a prototype here */\n")
        status = lib.untyped_status if has_headers or lib.untyped_status.isdigit() else "801"
        for name in untyped:
            if name in macros:
                out.append(f"#undef {name}\n")
            out.append(f'TW_STUB int {name}() {{ tw_unimplemented("{name}"); return (int){status}; }}\n')
    return "".join(out)


# ----------------------------------------------------------------------------- driver table

@dataclass(frozen=True, order=True)
class DriverEntry:
    name: str
    per_thread: int
    version: int
    symbol: str


class _Canon(c_ast.NodeVisitor):
    """Rewrites typedef names that alias a scalar, struct or enum to what they alias, so that
    `CUdevice` and `CUdevice_v1` or `CUDA_MEMCPY3D` and `CUDA_MEMCPY3D_v2` compare equal."""

    def __init__(self, typedefs: dict[str, c_ast.Typedef]) -> None:
        self.typedefs = typedefs

    def resolve(self, name: str, depth: int = 0) -> str:
        td = self.typedefs.get(name)
        if td is None or depth > 16 or not isinstance(td.type, c_ast.TypeDecl):
            return name
        inner = td.type.type
        if isinstance(inner, c_ast.IdentifierType):
            return self.resolve(" ".join(inner.names), depth + 1)
        if isinstance(inner, (c_ast.Struct, c_ast.Union, c_ast.Enum)) and inner.name:
            return f"{type(inner).__name__.lower()} {inner.name}"
        return name

    def visit_IdentifierType(self, node: c_ast.IdentifierType) -> None:
        node.names = [self.resolve(" ".join(node.names))]


def _type_sig(gen: _Gen, func: c_ast.FuncDecl, canon: _Canon) -> str:
    import copy

    f = copy.deepcopy(func)
    if f.args is not None:
        for p in f.args.params:
            if isinstance(p, c_ast.Decl):
                p.name = None
                _set_declname(p.type, None)  # type: ignore[arg-type]
    _set_declname(f.type, None)  # type: ignore[arg-type]
    canon.visit(f)
    return gen.visit(c_ast.Typename(name=None, quals=[], align=None, type=f))


def driver_table(include_dirs: list[Path], exported: set[str]) -> tuple[list[DriverEntry], list[str]]:
    """(name, per_thread, version) -> exported driver symbol, matched by signature."""
    text = "#define __CUDA_API_VERSION_INTERNAL 1\n#include <cuda.h>\n#include <cudaTypedefs.h>\n"
    pre = _preprocess(text, include_dirs, PARSE_DEFINES)
    vendor, sys_typedefs = _vendor_text(pre, include_dirs)
    ast = c_parser.CParser().parse("".join(f"typedef int {n};\n" for n in sys_typedefs) + vendor)
    gen = _Gen()
    canon = _Canon({e.name: e for e in ast.ext if isinstance(e, c_ast.Typedef)})
    funcs: dict[str, str] = {}
    pfns: list[tuple[str, int, int, str]] = []
    for ext in ast.ext:
        if isinstance(ext, c_ast.Decl) and isinstance(ext.type, c_ast.FuncDecl) and ext.name.startswith("cu"):
            funcs[ext.name] = _type_sig(gen, ext.type, canon)
        elif isinstance(ext, c_ast.Typedef):
            m = re.fullmatch(r"PFN_(cu\w+?)_v(\d+)(_ptds|_ptsz)?", ext.name)
            if m and isinstance(ext.type, c_ast.PtrDecl) and isinstance(ext.type.type, c_ast.FuncDecl):
                pfns.append((m.group(1), int(m.group(2)), 1 if m.group(3) else 0,
                             _type_sig(gen, ext.type.type, canon)))
    by_base: dict[str, list[str]] = {}
    for fn in funcs:
        base = re.sub(r"_v\d+$", "", re.sub(r"_pt(ds|sz)$", "", fn))
        by_base.setdefault(base, []).append(fn)
    entries: list[DriverEntry] = []
    problems: list[str] = []
    for base, version, per_thread, sig in sorted(pfns):
        cands = [fn for fn in sorted(by_base.get(base, []), key=_version_order)
                 if bool(re.search(r"_pt(ds|sz)$", fn)) == bool(per_thread) and funcs[fn] == sig]
        if not cands:
            problems.append(f"no exported symbol matches PFN_{base}_v{version}{'_pt' if per_thread else ''}")
            continue
        # equal signatures across versions: the oldest name that is not taken by an older version
        taken = {e.symbol for e in entries if e.name == base and e.per_thread == per_thread}
        free = [c for c in cands if c not in taken] or cands
        entries.append(DriverEntry(base, per_thread, version, free[0]))
    named = {e.name for e in entries}
    for fn in sorted(funcs):
        base = re.sub(r"_v\d+$", "", re.sub(r"_pt(ds|sz)$", "", fn))
        if base not in named and fn == base:
            # declared but without a PFN typedef (newer than cudaTypedefs.h): any version
            entries.append(DriverEntry(base, 0, 0, fn))
    entries = [e for e in entries if e.symbol in exported]
    return sorted(entries), problems


def _version_order(fn: str) -> tuple[int, str]:
    m = re.search(r"_v(\d+)(?:_pt(?:ds|sz))?$", fn)
    return (int(m.group(1)) if m else 1, fn)


def emit_driver_table(entries: list[DriverEntry]) -> tuple[str, str]:
    header = (HEADER_COMMENT +
              "#ifndef TW_DRIVER_TABLE_H\n#define TW_DRIVER_TABLE_H\n\n"
              "/* One driver entry point: cuGetProcAddress(name, version, flags) picks the newest\n"
              " * entry with version <= the requested one, per-thread flavour first when asked. */\n"
              "typedef struct tw_driver_entry {\n    const char *name;\n    int version;\n"
              "    int per_thread;\n    void *fn;\n} tw_driver_entry;\n\n"
              "/* sorted by (name, per_thread, version) for binary search on name */\n"
              "extern const tw_driver_entry tw_driver_table[];\n"
              "extern const unsigned tw_driver_table_len;\n\n#endif\n")
    body = [HEADER_COMMENT, "#define __CUDA_API_VERSION_INTERNAL 1\n#include <cuda.h>\n",
            '#include "driver_table.h"\n\n']
    body.append("const tw_driver_entry tw_driver_table[] = {\n")
    for e in entries:
        body.append(f'    {{"{e.name}", {e.version}, {e.per_thread}, (void *)&{e.symbol}}},\n')
    body.append("};\n\nconst unsigned tw_driver_table_len = sizeof tw_driver_table / sizeof tw_driver_table[0];\n")
    return header, "".join(body)


# ----------------------------------------------------------------------------- main

def generate(out_dir: Path) -> dict[str, dict[str, int]]:
    include_dirs = vendor_include_dirs()
    imports = read_imports()
    files: dict[str, str] = {}
    manifest: list[str] = []
    counts: dict[str, dict[str, int]] = {}
    emitted: set[str] = set()
    driver_exports: set[str] = set()
    for lib in LIBRARIES:
        prefix_re = re.compile("(" + "|".join(re.escape(p) for p in lib.prefixes) + ")")
        parsed_units: list[tuple[Unit, ParsedUnit | None]] = []
        for unit in (available(u, include_dirs) for u in lib.units):
            if lib.name == "nvml" and not NVML_HEADER.is_file():
                parsed_units.append((unit, None))
                continue
            parsed_units.append((unit, parse_unit(unit, include_dirs, prefix_re)))
        wanted: set[str] = set(imports.get(lib.name, set()))
        for real in lib.real_libs:
            path = find_real_lib(real, include_dirs)
            if path is None:
                log.warning("%s: real library %s not found, its export list is skipped", lib.name, real)
                continue
            # the real library also exports loader and foreign internals (_init, NVTX
            # injection hooks, cuBLAS helpers inside cuSOLVER): mirror only its own API names
            wanted.update(n for n in read_exports(path) if prefix_re.match(n))
        typed_by_unit: dict[str, list[Proto]] = {u.name: [] for u, _ in parsed_units}
        for unit, parsed in parsed_units:
            if parsed is None:
                continue
            for name in sorted(parsed.protos):
                if name not in emitted:
                    typed_by_unit[unit.name].append(parsed.protos[name])
                    emitted.add(name)
        # exported per-thread flavours share the base prototype (the header declares them only
        # under CUDA_API_PER_THREAD_DEFAULT_STREAM)
        for name in sorted(wanted - emitted):
            base = re.sub(r"_pt(ds|sz)$", "", name)
            for unit, parsed in parsed_units:
                if parsed and base != name and base in parsed.protos:
                    p = parsed.protos[base]
                    typed_by_unit[unit.name].append(Proto(name, p.ret, p.params, p.header, p.ret_kind))
                    emitted.add(name)
                    break
        untyped = sorted(n for n in wanted - emitted if re.fullmatch(r"[A-Za-z_]\w*", n))
        emitted.update(untyped)
        lib_counts = {"typed": 0, "untyped": len(untyped)}
        for i, (unit, parsed) in enumerate(parsed_units):
            typed = sorted(typed_by_unit[unit.name], key=lambda p: p.name)
            lib_counts["typed"] += len(typed)
            files[f"stubs_{unit.name}.c"] = emit_unit(
                unit, lib, typed, untyped if i == 0 else [], parsed.macros if parsed else set(),
                parsed is not None)
            manifest += [f"{lib.name}\t{p.name}\t{p.ret_kind}" for p in typed]
        manifest += [f"{lib.name}\t{n}\tuntyped" for n in untyped]
        counts[lib.name] = lib_counts
        if lib.name == "driver":
            driver_exports = {p.name for ps in typed_by_unit.values() for p in ps} | set(untyped)
        log.info("%s: %d typed, %d untyped stubs", lib.name, lib_counts["typed"], lib_counts["untyped"])
    entries, problems = driver_table(include_dirs, driver_exports)
    for msg in problems:
        log.info("driver table: %s", msg)
    files["driver_table.h"], files["driver_table.c"] = emit_driver_table(entries)
    files["manifest.txt"] = "".join(line + "\n" for line in sorted(manifest))
    counts["driver_table"] = {"entries": len(entries)}
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("stubs_*.c"):
        if old.name not in files:
            old.unlink()
    for name, text in sorted(files.items()):
        (out_dir / name).write_text(text)
    return counts


def check(out_dir: Path) -> list[str]:
    """Regenerate into a temporary directory; the names of files that differ from out_dir."""
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh = {p.name: p.read_text() for p in Path(tmp).iterdir()}
    current = {p.name: p.read_text() for p in out_dir.iterdir() if p.is_file()}
    return sorted(n for n in fresh.keys() | current.keys() if fresh.get(n) != current.get(n))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="generate shim/gen/out from the vendor headers")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument("--check", action="store_true", help="only report whether --out is stale")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    if args.check:
        stale = check(args.out)
        for name in stale:
            log.error("stale: %s", name)
        return 1 if stale else 0
    counts = generate(args.out)
    total = sum(c.get("typed", 0) + c.get("untyped", 0) for c in counts.values())
    log.info("total %d stubs, %d driver table entries", total, counts["driver_table"]["entries"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
