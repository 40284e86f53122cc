"""NCCL collective cost model per node topology (docs/collectives.md says why each rule holds).

Two steps, as NCCL itself takes them:

1. **NCCL's choice.** NCCL's tuner (src/graph/tuning.cc, v2.29.7, the version torch 2.13 ships)
   prices every algorithm (ring, tree, NVLS) and protocol (LL, LL128, Simple) as
   `latency + bytes / bandwidth` from its own constants and the channels its topology search
   finds, and runs the cheapest. `nccl_choice` redoes that with the same constants; the graph
   search is reduced to the one path a single node's ring crosses (see `_ring_graph`).
2. **Our time for that choice.** The same formula with the link's real datasheet bandwidth
   times a fitted efficiency, NCCL's latency times a fitted scale, plus a fitted fixed
   overhead (kernel start and the ranks' kernels meeting). The fitted numbers live in
   predictors/models/nccl_collectives.json (from Vidur's measured NCCL timings, MIT;
   scripts/eval_collectives.py refits them and checks them on held-out rows).

All-reduce kernels that work through peers' memory instead of NCCL (vLLM's custom all-reduce,
FlashInfer's and TensorRT-LLM's Lamport all-reduce; the shim recognises them and meets them
across ranks; torch symmetric memory's all-reduce kernels) are `ipc_allreduce_plan`: one exchange
phase (one-shot) or two (two-shot; multimem between two barriers) of the
same fixed cost and link efficiency as a point-to-point transfer, or the HBM traffic of the
local reduction if that takes longer.

Point-to-point transfers (send, recv, grouped send/recv, and all-to-all, gather, scatter, which
NCCL runs as grouped send/recv) are `overhead + bytes / (link x efficiency)`: NCCL has no tuner
model for them. One node only: a communicator is taken to live on one server of the GPU's
`node_topology` (predictors/catalog.py).
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from predictors.catalog import GpuSpec
from predictors.descriptors import DTYPE_BYTES, CollectiveDesc, DType

MODEL_PATH = Path(__file__).resolve().parent / "models" / "nccl_collectives.json"

RING_OPS = ("all_reduce", "all_gather", "reduce_scatter", "broadcast", "reduce")
P2P_OPS = ("send", "recv", "sendrecv", "all_to_all", "gather", "scatter")
ALGORITHMS = ("tree", "ring", "nvls")
PROTOCOLS = ("LL", "LL128", "Simple")

# ---- NCCL v2.29.7 tuner constants (src/graph/tuning.cc, topo.h, search.cc, device.h), in µs and GB/s
_BASE_LATENCY_US = {"tree": (6.8, 14.0, 8.4), "ring": (6.6, 14.0, 8.4), "nvls": (0.0, 0.0, 0.0)}
_HW_LATENCY_US = {
    "nvlink": {"tree": (0.6, 1.25, 4.0), "ring": (0.6, 1.9, 3.4), "nvls": (0.0, 0.0, 25.0)},
    "pcie": {"tree": (1.0, 1.9, 4.0), "ring": (1.0, 2.5, 5.7), "nvls": (0.0, 0.0, 0.0)},
}
# Per architecture (Volta, Ampere, Hopper, Blackwell), one node: llMaxBws, perChMax*Bws, nvlsEfficiency
_LL_MAX_GBPS = (39.0, 87.7, 141.0, 282.0)
_PER_CHANNEL_RING_LL128_GBPS = (20.0, 20.0, 36.7, 40.0)
_PER_CHANNEL_TREE_LL128_GBPS = (20.0, 20.0, 36.7, 55.6)
_PER_CHANNEL_TREE_GBPS = (26.5, 24.0, 38.7, 70.0)
_NVLS_EFFICIENCY = (0.0, 0.0, 0.85, 0.74)
_NVLS_CHANNELS = (0, 0, 16, 24)             # NVLS_NCHANNELS_SM90, _SM100_NVL
_SPEEDS_INTRA_GBPS = ((40.0, 30.0, 20.0, 18.0, 15.0, 12.0, 10.0, 9.0, 7.0, 6.0, 5.0, 4.0, 3.0),) * 2 + (
    (60.0, 50.0, 40.0, 30.0, 24.0, 20.0, 15.0, 12.0, 11.0, 6.0, 3.0),
    (90.0, 80.0, 70.0, 60.0, 50.0, 45.0, 40.0, 30.0, 24.0, 20.0, 19.0, 18.0))
_TREE_CORRECTION = (  # treeCorrectionFactor[protocol][log2(bytes / 64)]
    (1.0, 1.0, 1.0, 1.0, .9, .8, .7, .7, .7, .7, .6, .5, .4, .4, .5, .6, .7, .8, .9, 1.0, 1.0, 1.0, 1.0),
    (1.0, 1.0, 1.0, 1.0, 1.0, .9, .8, .8, .8, .7, .6, .6, .6, .6, .6, .6, .8, .9, .9, .9, .9, 1.0, 1.0),
    (.9, .9, .9, .9, .9, .9, .9, .8, .7, .6, .6, .5, .5, .5, .5, .6, .7, .8, .7, .7, .8, .9, .9))
_MAX_THREADS = {"LL": 512, "LL128": 640, "Simple": 512}
_THREAD_THRESHOLD = {"LL": 8, "LL128": 8, "Simple": 64}
_MAX_CHANNELS = 64
_RING_SEARCH_MAX_CHANNELS = 32               # MAXCHANNELS / 2
_P2P_LL_THRESHOLD_BYTES = 16384              # NCCL_P2P_LL_THRESHOLD
_NVLS_REDUCE_DTYPES = (DType.I32, DType.I64, DType.F16, DType.BF16, DType.F32, DType.F64)  # ncclNvlsSupported


def _nccl_nvlink_gbps_per_link(spec: GpuSpec) -> float:
    cc = spec.cc_major * 10 + spec.cc_minor
    return 40.1 if cc >= 100 else 20.6 if cc >= 90 else 12.0 if cc == 86 else 20.0


def _nccl_pcie_gbps(spec: GpuSpec) -> float:
    per_lane = {3: 60, 4: 120, 5: 240, 6: 480}.get(spec.pcie_gen, 120)  # 100 Mb/s units, kvDictPciGen
    return spec.pcie_width * per_lane / 80.0


def _arch_index(spec: GpuSpec) -> int:
    return 3 if spec.cc_major >= 10 else 2 if spec.cc_major >= 9 else 1 if spec.cc_major >= 8 else 0


# ---- calibration (fitted; scripts/eval_collectives.py writes it)
@dataclass(frozen=True)
class Calibration:
    overhead_us: float           # fixed per collective: kernel start and the ranks' kernels meeting
    latency_scale: float         # times NCCL's modelled latency of the chosen algorithm/protocol
    nvlink_efficiency: float     # collectives' bus bandwidth / datasheet NVLink bandwidth per direction
    pcie_efficiency: float       # the same over PCIe (collectives and transfers)
    p2p_overhead_us: float       # fixed per group of send/recv
    p2p_nvlink_efficiency: float  # send/recv bandwidth / datasheet NVLink bandwidth per direction

    @staticmethod
    def names() -> tuple[str, ...]:
        return ("overhead_us", "latency_scale", "nvlink_efficiency", "pcie_efficiency", "p2p_overhead_us",
                "p2p_nvlink_efficiency")


@functools.lru_cache(maxsize=1)
def shipped_calibration() -> Calibration:
    """The constants fitted on every usable Vidur row (the file says which rows and how)."""
    with MODEL_PATH.open() as handle:
        data = json.load(handle)
    return Calibration(**{name: float(data["calibration"][name]) for name in Calibration.names()})


# ---- topology
@dataclass(frozen=True)
class LinkPath:
    """The slowest hop the ring (or a transfer) of a communicator crosses on one node."""
    kind: str                # "nvlink" or "pcie"
    bytes_per_s: float       # datasheet, per direction, per GPU
    nccl_gbps: float         # what NCCL's topology code sees on the same path (GB/s)
    nvls: bool               # NVLink SHARP multicast (NVSwitch, Hopper and later)


@functools.lru_cache(maxsize=256)
def ring_path(spec: GpuSpec, ranks: int) -> LinkPath:
    """NVSwitch: every rank at full NVLink; NVLink pairs: two ranks share a bridge, more cross PCIe."""
    has_nvlink = spec.nvlink_links > 0 and spec.nvlink_bytes_per_s > 0
    topology = spec.node_topology
    if has_nvlink and (topology == "nvswitch" or (topology == "pairwise_nvlink" and ranks <= 2)):
        nvls = topology == "nvswitch" and spec.cc_major >= 9
        return LinkPath("nvlink", spec.nvlink_bytes_per_s, spec.nvlink_links * _nccl_nvlink_gbps_per_link(spec),
                        nvls)
    return LinkPath("pcie", spec.pcie_bytes_per_s, _nccl_pcie_gbps(spec), False)


@dataclass(frozen=True)
class Graph:
    channels: int
    gbps_per_channel: float


@functools.lru_cache(maxsize=256)
def _ring_graph(spec: GpuSpec, path: LinkPath) -> Graph:
    """ncclTopoCompute for one node, reduced: the fastest search speed the path carries, as many
    channels as fit in it, then ncclTopoDupChannels (twice the channels at half the speed)."""
    speeds = _SPEEDS_INTRA_GBPS[_arch_index(spec)]
    speed = next((s for s in speeds if s <= path.nccl_gbps), speeds[-1])
    channels = max(1, min(int(path.nccl_gbps // speed), _RING_SEARCH_MAX_CHANNELS))
    cc = spec.cc_major * 10 + spec.cc_minor
    if speed >= 25.0 and not (cc > 80 and speed < 50.0 and channels > 4):
        doubled = min(2 * channels, _RING_SEARCH_MAX_CHANNELS)
        return Graph(doubled, speed / math.ceil(doubled / channels))
    return Graph(channels, speed)


def _nvls_graph(spec: GpuSpec, path: LinkPath, ranks: int) -> Graph:
    """One NVLS channel per rank (head), each at the fastest speed the rank's links carry for all."""
    speeds = _SPEEDS_INTRA_GBPS[_arch_index(spec)]
    speed = next((s for s in speeds if s * ranks <= path.nccl_gbps), speeds[-1])
    return Graph(ranks, speed)


