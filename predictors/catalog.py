"""GPU spec catalog: the datasheet facts every predictor and the shim's virtual devices use.

Each spec carries `sources`: which public document each group of fields comes from, or
"estimate: ..." where no vendor figure exists (launch latency, kernel floor, reserved memory).
Peak FLOP/s are dense (no structured sparsity) tensor-core figures (fp64: FP64 tensor core where the
part has one, else the CUDA-core rate); fp32 is the non-tensor CUDA-core peak.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
TERA = 1e12

_A100_DATASHEET = ("NVIDIA A100 Tensor Core GPU datasheet, "
                   "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/"
                   "nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf")
_AMPERE_WP = ("NVIDIA A100 Tensor Core GPU Architecture whitepaper, "
              "https://images.nvidia.com/aem-dam/en-zz/Solutions/data-center/nvidia-ampere-architecture-whitepaper.pdf")
_H100_DATASHEET = ("NVIDIA H100 Tensor Core GPU datasheet, "
                   "https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet")
_HOPPER_WP = ("NVIDIA H100 Tensor Core GPU Architecture whitepaper, "
              "https://resources.nvidia.com/en-us-tensor-core/gtc22-whitepaper-hopper")
_H200_PAGE = "NVIDIA H200 Tensor Core GPU product page/datasheet, https://www.nvidia.com/en-us/data-center/h200/"
_B200_PAGE = ("NVIDIA HGX B200 platform specifications (per-GPU = 1/8 of HGX B200), "
              "https://www.nvidia.com/en-us/data-center/hgx/")
_BLACKWELL_WP = ("NVIDIA Blackwell Architecture Technical Brief, "
                 "https://resources.nvidia.com/en-us-blackwell-architecture")
_L40S_DATASHEET = "NVIDIA L40S datasheet, https://resources.nvidia.com/en-us-l40s/l40s-datasheet-28413"
_L4_DATASHEET = ("NVIDIA L4 Tensor Core GPU datasheet, "
                 "https://resources.nvidia.com/en-us-data-center-overview/l4-gpu-datasheet")
_A40_DATASHEET = ("NVIDIA A40 datasheet, "
                  "https://images.nvidia.com/content/Solutions/data-center/a40/nvidia-a40-datasheet.pdf")
_ADA_WP = ("NVIDIA Ada GPU Architecture whitepaper, "
           "https://images.nvidia.com/aem-dam/Solutions/geforce/ada/nvidia-ada-gpu-architecture.pdf")
_A100_PCIE_40_DATASHEET = ("NVIDIA A100 PCIe 40GB datasheet (1,555 GB/s, 250 W), "
                          "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/"
                          "A100-PCIE-Prduct-Brief.pdf")
_V100_DATASHEET = ("NVIDIA Tesla V100 datasheet (PCIe 32GB: 14 TFLOPS FP32, 112 TFLOPS tensor, 900 GB/s, 250 W), "
                   "https://images.nvidia.com/content/technologies/volta/pdf/volta-v100-datasheet-update-us-1165301-r5.pdf")
_VOLTA_WP = ("NVIDIA Tesla V100 GPU Architecture whitepaper (80 SMs, 6 MB L2), "
             "https://images.nvidia.com/content/volta-architecture/pdf/volta-architecture-whitepaper.pdf")
_CUDA_GUIDE = ("CUDA C++ Programming Guide, Compute Capabilities table, "
               "https://docs.nvidia.com/cuda/cuda-c-programming-guide/index.html#compute-capabilities")
_PCIE = "PCI-SIG: Gen4 16 GT/s, Gen5 32 GT/s per lane, 128b/130b encoding; per direction, x16"
_VIDUR_FLOOR = ("estimate from measured minima: shortest op times in Vidur's profiles "
                "(microsoft/vidur data/profiling, MIT) are 1-2 us")
_LATENCY = "estimate: typical CUDA launch-to-start latency on an idle stream (~3 us)"
_RESERVED = "estimate: CUDA context and driver reservation seen as used memory at start (~0.5 GiB)"
_NODE_TOPOLOGY = ("server each kind ships in: NVIDIA DGX/HGX A100, H100, H200, B200 system specs (8 SXM GPUs, "
                  "all-to-all through NVSwitch, https://www.nvidia.com/en-us/data-center/hgx/); A40 datasheet "
                  "(NVLink bridge between 2 GPUs); L4, L40S datasheets (no NVLink: PCIe only)")

# How one server links its GPUs (predictors/collectives.py uses it; docs/collectives.md):
# nvswitch = every GPU reaches every other at its full NVLink bandwidth; pairwise_nvlink = NVLink
# bridges join GPUs in pairs, other pairs talk over PCIe; pcie = PCIe only.
NODE_TOPOLOGIES = ("nvswitch", "pairwise_nvlink", "pcie")
_DEFAULT_NODE_TOPOLOGY = {"a100-80g": "nvswitch", "h100": "nvswitch", "h200": "nvswitch", "b200": "nvswitch",
                          "a40": "pairwise_nvlink", "l40s": "pcie", "l4": "pcie"}


def _pcie_bytes_per_s(gen: int, width: int) -> float:
    gt_per_s = {3: 8e9, 4: 16e9, 5: 32e9, 6: 64e9}[gen]
    return gt_per_s * width * (128 / 130) / 8


@dataclass(frozen=True)
class GpuSpec:
    key: str
    name: str
    cc_major: int
    cc_minor: int
    sm_count: int
    memory_bytes: int
    reserved_bytes: int
    l2_bytes: int
    smem_per_sm_bytes: int
    smem_per_block_bytes: int
    smem_per_block_optin_bytes: int
    regs_per_sm: int
    regs_per_block: int
    max_threads_per_sm: int
    max_threads_per_block: int
    max_blocks_per_sm: int
    warp_size: int
    clock_khz: int                 # boost SM clock
    mem_clock_khz: int
    mem_bus_width_bits: int
    pcie_gen: int
    pcie_width: int
    nvlink_links: int
    hbm_bytes_per_s: float         # device memory bandwidth (HBM or GDDR)
    pcie_bytes_per_s: float        # per direction, theoretical link rate
    launch_latency_ns: int
    kernel_floor_ns: int
    tdp_watts: int
    nvlink_bytes_per_s: float      # per direction, all links together; 0 = none
    peak_fp64_flops: float
    peak_fp32_flops: float
    peak_tf32_flops: float
    peak_fp16_flops: float
    peak_bf16_flops: float
    peak_fp8_flops: float          # 0 where the part has no fp8 tensor cores
    peak_int8_ops: float
    sources: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    node_topology: str = ""        # NODE_TOPOLOGIES; "" = the kind's default server (__post_init__)

    def __post_init__(self) -> None:
        if not self.node_topology:
            default = _DEFAULT_NODE_TOPOLOGY.get(self.key)
            if default is None:  # a kind without an entry: NVLink parts as SXM boards, others PCIe
                default = "pcie" if self.nvlink_links == 0 else "nvswitch"
            object.__setattr__(self, "node_topology", default)
        if self.node_topology not in NODE_TOPOLOGIES:
            raise ValueError(f"{self.key}: node_topology {self.node_topology!r} not one of {NODE_TOPOLOGIES}")

    def peak_flops(self, dtype: str) -> float:
        """Dense peak for a dtype name (fp64, fp32, tf32, fp16, bf16, fp8, int8)."""
        value = {"fp64": self.peak_fp64_flops, "fp32": self.peak_fp32_flops, "tf32": self.peak_tf32_flops,
                 "fp16": self.peak_fp16_flops, "bf16": self.peak_bf16_flops, "fp8": self.peak_fp8_flops,
                 "int8": self.peak_int8_ops}[dtype]
        if value <= 0 and dtype == "fp8":
            return self.peak_fp16_flops  # no fp8 units: the library upcasts to fp16 tensor cores
        return value


class UnknownGpuError(ValueError):
    """A GPU key the catalog does not know; the message lists the known keys."""


def _common_sources(datasheet: str, whitepaper: str) -> dict[str, str]:
    sources = {name: datasheet for name in (
        "name", "memory_bytes", "hbm_bytes_per_s", "tdp_watts", "nvlink_bytes_per_s", "nvlink_links",
        "peak_fp64_flops", "peak_fp32_flops", "peak_tf32_flops", "peak_fp16_flops", "peak_bf16_flops",
        "peak_fp8_flops", "peak_int8_ops", "pcie_gen", "pcie_width")}
    sources.update({name: whitepaper for name in (
        "sm_count", "l2_bytes", "clock_khz", "mem_clock_khz", "mem_bus_width_bits", "cc_major", "cc_minor")})
    sources.update({name: _CUDA_GUIDE for name in (
        "smem_per_sm_bytes", "smem_per_block_bytes", "smem_per_block_optin_bytes", "regs_per_sm",
        "regs_per_block", "max_threads_per_sm", "max_threads_per_block", "max_blocks_per_sm", "warp_size")})
    sources["pcie_bytes_per_s"] = _PCIE
    sources["launch_latency_ns"] = _LATENCY
    sources["kernel_floor_ns"] = _VIDUR_FLOOR
    sources["reserved_bytes"] = _RESERVED
    sources["node_topology"] = _NODE_TOPOLOGY
    return sources


_SM80_LIMITS = dict(smem_per_sm_bytes=164 * KIB, smem_per_block_bytes=48 * KIB,
                    smem_per_block_optin_bytes=163 * KIB, regs_per_sm=65536, regs_per_block=65536,
                    max_threads_per_sm=2048, max_threads_per_block=1024, max_blocks_per_sm=32, warp_size=32)
_SM70_LIMITS = dict(smem_per_sm_bytes=96 * KIB, smem_per_block_bytes=48 * KIB,
                    smem_per_block_optin_bytes=96 * KIB, regs_per_sm=65536, regs_per_block=65536,
                    max_threads_per_sm=2048, max_threads_per_block=1024, max_blocks_per_sm=32, warp_size=32)
_SM86_LIMITS = dict(smem_per_sm_bytes=100 * KIB, smem_per_block_bytes=48 * KIB,
                    smem_per_block_optin_bytes=99 * KIB, regs_per_sm=65536, regs_per_block=65536,
                    max_threads_per_sm=1536, max_threads_per_block=1024, max_blocks_per_sm=16, warp_size=32)
_SM89_LIMITS = dict(smem_per_sm_bytes=100 * KIB, smem_per_block_bytes=48 * KIB,
                    smem_per_block_optin_bytes=99 * KIB, regs_per_sm=65536, regs_per_block=65536,
                    max_threads_per_sm=1536, max_threads_per_block=1024, max_blocks_per_sm=24, warp_size=32)
_SM90_LIMITS = dict(smem_per_sm_bytes=228 * KIB, smem_per_block_bytes=48 * KIB,
                    smem_per_block_optin_bytes=227 * KIB, regs_per_sm=65536, regs_per_block=65536,
                    max_threads_per_sm=2048, max_threads_per_block=1024, max_blocks_per_sm=32, warp_size=32)

_SPECS: tuple[GpuSpec, ...] = (
    GpuSpec(key="a100-80g", name="NVIDIA A100-SXM4-80GB", cc_major=8, cc_minor=0, sm_count=108,
            memory_bytes=80 * GIB, reserved_bytes=512 * MIB, l2_bytes=40 * MIB, **_SM80_LIMITS,
            clock_khz=1410000, mem_clock_khz=1593000, mem_bus_width_bits=5120, pcie_gen=4, pcie_width=16,
            nvlink_links=12, hbm_bytes_per_s=2.039e12, pcie_bytes_per_s=_pcie_bytes_per_s(4, 16),
            launch_latency_ns=3000, kernel_floor_ns=2000, tdp_watts=400, nvlink_bytes_per_s=300e9,
            peak_fp64_flops=19.5 * TERA, peak_fp32_flops=19.5 * TERA, peak_tf32_flops=156 * TERA,
            peak_fp16_flops=312 * TERA, peak_bf16_flops=312 * TERA, peak_fp8_flops=0.0,
            peak_int8_ops=624 * TERA, sources=_common_sources(_A100_DATASHEET, _AMPERE_WP)),
    # The A100 variants NeuSight measured (../shared/data/neusight): same chip and peaks as the
    # SXM4 80GB part, their own memory and bandwidth.
    GpuSpec(key="a100-pcie-40g", name="NVIDIA A100-PCIE-40GB", cc_major=8, cc_minor=0, sm_count=108,
            memory_bytes=40 * GIB, reserved_bytes=512 * MIB, l2_bytes=40 * MIB, **_SM80_LIMITS,
            clock_khz=1410000, mem_clock_khz=1215000, mem_bus_width_bits=5120, pcie_gen=4, pcie_width=16,
            nvlink_links=0, hbm_bytes_per_s=1.555e12, pcie_bytes_per_s=_pcie_bytes_per_s(4, 16),
            launch_latency_ns=3000, kernel_floor_ns=2000, tdp_watts=250, nvlink_bytes_per_s=0.0,
            peak_fp64_flops=19.5 * TERA, peak_fp32_flops=19.5 * TERA, peak_tf32_flops=156 * TERA,
            peak_fp16_flops=312 * TERA, peak_bf16_flops=312 * TERA, peak_fp8_flops=0.0,
            peak_int8_ops=624 * TERA, sources=_common_sources(_A100_PCIE_40_DATASHEET, _AMPERE_WP)),
    GpuSpec(key="a100-pcie-80g", name="NVIDIA A100 80GB PCIe", cc_major=8, cc_minor=0, sm_count=108,
            memory_bytes=80 * GIB, reserved_bytes=512 * MIB, l2_bytes=40 * MIB, **_SM80_LIMITS,
            clock_khz=1410000, mem_clock_khz=1512000, mem_bus_width_bits=5120, pcie_gen=4, pcie_width=16,
            nvlink_links=0, hbm_bytes_per_s=1.935e12, pcie_bytes_per_s=_pcie_bytes_per_s(4, 16),
            launch_latency_ns=3000, kernel_floor_ns=2000, tdp_watts=300, nvlink_bytes_per_s=0.0,
            peak_fp64_flops=19.5 * TERA, peak_fp32_flops=19.5 * TERA, peak_tf32_flops=156 * TERA,
            peak_fp16_flops=312 * TERA, peak_bf16_flops=312 * TERA, peak_fp8_flops=0.0,
            peak_int8_ops=624 * TERA, sources=_common_sources(_A100_DATASHEET, _AMPERE_WP)),
    GpuSpec(key="a100-sxm-40g", name="NVIDIA A100-SXM4-40GB", cc_major=8, cc_minor=0, sm_count=108,
            memory_bytes=40 * GIB, reserved_bytes=512 * MIB, l2_bytes=40 * MIB, **_SM80_LIMITS,
            clock_khz=1410000, mem_clock_khz=1215000, mem_bus_width_bits=5120, pcie_gen=4, pcie_width=16,
            nvlink_links=12, hbm_bytes_per_s=1.555e12, pcie_bytes_per_s=_pcie_bytes_per_s(4, 16),
            launch_latency_ns=3000, kernel_floor_ns=2000, tdp_watts=400, nvlink_bytes_per_s=300e9,
            peak_fp64_flops=19.5 * TERA, peak_fp32_flops=19.5 * TERA, peak_tf32_flops=156 * TERA,
            peak_fp16_flops=312 * TERA, peak_bf16_flops=312 * TERA, peak_fp8_flops=0.0,
            peak_int8_ops=624 * TERA, sources=_common_sources(_A100_DATASHEET, _AMPERE_WP)),
    # Volta has no bf16, tf32 or fp8 tensor cores: bf16 and tf32 run at the fp32 CUDA-core rate,
    # fp8 falls back to fp16 tensor cores (peak_flops), int8 is the DP4A rate (4x fp32).
    GpuSpec(key="v100", name="Tesla V100-PCIE-32GB", cc_major=7, cc_minor=0, sm_count=80,
            memory_bytes=32 * GIB, reserved_bytes=512 * MIB, l2_bytes=6 * MIB, **_SM70_LIMITS,
            clock_khz=1380000, mem_clock_khz=877000, mem_bus_width_bits=4096, pcie_gen=3, pcie_width=16,
            nvlink_links=0, hbm_bytes_per_s=900e9, pcie_bytes_per_s=_pcie_bytes_per_s(3, 16),
            launch_latency_ns=3000, kernel_floor_ns=2500, tdp_watts=250, nvlink_bytes_per_s=0.0,
            peak_fp64_flops=7 * TERA, peak_fp32_flops=14 * TERA, peak_tf32_flops=14 * TERA,
            peak_fp16_flops=112 * TERA, peak_bf16_flops=14 * TERA, peak_fp8_flops=0.0,
            peak_int8_ops=56 * TERA, sources=_common_sources(_V100_DATASHEET, _VOLTA_WP)),
    GpuSpec(key="h100", name="NVIDIA H100 80GB HBM3", cc_major=9, cc_minor=0, sm_count=132,
            memory_bytes=80 * GIB, reserved_bytes=512 * MIB, l2_bytes=50 * MIB, **_SM90_LIMITS,
            clock_khz=1980000, mem_clock_khz=2619000, mem_bus_width_bits=5120, pcie_gen=5, pcie_width=16,
            nvlink_links=18, hbm_bytes_per_s=3.35e12, pcie_bytes_per_s=_pcie_bytes_per_s(5, 16),
            launch_latency_ns=3000, kernel_floor_ns=1500, tdp_watts=700, nvlink_bytes_per_s=450e9,
            peak_fp64_flops=67 * TERA, peak_fp32_flops=67 * TERA, peak_tf32_flops=494.7 * TERA,
            peak_fp16_flops=989.4 * TERA, peak_bf16_flops=989.4 * TERA, peak_fp8_flops=1978.9 * TERA,
            peak_int8_ops=1978.9 * TERA, sources=_common_sources(_H100_DATASHEET, _HOPPER_WP)),
    GpuSpec(key="h200", name="NVIDIA H200", cc_major=9, cc_minor=0, sm_count=132,
            memory_bytes=141 * 10**9, reserved_bytes=512 * MIB, l2_bytes=50 * MIB, **_SM90_LIMITS,
            clock_khz=1980000, mem_clock_khz=3125000, mem_bus_width_bits=6144, pcie_gen=5, pcie_width=16,
            nvlink_links=18, hbm_bytes_per_s=4.8e12, pcie_bytes_per_s=_pcie_bytes_per_s(5, 16),
            launch_latency_ns=3000, kernel_floor_ns=1500, tdp_watts=700, nvlink_bytes_per_s=450e9,
            peak_fp64_flops=67 * TERA, peak_fp32_flops=67 * TERA, peak_tf32_flops=494.7 * TERA,
            peak_fp16_flops=989.4 * TERA, peak_bf16_flops=989.4 * TERA, peak_fp8_flops=1978.9 * TERA,
            peak_int8_ops=1978.9 * TERA, sources=_common_sources(_H200_PAGE, _HOPPER_WP)),
    GpuSpec(key="b200", name="NVIDIA B200", cc_major=10, cc_minor=0, sm_count=148,
            memory_bytes=180 * 10**9, reserved_bytes=512 * MIB, l2_bytes=126 * MIB, **_SM90_LIMITS,
            clock_khz=1965000, mem_clock_khz=3906000, mem_bus_width_bits=8192, pcie_gen=5, pcie_width=16,
            nvlink_links=18, hbm_bytes_per_s=8.0e12, pcie_bytes_per_s=_pcie_bytes_per_s(5, 16),
            launch_latency_ns=3000, kernel_floor_ns=1500, tdp_watts=1000, nvlink_bytes_per_s=900e9,
            peak_fp64_flops=37 * TERA, peak_fp32_flops=75 * TERA, peak_tf32_flops=1125 * TERA,
            peak_fp16_flops=2250 * TERA, peak_bf16_flops=2250 * TERA, peak_fp8_flops=4500 * TERA,
            peak_int8_ops=4500 * TERA, sources=_common_sources(_B200_PAGE, _BLACKWELL_WP)),
    GpuSpec(key="l40s", name="NVIDIA L40S", cc_major=8, cc_minor=9, sm_count=142,
            memory_bytes=48 * GIB, reserved_bytes=512 * MIB, l2_bytes=96 * MIB, **_SM89_LIMITS,
            clock_khz=2520000, mem_clock_khz=9001000, mem_bus_width_bits=384, pcie_gen=4, pcie_width=16,
            nvlink_links=0, hbm_bytes_per_s=864e9, pcie_bytes_per_s=_pcie_bytes_per_s(4, 16),
            launch_latency_ns=3000, kernel_floor_ns=2000, tdp_watts=350, nvlink_bytes_per_s=0.0,
            peak_fp64_flops=1.43 * TERA, peak_fp32_flops=91.6 * TERA, peak_tf32_flops=183 * TERA,
            peak_fp16_flops=362.05 * TERA, peak_bf16_flops=362.05 * TERA, peak_fp8_flops=733 * TERA,
            peak_int8_ops=733 * TERA, sources=_common_sources(_L40S_DATASHEET, _ADA_WP)),
    GpuSpec(key="a40", name="NVIDIA A40", cc_major=8, cc_minor=6, sm_count=84,
            memory_bytes=48 * GIB, reserved_bytes=512 * MIB, l2_bytes=6 * MIB, **_SM86_LIMITS,
            clock_khz=1740000, mem_clock_khz=7251000, mem_bus_width_bits=384, pcie_gen=4, pcie_width=16,
            nvlink_links=4, hbm_bytes_per_s=696e9, pcie_bytes_per_s=_pcie_bytes_per_s(4, 16),
            launch_latency_ns=3000, kernel_floor_ns=2000, tdp_watts=300, nvlink_bytes_per_s=56.25e9,
            peak_fp64_flops=0.58 * TERA, peak_fp32_flops=37.4 * TERA, peak_tf32_flops=74.8 * TERA,
            peak_fp16_flops=149.7 * TERA, peak_bf16_flops=149.7 * TERA, peak_fp8_flops=0.0,
            peak_int8_ops=299.3 * TERA, sources=_common_sources(_A40_DATASHEET, _AMPERE_WP)),
    GpuSpec(key="l4", name="NVIDIA L4", cc_major=8, cc_minor=9, sm_count=58,
            memory_bytes=24 * GIB, reserved_bytes=512 * MIB, l2_bytes=48 * MIB, **_SM89_LIMITS,
            clock_khz=2040000, mem_clock_khz=6251000, mem_bus_width_bits=192, pcie_gen=4, pcie_width=16,
            nvlink_links=0, hbm_bytes_per_s=300e9, pcie_bytes_per_s=_pcie_bytes_per_s(4, 16),
            launch_latency_ns=3000, kernel_floor_ns=2000, tdp_watts=72, nvlink_bytes_per_s=0.0,
            peak_fp64_flops=0.47 * TERA, peak_fp32_flops=30.3 * TERA, peak_tf32_flops=60 * TERA,
            peak_fp16_flops=121 * TERA, peak_bf16_flops=121 * TERA, peak_fp8_flops=242.5 * TERA,
            peak_int8_ops=242.5 * TERA, sources=_common_sources(_L4_DATASHEET, _ADA_WP)),
)

_ALIASES = {"a100": "a100-80g", "a100-sxm": "a100-80g", "a100-80gb": "a100-80g", "h100-sxm": "h100",
            "a100-40g": "a100-pcie-40g", "v100-pcie": "v100", "v100-32g": "v100",
            "h100-sxm5": "h100", "h100-80g": "h100", "h200-sxm": "h200", "b200-sxm": "b200"}

# The order of spec.env lines: tw_gpu_spec's field order (shim/src/tw_core.h).
SPEC_ENV_KEYS = ("name", "key", "cc_major", "cc_minor", "sm_count", "memory_bytes", "reserved_bytes",
                 "l2_bytes", "smem_per_sm_bytes", "smem_per_block_bytes", "smem_per_block_optin_bytes",
                 "regs_per_sm", "regs_per_block", "max_threads_per_sm", "max_threads_per_block",
                 "max_blocks_per_sm", "warp_size", "clock_khz", "mem_clock_khz", "mem_bus_width_bits",
                 "pcie_gen", "pcie_width", "nvlink_links", "hbm_bytes_per_s", "pcie_bytes_per_s",
                 "launch_latency_ns", "kernel_floor_ns", "tdp_watts", "nvswitch")


def list_specs() -> list[GpuSpec]:
    return list(_SPECS)


def known_keys() -> list[str]:
    return [spec.key for spec in _SPECS]


def get_spec(key: str) -> GpuSpec:
    """The spec for a catalog key or alias (case-insensitive)."""
    wanted = key.strip().lower()
    wanted = _ALIASES.get(wanted, wanted)
    for spec in _SPECS:
        if spec.key == wanted:
            return spec
    aliases = ", ".join(sorted(_ALIASES))
    raise UnknownGpuError(f"unknown GPU {key!r}; known: {', '.join(known_keys())} (aliases: {aliases})")


def spec_env_text(spec: GpuSpec, device_count: int) -> str:
    """spec.env for the shim: one key=value per line (docs/internals.md), then device_count."""
    values = dataclasses.asdict(spec)
    # 1 on NVSwitch nodes: the shim's NVLink multicast support (CU_DEVICE_ATTRIBUTE_MULTICAST_SUPPORTED)
    values["nvswitch"] = int(spec.node_topology == "nvswitch")
    lines = []
    for key in SPEC_ENV_KEYS:
        value = values[key]
        if isinstance(value, float):
            text = str(round(value))  # bandwidths in bytes/s: whole numbers suffice
        else:
            text = str(value)
        if "\n" in text or "=" in key:
            raise ValueError(f"spec field {key} cannot be written as one line")
        lines.append(f"{key}={text}")
    lines.append(f"device_count={int(device_count)}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class HostSpec:
    """The host CPU of the server a GPU kind ships in: how many threads the emulated host runs at
    once (emulate --host-cores) and the CPU whose single-thread speed --cpu-speed is relative to."""

    cpu: str
    cores: int          # physical cores of the whole server (all sockets)
    gpus: int           # GPUs in that server
    source: str


_HOSTS = {
    "h100": HostSpec("Intel Xeon Platinum 8480C (2 sockets)", 112, 8,
                     "NVIDIA DGX H100 user guide, system specifications"),
    "h200": HostSpec("Intel Xeon Platinum 8480C (2 sockets)", 112, 8,
                     "NVIDIA DGX H200 datasheet"),
    "b200": HostSpec("Intel Xeon Platinum 8570 (2 sockets)", 112, 8, "NVIDIA DGX B200 datasheet"),
    "a100-80g": HostSpec("AMD EPYC 7742 (2 sockets)", 128, 8, "NVIDIA DGX A100 datasheet"),
}
_DEFAULT_HOST = HostSpec("a two-socket server CPU", 64, 8, "no published node: a typical 2-socket PCIe server")


def host_spec(key: str) -> HostSpec:
    """The server CPU a GPU kind is deployed with (DGX/HGX where NVIDIA publishes one)."""
    return _HOSTS.get(get_spec(key).key, _DEFAULT_HOST)
