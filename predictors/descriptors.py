"""Prediction descriptors: one dataclass per op kind, built from the shim's `tw_desc` wire struct.

The enum values mirror shim/include/timewarp/records.h (tests check them against shim.abi).
"""

from __future__ import annotations

import enum
import functools
import logging
import shutil
import subprocess
from dataclasses import dataclass, field, fields

log = logging.getLogger(__name__)


class OpKind(enum.IntEnum):
    NONE = 0
    KERNEL = 1
    MEMCPY = 2
    MEMSET = 3
    GEMM = 4
    CONV = 5
    ATTENTION = 6
    FFT = 7
    SOLVER = 8
    COLLECTIVE = 9
    LIBRARY = 10
    EVENT_RECORD = 11
    EVENT_WAIT = 12
    HOST_FUNC = 13


class CopyKind(enum.IntEnum):
    H2D_PAGEABLE = 1
    H2D_PINNED = 2
    D2H_PAGEABLE = 3
    D2H_PINNED = 4
    D2D = 5
    H2H = 6
    PEER = 7


class DType(enum.IntEnum):
    UNKNOWN = 0
    F64 = 1
    F32 = 2
    TF32 = 3
    F16 = 4
    BF16 = 5
    F8E4M3 = 6
    F8E5M2 = 7
    I8 = 8
    I32 = 9
    C64 = 10
    C128 = 11
    I64 = 12
    F4 = 13


class Model(enum.IntEnum):
    NONE = 0
    ROOFLINE = 1
    TABLE = 2
    XGB = 3
    FLOOR = 4
    REAL = 5


FLAG_TRANS_A = 0x1
FLAG_TRANS_B = 0x2
FLAG_CAUSAL = 0x4
FLAG_BACKWARD_DATA = 0x8
FLAG_BACKWARD_FILTER = 0x10
FLAG_BIAS_EPILOGUE = 0x20
FLAG_GELU_EPILOGUE = 0x40
FLAG_COOPERATIVE = 0x80
FLAG_BACKWARD = 0x100
FLAG_PAGED_KV = 0x200


class Described(enum.IntEnum):
    """How a kernel launch's bytes were found (records.h enum tw_described)."""
    NONE = 0       # no parameter layout: only the launch shape is known
    THREADS = 1    # pointers found, no element count: capped per launched thread
    COUNT = 2      # pointers capped by an element count among the parameters
    FAMILY = 3     # the kernel's family decoded its arguments (shim/src/kernel_shapes.c)

DTYPE_BYTES: dict[DType, float] = {
    DType.UNKNOWN: 4, DType.F64: 8, DType.F32: 4, DType.TF32: 4, DType.F16: 2, DType.BF16: 2,
    DType.F8E4M3: 1, DType.F8E5M2: 1, DType.I8: 1, DType.I32: 4, DType.C64: 8, DType.C128: 16,
    DType.I64: 8, DType.F4: 0.5,
}

# tw_desc's fields in declaration order (records.h); from_wire expects exactly these keys.
WIRE_FIELDS = ("kind", "device", "dtype_a", "dtype_b", "dtype_out", "dtype_compute", "flags", "smem_bytes",
               "grid", "block", "param_bytes", "pointer_params", "dims", "bytes", "flops", "name_id", "reserved")


def _dtype(value: object) -> DType:
    try:
        return DType(int(value))  # type: ignore[arg-type]
    except ValueError:
        return DType.UNKNOWN


def peak_class(dtype: DType, compute: DType = DType.UNKNOWN) -> str:
    """The catalog peak a math op on these types runs at (GpuSpec.peak_flops names)."""
    if dtype in (DType.F8E4M3, DType.F8E5M2, DType.F4):
        return "fp8"
    if dtype == DType.I8:
        return "int8"
    if dtype == DType.F16:
        return "fp16"
    if dtype == DType.BF16:
        return "bf16"
    if dtype in (DType.F64, DType.C128):
        return "fp64"
    if dtype == DType.TF32 or compute == DType.TF32:
        return "tf32"
    return "fp32"