def _graph(spec: GpuSpec, path: LinkPath, algorithm: str, ranks: int) -> Graph:
    return _nvls_graph(spec, path, ranks) if algorithm == "nvls" else _ring_graph(spec, path)


# ---- NCCL's tuner (ncclTopoTuneModel, ncclTopoGetAlgoTime), one node
def _steps(op: str, ranks: int) -> int:
    if op == "all_reduce":
        return 2 * (ranks - 1)
    return ranks - 1 if op in ("all_gather", "reduce_scatter") else ranks


def _enabled(op: str, path: LinkPath, dtype: DType) -> list[tuple[str, str]]:
    """(algorithm, protocol) pairs NCCL prices for this op on one node with default settings."""
    nvls = path.nvls and (op == "all_gather" or dtype in _NVLS_REDUCE_DTYPES)
    algorithms = {"all_reduce": ["tree", "ring"] + (["nvls"] if nvls else []),
                  "all_gather": ["ring"] + (["nvls"] if nvls else []),
                  "reduce_scatter": ["ring"] + (["nvls"] if nvls else []),
                  "broadcast": ["ring"], "reduce": ["ring"]}[op]
    # LL128 is on by default only where every hop is NVLink; NVLS has Simple only
    protocols = [p for p in PROTOCOLS if p != "LL128" or path.kind == "nvlink"]
    return [(a, p) for a in algorithms for p in (["Simple"] if a == "nvls" else protocols)]


def _latency_us(op: str, algorithm: str, protocol: str, ranks: int, path: LinkPath) -> float:
    p = PROTOCOLS.index(protocol)
    hw = _HW_LATENCY_US[path.kind][algorithm][p]
    if algorithm == "nvls":
        return hw
    base = _BASE_LATENCY_US[algorithm][p]
    if algorithm == "tree":
        return base + 2 * (ranks - 1) * hw
    if op in ("broadcast", "reduce"):
        return base + hw  # ring graphs on one node use the same channels (sameChannels)
    return base + _steps(op, ranks) * hw


def _bus_gbps(op: str, algorithm: str, protocol: str, ranks: int, base_gbps: float, graph: Graph,
              arch: int) -> float:
    """NCCL's bus bandwidth for the pair, from a base figure (channels x speed, or our measured link)."""
    bus = base_gbps
    if algorithm == "nvls":
        bus *= _NVLS_EFFICIENCY[arch] * (graph.channels - 1) / graph.channels
        return bus * (2.0 if op == "all_reduce" else (ranks - 1) / ranks)
    if algorithm == "ring" and protocol == "LL":
        return min(_LL_MAX_GBPS[arch], bus * 0.5)
    if algorithm == "ring" and protocol == "LL128":
        return min(bus * 0.92, graph.channels * _PER_CHANNEL_RING_LL128_GBPS[arch])
    if algorithm == "tree":
        bus = min(bus * 0.92, graph.channels * _PER_CHANNEL_TREE_GBPS[arch])
        if protocol == "LL":
            bus = min(bus / 3.8, _LL_MAX_GBPS[arch])
        elif protocol == "LL128":
            bus = min(bus * 7.0 / 9.0, graph.channels * _PER_CHANNEL_TREE_LL128_GBPS[arch])
    return bus