@dataclass(frozen=True)
class KernelDesc:
    name: str
    grid: tuple[int, int, int] = (1, 1, 1)
    block: tuple[int, int, int] = (1, 1, 1)
    smem_bytes: int = 0
    param_bytes: int = 0
    pointer_params: int = 0
    bytes: int = 0           # bytes it reads and writes: decoded, or estimated from its pointers
    flops: int = 0
    flags: int = 0
    device: int = 0
    reach_bytes: int = 0     # bytes its pointer arguments reach, to their allocations' ends
    described: int = Described.NONE  # how `bytes` was found

    @property
    def blocks(self) -> int:
        return self.grid[0] * self.grid[1] * self.grid[2]

    @property
    def threads_per_block(self) -> int:
        return self.block[0] * self.block[1] * self.block[2]

    @property
    def threads(self) -> int:
        return self.blocks * self.threads_per_block


@dataclass(frozen=True)
class GemmDesc:
    m: int
    n: int
    k: int
    batch: int = 1
    dtype_a: DType = DType.F32
    dtype_b: DType = DType.F32
    dtype_out: DType = DType.F32
    dtype_compute: DType = DType.F32
    flags: int = 0
    lda: int = 0
    ldb: int = 0
    ldc: int = 0
    flops: int = 0
    name: str = "gemm"
    device: int = 0

    def flop_count(self) -> int:
        return self.flops or 2 * self.m * self.n * self.k * max(self.batch, 1)

    def byte_count(self) -> int:
        a = DTYPE_BYTES[self.dtype_a] * self.m * self.k
        b = DTYPE_BYTES[self.dtype_b] * self.k * self.n
        c = DTYPE_BYTES[self.dtype_out] * self.m * self.n
        return int((a + b + c) * max(self.batch, 1))


@dataclass(frozen=True)
class CopyDesc:
    copy_kind: CopyKind
    bytes: int
    name: str = "memcpy"
    device: int = 0


@dataclass(frozen=True)
class MemsetDesc:
    bytes: int
    name: str = "memset"
    device: int = 0