def _algorithm_gbps(op: str, algorithm: str, protocol: str, ranks: int, nbytes: int, base_gbps: float,
                    graph: Graph, arch: int) -> float:
    bus = _bus_gbps(op, algorithm, protocol, ranks, base_gbps, graph, arch)
    if algorithm == "nvls" and op != "all_reduce":
        ratio = 1.0  # NVLS all-gather / reduce-scatter: NCCL prices the bus figure as it is
    else:
        ratio = ranks / _steps(op, ranks) if algorithm in ("ring", "nvls") else 0.5
    log_size = int(math.log2(nbytes >> 6)) if nbytes >= 64 else -1
    if algorithm == "tree" and op == "all_reduce" and 0 <= log_size < len(_TREE_CORRECTION[0]):
        ratio *= _TREE_CORRECTION[PROTOCOLS.index(protocol)][log_size]
    return bus * ratio


@dataclass(frozen=True)
class Choice:
    algorithm: str
    protocol: str
    nccl_time_us: float      # NCCL's own estimate, which decides; not our prediction


@functools.lru_cache(maxsize=65536)
def nccl_choice(spec: GpuSpec, op: str, ranks: int, nbytes: int, dtype: DType = DType.F16) -> Choice:
    """The algorithm and protocol NCCL's default tuner runs (nbytes: NCCL's count, all ranks' data
    for all-gather and reduce-scatter). Ties go to the earlier pair, as in NCCL's loop."""
    path = ring_path(spec, ranks)
    arch = _arch_index(spec)
    best: Choice | None = None
    for algorithm, protocol in _enabled(op, path, dtype):
        graph = _graph(spec, path, algorithm, ranks)
        gbps = _algorithm_gbps(op, algorithm, protocol, ranks, nbytes, graph.channels * graph.gbps_per_channel,
                               graph, arch)
        if gbps <= 0:
            continue
        time_us = _latency_us(op, algorithm, protocol, ranks, path) + nbytes / (1000.0 * gbps)
        if best is None or time_us < best.nccl_time_us:
            best = Choice(algorithm, protocol, time_us)
    assert best is not None  # ring/Simple is always enabled
    return best


# ---- our prediction
_ONE_RANK_HBM_EFFICIENCY = 0.85   # one rank: NCCL copies the buffer on the device (as the roofline's copies)


@dataclass(frozen=True)
class Plan:
    """How a collective runs and how long it takes: for tests, docs and explanations."""
    op: str
    ranks: int
    nbytes: int              # NCCL's byte count (all-gather/reduce-scatter: all ranks' data); p2p: moved
    algorithm: str           # ring, tree, nvls; p2p for transfers; local for one rank
    protocol: str            # LL, LL128, Simple
    path: str                # nvlink, pcie (the slowest hop), hbm for one rank
    channels: int            # CTAs NCCL launches: SMs it holds while it runs
    latency_us: float        # fixed part of the time
    bandwidth_bytes_per_s: float  # nbytes / (time - latency)
    link_bytes: float        # bytes this rank moves over its busiest link, one direction
    duration_ns: int


def _ring_channels(spec: GpuSpec, path: LinkPath, algorithm: str, protocol: str, ranks: int,
                   nbytes: int) -> int:
    """CTAs of the launch: ncclTopoPostset doubles the graph's channels; small ops use fewer."""
    if algorithm == "nvls":
        return _NVLS_CHANNELS[_arch_index(spec)]
    channels = min(_MAX_CHANNELS, 2 * _ring_graph(spec, path).channels)
    threshold = _THREAD_THRESHOLD[protocol] * (ranks if algorithm == "ring" and protocol == "LL" else 1)
    while channels > 1 and nbytes < channels * _MAX_THREADS[protocol] * threshold:
        channels -= 1
    return channels


def _link_bytes(op: str, algorithm: str, ranks: int, nbytes: int) -> float:
    if algorithm == "ring":
        return nbytes * _steps(op, ranks) / ranks
    if algorithm == "nvls" and op != "all_reduce":
        return nbytes * (ranks - 1) / ranks
    return float(nbytes)  # tree (a chain on one node) and NVLS all-reduce: the data once each way


def _efficiency(path: LinkPath, calibration: Calibration) -> float:
    return calibration.nvlink_efficiency if path.kind == "nvlink" else calibration.pcie_efficiency


def collective_plan(spec: GpuSpec, op: str, ranks: int, count: int, dtype: DType = DType.F16,
                    calibration: Calibration | None = None) -> Plan:
    """A ring-family collective (RING_OPS) of `count` elements per rank (NCCL's count)."""
    cal = calibration or shipped_calibration()
    size = DTYPE_BYTES.get(dtype, 4)
    nbytes = int(count * size * (ranks if op in ("all_gather", "reduce_scatter") else 1))
    if ranks <= 1:
        seconds = 2 * nbytes / (spec.hbm_bytes_per_s * _ONE_RANK_HBM_EFFICIENCY)
        ns = spec.kernel_floor_ns + seconds * 1e9
        return Plan(op, 1, nbytes, "local", "Simple", "hbm", 1, spec.kernel_floor_ns / 1000.0,
                    nbytes / seconds if seconds else 0.0, 0.0, int(math.ceil(ns)))
    choice = nccl_choice(spec, op, ranks, nbytes, dtype)
    path = ring_path(spec, ranks)
    graph = _graph(spec, path, choice.algorithm, ranks)
    base_gbps = path.bytes_per_s * _efficiency(path, cal) / 1e9
    gbps = _algorithm_gbps(op, choice.algorithm, choice.protocol, ranks, nbytes, base_gbps, graph,
                           _arch_index(spec))
    latency_us = cal.overhead_us + cal.latency_scale * _latency_us(op, choice.algorithm, choice.protocol,
                                                                   ranks, path)
    total_us = latency_us + nbytes / (1000.0 * gbps)
    return Plan(op, ranks, nbytes, choice.algorithm, choice.protocol, path.kind,
                _ring_channels(spec, path, choice.algorithm, choice.protocol, ranks, nbytes), latency_us,
                gbps * 1e9, _link_bytes(op, choice.algorithm, ranks, nbytes), int(math.ceil(total_us * 1000)))