@dataclass(frozen=True)
class ConvDesc:
    n: int
    c: int
    h: int
    w: int
    k: int
    r: int
    s: int
    groups: int = 1
    dtype: DType = DType.F32
    dtype_compute: DType = DType.F32
    flags: int = 0
    flops: int = 0
    bytes: int = 0
    name: str = "conv"
    device: int = 0

    def implicit_gemm(self) -> tuple[int, int, int]:
        """(M, N, K) of the implicit GEMM, stride 1 and 'same' padding (the wire carries no more)."""
        groups = max(self.groups, 1)
        return self.n * self.h * self.w, self.k, max(self.c // groups, 1) * self.r * self.s

    def flop_count(self) -> int:
        m, n, k = self.implicit_gemm()
        return self.flops or 2 * m * n * k

    def byte_count(self) -> int:
        if self.bytes:
            return self.bytes
        size = DTYPE_BYTES[self.dtype]
        groups = max(self.groups, 1)
        elements = self.n * self.c * self.h * self.w + self.k * (self.c // groups) * self.r * self.s \
            + self.n * self.k * self.h * self.w
        return int(elements * size)


@dataclass(frozen=True)
class AttentionDesc:
    batch: int
    heads_q: int
    heads_kv: int
    seq_q: int
    seq_kv: int
    head_dim: int
    dtype: DType = DType.F16
    flags: int = 0
    flops: int = 0
    bytes: int = 0
    name: str = "attention"
    device: int = 0
    total_q: int = 0         # query tokens over the batch (0: batch x seq_q)
    total_kv: int = 0        # key tokens over the batch (0: batch x seq_kv)

    @property
    def causal(self) -> bool:
        return bool(self.flags & FLAG_CAUSAL)

    @property
    def paged(self) -> bool:
        return bool(self.flags & FLAG_PAGED_KV)

    @property
    def tokens_q(self) -> int:
        return self.total_q or self.batch * self.seq_q

    @property
    def tokens_kv(self) -> int:
        return self.total_kv or self.batch * self.seq_kv

    @property
    def decode(self) -> bool:
        """One query per sequence: reading the KV cache dominates."""
        return self.tokens_q <= max(self.batch, 1) and not self.backward

    @property
    def backward(self) -> bool:
        return bool(self.flags & FLAG_BACKWARD)

    def flop_count(self) -> int:
        if self.flops:
            return self.flops
        forward = 4 * self.batch * self.heads_q * self.seq_q * self.seq_kv * self.head_dim
        if self.causal:
            forward //= 2  # without per-sequence lengths: half the square
        return int(forward * 2.5) if self.backward else forward  # bwd: 5 matmuls vs fwd's 2

    def byte_count(self) -> int:
        if self.bytes:
            return self.bytes
        size = DTYPE_BYTES[self.dtype]
        q_o = 2 * self.tokens_q * self.heads_q * self.head_dim
        k_v = 2 * self.tokens_kv * self.heads_kv * self.head_dim
        total = (q_o + k_v) * size
        return int(total * 2 if self.backward else total)  # bwd reads and writes gradients too


@dataclass(frozen=True)
class FftDesc:
    n0: int
    n1: int = 1
    n2: int = 1
    batch: int = 1
    rank: int = 1
    dtype: DType = DType.C64
    bytes: int = 0
    name: str = "fft"
    device: int = 0

    @property
    def points(self) -> int:
        return max(self.n0, 1) * max(self.n1, 1) * max(self.n2, 1)


@dataclass(frozen=True)
class SolverDesc:
    name: str
    m: int
    n: int
    nrhs: int = 0
    batch: int = 1
    dtype: DType = DType.F32
    flops: int = 0
    device: int = 0


@dataclass(frozen=True)
class CollectiveDesc:
    name: str                # all_reduce, all_gather, reduce_scatter, broadcast, reduce, send, recv, all_to_all
    ranks: int
    count: int               # elements per rank as NCCL counts them; point-to-point: bytes sent
    dtype: DType = DType.F32
    bytes: int = 0           # the larger of what this rank sends and receives
    device: int = 0
    recv_bytes: int = 0      # point-to-point (nccl:send/recv/sendrecv): bytes received
    peers: int = 0           # point-to-point: peers of this rank's group of transfers
    algorithm: int = 0       # 0: NCCL's choice; an all-reduce kernel through peers' memory:
                             # collectives.IPC_ONESHOT / _TWOSHOT / _MULTIMEM (records.h tw_coll_algorithm)
    ctas: int = 0            # such a kernel's blocks (the SMs it holds)

    def byte_count(self) -> int:
        return self.bytes or int(self.count * DTYPE_BYTES[self.dtype])


@dataclass(frozen=True)
class LibraryDesc:
    name: str
    bytes: int = 0
    flops: int = 0
    dims: tuple[int, ...] = field(default_factory=tuple)
    device: int = 0


@dataclass(frozen=True)
class MarkerDesc:
    """Event record/wait and host callbacks: timeline markers with no GPU duration."""
    kind: OpKind
    name: str = "marker"
    device: int = 0


Descriptor = (KernelDesc | GemmDesc | CopyDesc | MemsetDesc | ConvDesc | AttentionDesc | FftDesc | SolverDesc
              | CollectiveDesc | LibraryDesc | MarkerDesc)


def _triple(value: object) -> tuple[int, int, int]:
    items = [int(v) for v in value] if value is not None else []  # type: ignore[union-attr]
    items = (items + [1, 1, 1])[:3]
    return (items[0], items[1], items[2])


def from_wire(fields_: dict[str, object], name: str) -> Descriptor:
    """A descriptor from a tw_desc as a dict (keys = tw_desc's field names, arrays as lists)."""
    missing = [key for key in WIRE_FIELDS if key not in fields_ and key not in ("name_id", "reserved")]
    if missing:
        raise KeyError(f"tw_desc dict lacks {missing}")
    kind = OpKind(int(fields_["kind"]))  # type: ignore[arg-type]
    dims = [int(v) for v in fields_["dims"]] + [0] * 8  # type: ignore[union-attr]
    device = int(fields_["device"])  # type: ignore[arg-type]
    flags = int(fields_["flags"])  # type: ignore[arg-type]
    nbytes = int(fields_["bytes"])  # type: ignore[arg-type]
    flops = int(fields_["flops"])  # type: ignore[arg-type]
    dtype_a = _dtype(fields_["dtype_a"])
    dtype_compute = _dtype(fields_["dtype_compute"])
    if kind == OpKind.KERNEL:
        return KernelDesc(name=name, grid=_triple(fields_["grid"]), block=_triple(fields_["block"]),
                          smem_bytes=int(fields_["smem_bytes"]), param_bytes=int(fields_["param_bytes"]),  # type: ignore[arg-type]
                          pointer_params=int(fields_["pointer_params"]), bytes=nbytes, flops=flops,  # type: ignore[arg-type]
                          flags=flags, device=device, reach_bytes=max(dims[0], 0), described=dims[1])
    if kind == OpKind.GEMM:
        return GemmDesc(m=dims[0], n=dims[1], k=dims[2], batch=max(dims[3], 1), lda=dims[4], ldb=dims[5],
                        ldc=dims[6], dtype_a=dtype_a, dtype_b=_dtype(fields_["dtype_b"]),
                        dtype_out=_dtype(fields_["dtype_out"]), dtype_compute=dtype_compute, flags=flags,
                        flops=flops, name=name or "gemm", device=device)
    if kind == OpKind.MEMCPY:
        try:
            copy_kind = CopyKind(dims[0])
        except ValueError:
            log.warning("memcpy descriptor with unknown copy kind %d: treated as D2D", dims[0])
            copy_kind = CopyKind.D2D
        return CopyDesc(copy_kind=copy_kind, bytes=nbytes, name=name or "memcpy", device=device)
    if kind == OpKind.MEMSET:
        return MemsetDesc(bytes=nbytes, name=name or "memset", device=device)
    if kind == OpKind.CONV:
        return ConvDesc(n=dims[0], c=dims[1], h=dims[2], w=dims[3], k=dims[4], r=dims[5], s=dims[6],
                        groups=max(dims[7], 1), dtype=dtype_a, dtype_compute=dtype_compute, flags=flags,
                        flops=flops, bytes=nbytes, name=name or "conv", device=device)
    if kind == OpKind.ATTENTION:
        return AttentionDesc(batch=dims[0], heads_q=dims[1], heads_kv=dims[2] or dims[1], seq_q=dims[3],
                             seq_kv=dims[4], head_dim=dims[5], dtype=dtype_a, flags=flags, flops=flops,
                             bytes=nbytes, name=name or "attention", device=device, total_q=dims[6],
                             total_kv=dims[7])
    if kind == OpKind.FFT:
        return FftDesc(n0=dims[0], n1=max(dims[1], 1), n2=max(dims[2], 1), batch=max(dims[3], 1),
                       rank=max(dims[4], 1), dtype=dtype_a, bytes=nbytes, name=name or "fft", device=device)
    if kind == OpKind.SOLVER:
        return SolverDesc(name=name, m=dims[0], n=dims[1], nrhs=dims[2], batch=max(dims[3], 1), dtype=dtype_a,
                          flops=flops, device=device)
    if kind == OpKind.COLLECTIVE:
        return CollectiveDesc(name=name, ranks=max(dims[0], 1), count=dims[1], dtype=dtype_a, bytes=nbytes,
                              device=device, recv_bytes=dims[2], peers=dims[3], algorithm=dims[4], ctas=dims[5])
    if kind == OpKind.LIBRARY:
        return LibraryDesc(name=name, bytes=nbytes, flops=flops, dims=tuple(dims[:8]), device=device)
    if kind in (OpKind.EVENT_RECORD, OpKind.EVENT_WAIT, OpKind.HOST_FUNC):
        return MarkerDesc(kind=kind, name=name or kind.name.lower(), device=device)
    raise ValueError(f"descriptor kind {kind!r} has no prediction")


def to_wire(desc: Descriptor) -> tuple[dict[str, object], str]:
    """The inverse of from_wire: (tw_desc dict, name). Used by tests, tools and validate's tables."""
    out: dict[str, object] = {key: 0 for key in WIRE_FIELDS}
    out["grid"] = [0, 0, 0]  # only launches carry a shape
    out["block"] = [0, 0, 0]
    dims = [0] * 8
    out["device"] = getattr(desc, "device", 0)
    if isinstance(desc, KernelDesc):
        out.update(kind=OpKind.KERNEL, grid=list(desc.grid), block=list(desc.block), smem_bytes=desc.smem_bytes,
                   param_bytes=desc.param_bytes, pointer_params=desc.pointer_params, bytes=desc.bytes,
                   flops=desc.flops, flags=desc.flags)
        dims[:2] = [desc.reach_bytes, int(desc.described)]
    elif isinstance(desc, GemmDesc):
        dims[:7] = [desc.m, desc.n, desc.k, desc.batch, desc.lda, desc.ldb, desc.ldc]
        out.update(kind=OpKind.GEMM, dtype_a=desc.dtype_a, dtype_b=desc.dtype_b, dtype_out=desc.dtype_out,
                   dtype_compute=desc.dtype_compute, flags=desc.flags, flops=desc.flops)
    elif isinstance(desc, CopyDesc):
        dims[0] = int(desc.copy_kind)
        out.update(kind=OpKind.MEMCPY, bytes=desc.bytes)
    elif isinstance(desc, MemsetDesc):
        out.update(kind=OpKind.MEMSET, bytes=desc.bytes)
    elif isinstance(desc, ConvDesc):
        dims[:8] = [desc.n, desc.c, desc.h, desc.w, desc.k, desc.r, desc.s, desc.groups]
        out.update(kind=OpKind.CONV, dtype_a=desc.dtype, dtype_compute=desc.dtype_compute, flags=desc.flags,
                   flops=desc.flops, bytes=desc.bytes)
    elif isinstance(desc, AttentionDesc):
        dims[:8] = [desc.batch, desc.heads_q, desc.heads_kv, desc.seq_q, desc.seq_kv, desc.head_dim, desc.total_q,
                    desc.total_kv]
        out.update(kind=OpKind.ATTENTION, dtype_a=desc.dtype, flags=desc.flags, flops=desc.flops, bytes=desc.bytes)
    elif isinstance(desc, FftDesc):
        dims[:5] = [desc.n0, desc.n1, desc.n2, desc.batch, desc.rank]
        out.update(kind=OpKind.FFT, dtype_a=desc.dtype, bytes=desc.bytes)
    elif isinstance(desc, SolverDesc):
        dims[:4] = [desc.m, desc.n, desc.nrhs, desc.batch]
        out.update(kind=OpKind.SOLVER, dtype_a=desc.dtype, flops=desc.flops)
    elif isinstance(desc, CollectiveDesc):
        dims[:6] = [desc.ranks, desc.count, desc.recv_bytes, desc.peers, desc.algorithm, desc.ctas]
        out.update(kind=OpKind.COLLECTIVE, dtype_a=desc.dtype, bytes=desc.bytes)
    elif isinstance(desc, LibraryDesc):
        dims[:len(desc.dims[:8])] = list(desc.dims[:8])
        out.update(kind=OpKind.LIBRARY, bytes=desc.bytes, flops=desc.flops)
    elif isinstance(desc, MarkerDesc):
        out.update(kind=desc.kind)
    else:
        raise TypeError(f"not a descriptor: {desc!r}")
    out["dims"] = dims
    return {key: (int(value) if isinstance(value, enum.IntEnum) else value) for key, value in out.items()}, desc.name


def kind_of(desc: Descriptor) -> OpKind:
    return OpKind(int(to_wire(desc)[0]["kind"]))  # type: ignore[arg-type]


def descriptor_fields(desc: Descriptor) -> dict[str, object]:
    return {f.name: getattr(desc, f.name) for f in fields(desc)}  # type: ignore[arg-type]


@functools.lru_cache(maxsize=1)
def _cxa_demangle():  # noqa: ANN202 - a ctypes function, or None without libstdc++
    import ctypes
    import ctypes.util

    path = ctypes.util.find_library("stdc++") or "libstdc++.so.6"
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return None
    function = lib.__cxa_demangle
    function.restype = ctypes.c_void_p
    function.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
    return function


@functools.lru_cache(maxsize=65536)
def demangle(name: str) -> str:
    """The demangled C++ name (libstdc++'s __cxa_demangle in-process: a prediction must not wait
    on a subprocess; c++filt where libstdc++ is missing), or the name itself when not mangled."""
    if not name.startswith("_Z"):
        return name
    function = _cxa_demangle()
    if function is not None:
        import ctypes

        status = ctypes.c_int(0)
        pointer = function(name.encode(), None, None, ctypes.byref(status))
        if status.value == 0 and pointer:
            try:
                return ctypes.string_at(pointer).decode(errors="replace")
            finally:
                ctypes.CDLL(None).free(ctypes.c_void_p(pointer))
        return name
    tool = shutil.which("c++filt")
    if tool is None:
        return name
    try:
        out = subprocess.run([tool, name], capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("c++filt failed on %s: %s", name, exc)
        return name
    return out or name