def p2p_plan(spec: GpuSpec, ranks: int, sent: int, received: int, peers: int = 1, op: str = "sendrecv",
             calibration: Calibration | None = None) -> Plan:
    """A group of transfers of one rank: the larger direction over the links they share.

    On NVLink pairs a communicator of more than two ranks is taken to cross PCIe (the bridge
    partner is one peer of ranks-1); a rank talking to every peer sends the partner's share over
    the bridge and the rest over PCIe, at the same time."""
    cal = calibration or shipped_calibration()
    peers = max(peers, 1)
    moved = max(sent, received)
    protocol = "LL" if moved / peers <= _P2P_LL_THRESHOLD_BYTES else "Simple"
    path = ring_path(spec, ranks)
    nvlink_bps = spec.nvlink_bytes_per_s * cal.p2p_nvlink_efficiency
    pcie_bps = spec.pcie_bytes_per_s * cal.pcie_efficiency
    if path.kind == "nvlink":
        seconds = moved / nvlink_bps
    elif spec.node_topology == "pairwise_nvlink" and spec.nvlink_links > 0 and peers >= ranks - 1:
        seconds = max(moved / peers / nvlink_bps, moved * (peers - 1) / peers / pcie_bps)
    else:
        seconds = moved / pcie_bps
    if protocol == "LL":
        seconds *= 2.0  # LL: half of every 8-byte line is a flag
    channels = min(_MAX_CHANNELS, 1 << (2 * _ring_graph(spec, path).channels - 1).bit_length())
    total_us = cal.p2p_overhead_us + seconds * 1e6
    return Plan(op, ranks, moved, "p2p", protocol, path.kind, channels, cal.p2p_overhead_us,
                moved / seconds if seconds else 0.0, float(moved), int(math.ceil(total_us * 1000)))


# Algorithms of all-reduce kernels that reach peers' buffers themselves (records.h tw_coll_algorithm)
IPC_ONESHOT, IPC_TWOSHOT, IPC_MULTIMEM = 1, 2, 3
IPC_ALGORITHMS = {IPC_ONESHOT: "ipc_oneshot", IPC_TWOSHOT: "ipc_twoshot", IPC_MULTIMEM: "ipc_multimem"}


def ipc_allreduce_plan(spec: GpuSpec, ranks: int, nbytes: int, algorithm: int = IPC_ONESHOT, ctas: int = 0,
                       calibration: Calibration | None = None) -> Plan:
    """An all-reduce of `nbytes` per rank by a kernel that works through its peers' memory.

    One-shot: every rank pushes its whole input to each of the ranks-1 peers (one phase), then
    reduces the ranks copies it received. Two-shot: a reduce-scatter then an all-gather through
    the peers' buffers, 2 (ranks-1)/ranks of the input each way, in two phases with a barrier
    between. Multimem (torch symmetric memory on NVSwitch): each rank reduces its 1/ranks share
    in the switch (multimem.ld_reduce) and stores it to every GPU (multimem.st), the data once
    each way as NCCL's NVLS, between two barriers. Each phase costs the fitted fixed cost of a
    point-to-point transfer (a kernel that meets its peer through memory) and the link bytes move
    at the fitted point-to-point efficiency of the link; the local HBM traffic (reading every
    copy, writing the incoming ones, input and output) bounds it from below. No IPC-kernel
    timings are public yet: this reuses the fitted NCCL point-to-point constants
    (predictors/models/nccl_collectives.json)."""
    cal = calibration or shipped_calibration()
    ranks = max(ranks, 1)
    path = ring_path(spec, ranks)
    link_bps = path.bytes_per_s * (cal.p2p_nvlink_efficiency if path.kind == "nvlink" else cal.pcie_efficiency)
    if algorithm == IPC_TWOSHOT:
        phases, link_bytes = 2, 2.0 * nbytes * (ranks - 1) / ranks
        hbm_bytes = 4 * nbytes + link_bytes
    elif algorithm == IPC_MULTIMEM:
        phases, link_bytes, hbm_bytes = 2, float(nbytes), 2.0 * nbytes
    else:
        phases, link_bytes = 1, float(nbytes * (ranks - 1))
        hbm_bytes = (2 * ranks + 1) * nbytes
    seconds = max(link_bytes / link_bps if link_bps else 0.0, hbm_bytes / spec.hbm_bytes_per_s)
    latency_us = phases * cal.p2p_overhead_us
    total_us = latency_us + seconds * 1e6
    channels = min(ctas, spec.sm_count) if ctas > 0 else spec.sm_count
    return Plan("all_reduce", ranks, nbytes, IPC_ALGORITHMS.get(algorithm, "ipc_oneshot"), "Simple", path.kind,
                channels, latency_us, nbytes / seconds if seconds else 0.0, link_bytes,
                int(math.ceil(total_us * 1000)))


# ---- descriptors
_OP_NAMES = {"allreduce": "all_reduce", "allgather": "all_gather", "reducescatter": "reduce_scatter",
             "broadcast": "broadcast", "bcast": "broadcast", "reduce": "reduce", "alltoall": "all_to_all",
             "gather": "gather", "scatter": "scatter", "send": "send", "recv": "recv", "sendrecv": "sendrecv"}


def op_kind(name: str) -> str:
    """nccl:allreduce, ncclAllReduce, all_reduce -> all_reduce; a name of no NCCL op raises ValueError."""
    text = re.sub(r"[^a-z]", "", re.sub(r"^nccl", "", name.strip(), flags=re.I).lower())
    try:
        return _OP_NAMES[text]
    except KeyError:
        raise ValueError(f"collective {name!r} is no NCCL operation the cost model knows "
                         f"({', '.join(RING_OPS + P2P_OPS)})") from None


def plan_for(spec: GpuSpec, desc: CollectiveDesc, calibration: Calibration | None = None) -> Plan:
    """The plan of a shim descriptor. Built from what every rank shares (ranks, count, dtype), never
    from the rank's own byte count, so all ranks of a collective get the same duration."""
    if desc.algorithm in IPC_ALGORITHMS:
        nbytes = int(desc.count * DTYPE_BYTES.get(desc.dtype, 2))
        return ipc_allreduce_plan(spec, desc.ranks, nbytes, desc.algorithm, desc.ctas, calibration)
    op = op_kind(desc.name)
    ranks = max(desc.ranks, 1)
    if op in RING_OPS:
        return collective_plan(spec, op, ranks, desc.count, desc.dtype, calibration)
    if op in ("send", "recv", "sendrecv"):
        sent = desc.count * DTYPE_BYTES.get(desc.dtype, 1)
        received = desc.recv_bytes if desc.peers else desc.byte_count()
        return p2p_plan(spec, ranks, int(sent), received, max(desc.peers, 1), op, calibration)
    per_peer = int(desc.count * DTYPE_BYTES.get(desc.dtype, 4))
    # all-to-all: every rank sends and receives a block per peer; gather/scatter: the root's
    # ranks-1 blocks set the pace of all (NCCL runs all three as grouped send/recv)
    moved = per_peer * (ranks - 1)
    return p2p_plan(spec, ranks, moved, moved, max(ranks - 1, 1), op, calibration)


def collective_ns(spec: GpuSpec, desc: CollectiveDesc) -> int:
    """Predicted duration of one NCCL operation on this GPU's default node (the roofline's hook)."""
    return plan_for(spec, desc).duration_ns


# ---- communication beside computation on the same GPU (DDP buckets during backward)
# Bytes of local HBM traffic per byte a rank receives over its link (estimate): the peer's write
# into this GPU's receive buffer, this GPU's read of it and of its own input; the reduced chunk
# goes to the next GPU's memory, the output write of the gather half adds a little more.
HBM_BYTES_PER_LINK_BYTE = 3.0


@dataclass(frozen=True)
class Contention:
    """What a running NCCL operation takes from the GPU it runs on."""
    sm_fraction: float       # its CTAs (one per channel) hold these SMs for its whole duration
    hbm_fraction: float      # its copies and reductions take this share of HBM bandwidth meanwhile


def contention(spec: GpuSpec, plan: Plan) -> Contention:
    seconds = plan.duration_ns * 1e-9
    link_rate = plan.link_bytes / seconds if seconds > 0 else 0.0
    return Contention(min(1.0, plan.channels / spec.sm_count),
                      min(1.0, HBM_BYTES_PER_LINK_BYTE * link_rate / spec.hbm_bytes_per_s))


def overlap_stretch(share: Contention, memory_bound: bool) -> float:
    """How much longer a kernel runs while the collective runs beside it: a compute-bound kernel
    has the SMs NCCL leaves it, a memory-bound one the HBM bandwidth NCCL leaves it. Apply it to
    the overlapping part of the kernel only (docs/collectives.md)."""
    taken = share.hbm_fraction if memory_bound else share.sm_fraction
    return 1.0 / max(1.0 - taken, 0.05)  # a collective never takes the whole GPU for long
