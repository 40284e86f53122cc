"""Device, memory, NVML and nvidia-smi as a program sees them under the shim.

The CUDA programs run with the shim preloaded and a spec.env written here, so the test does not
depend on `emulate`; each asserts what a user would notice (names, counts, OOM, faults).
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pytest
from timewarp_testing import REPO, compile_cuda

from predictors.catalog import get_spec

CUDA_DIR = Path(__file__).parent / "cuda"
NVIDIA_SMI = REPO / "emulator" / "bin" / "nvidia-smi"
SPEC = {
    "name": "NVIDIA H100 80GB HBM3", "key": "h100", "cc_major": "9", "cc_minor": "0",
    "sm_count": "132", "memory_bytes": "85520809984", "reserved_bytes": "549453824",
    "nvlink_links": "18", "tdp_watts": "700", "device_count": "2",
}


@pytest.fixture
def spec_env(tmp_path: Path) -> Path:
    path = tmp_path / "spec.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in SPEC.items()))
    return path


def run_preloaded(cmd: list[str], shim_lib: Path, spec: Path, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "LD_PRELOAD": str(shim_lib), "TIMEWARP_SPEC": str(spec), **env}
    full_env.pop("TIMEWARP_RUN_DIR", None)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=full_env)


def parse(stdout: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)


def test_device_and_memory(nvcc: str, cuda_bin_dir: Path, shim_lib: Path, spec_env: Path) -> None:
    exe = compile_cuda(nvcc, CUDA_DIR / "memdev_basic.cu", cuda_bin_dir)
    proc = run_preloaded([str(exe)], shim_lib, spec_env)
    assert proc.returncode == 0, proc.stderr
    out = parse(proc.stdout)
    assert out["count"] == "2"
    assert out["name"] == SPEC["name"]
    assert out["sm_count"] == out["attr_sm_count"] == "132"
    assert out["cc"] == "9.0"
    assert int(out["total"]) == int(SPEC["memory_bytes"])
    assert out["bad_attr"] == "1"  # cudaErrorInvalidValue
    assert out["set_device"] == "1"
    assert out["roundtrip"] == "1"  # small allocations are host-backed
    assert int(out["free_drop"]) == 1 << 30
    assert out["big_type"] == "2" and out["host_type"] == "0"  # Device / Unregistered
    assert out["oom"] == "2"  # cudaErrorMemoryAllocation
    assert out["free_restored"] == "1"
    assert out["host_devptr"] == "1"  # CUDA_ERROR_INVALID_VALUE for host memory
    assert out["vmm_status"] == "0"
    assert int(out["vmm_charged"]) == 22 << 20
    assert out["vmm_backed_value"] == "42"
    assert out["vmm_range_ok"] == "1"
    assert out["vmm_type"] == "2"
    assert out["vmm_release_status"] == "0" and out["vmm_restored"] == "1"


def test_host_dereference_names_allocation(nvcc: str, cuda_bin_dir: Path, shim_lib: Path,
                                           spec_env: Path) -> None:
    exe = compile_cuda(nvcc, CUDA_DIR / "memdev_fault.cu", cuda_bin_dir)
    proc = run_preloaded([str(exe)], shim_lib, spec_env)
    assert proc.returncode != 0
    assert "survived" not in proc.stdout
    assert "host dereference of device memory" in proc.stderr
    assert f"of {64 << 20} bytes on device 0" in proc.stderr
    assert "unbacked: larger than TIMEWARP_BACKED_BYTES" in proc.stderr


NVML_SCRIPT = """
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
assert lib.nvmlInitWithFlags(0) == 0
n = ctypes.c_uint()
assert lib.nvmlDeviceGetCount_v2(ctypes.byref(n)) == 0
h = ctypes.c_void_p()
assert lib.nvmlDeviceGetHandleByIndex_v2(1, ctypes.byref(h)) == 0
name = ctypes.create_string_buffer(96)
assert lib.nvmlDeviceGetName(h, name, 96) == 0
mem = (ctypes.c_ulonglong * 3)()
assert lib.nvmlDeviceGetMemoryInfo(h, mem) == 0
uuid = ctypes.create_string_buffer(96)
assert lib.nvmlDeviceGetUUID(h, uuid, 96) == 0
back = ctypes.c_void_p()
assert lib.nvmlDeviceGetHandleByUUID(uuid, ctypes.byref(back)) == 0 and back.value == h.value
h0 = ctypes.c_void_p()
lib.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(h0))
p2p = ctypes.c_int(-1)
assert lib.nvmlDeviceGetP2PStatus(h0, h, 2, ctypes.byref(p2p)) == 0
print(f"count={n.value}\\nname={name.value.decode()}\\ntotal={mem[0]}\\nfree={mem[1]}\\nused={mem[2]}")
print(f"uuid={uuid.value.decode()}\\np2p={p2p.value}")
assert lib.nvmlShutdown() == 0
"""


def test_nvml(shim_lib: Path, spec_env: Path) -> None:
    proc = run_preloaded([sys.executable, "-c", NVML_SCRIPT, str(shim_lib)], shim_lib, spec_env)
    assert proc.returncode == 0, proc.stderr
    out = parse(proc.stdout)
    assert out["count"] == "2"
    assert out["name"] == SPEC["name"]
    assert int(out["total"]) == int(SPEC["memory_bytes"])
    assert int(out["used"]) == 0   # no process of the run holds a context on the device yet
    assert int(out["free"]) + int(out["used"]) == int(out["total"])
    assert out["p2p"] == "0"  # NVML_P2P_STATUS_OK over NVLink
    smi = subprocess.run([str(NVIDIA_SMI), "--query-gpu=uuid", "--format=csv,noheader"],
                         capture_output=True, text=True, env={**os.environ, "TIMEWARP_SPEC": str(spec_env)})
    assert smi.stdout.splitlines()[1] == out["uuid"]  # one identity across NVML and nvidia-smi


def smi(spec: Path, *args: str) -> str:
    env = {**os.environ, "TIMEWARP_SPEC": str(spec)}
    env.pop("TIMEWARP_GPUS", None)
    proc = subprocess.run([str(NVIDIA_SMI), *args], capture_output=True, text=True, env=env, check=True)
    return proc.stdout


def test_nvidia_smi_queries(spec_env: Path) -> None:
    total_mib = int(SPEC["memory_bytes"]) // (1 << 20)
    assert smi(spec_env, "--query-gpu=memory.total", "--format=csv,noheader,nounits").split() == \
        [str(total_mib)] * 2
    csv = smi(spec_env, "--query-gpu=name,memory.total,index,pci.bus_id,compute_cap,driver_version",
              "--format=csv").splitlines()
    assert csv[0].startswith("name, memory.total [MiB], index")
    assert csv[1].split(", ")[:5] == [SPEC["name"], f"{total_mib} MiB", "0", "00000000:18:00.0", "9.0"]
    listing = smi(spec_env, "-L").splitlines()
    assert listing[1].startswith(f"GPU 1: {SPEC['name']} (UUID: GPU-")
    assert "NV18" in smi(spec_env, "topo", "-m")
    assert SPEC["name"][:20] in smi(spec_env)


def test_nvml_before_init_fails(shim_lib: Path, spec_env: Path) -> None:
    script = ("import ctypes,sys; lib=ctypes.CDLL(sys.argv[1]); n=ctypes.c_uint();"
              "print(lib.nvmlDeviceGetCount_v2(ctypes.byref(n)))")
    proc = run_preloaded([sys.executable, "-c", script, str(shim_lib)], shim_lib, spec_env)
    assert proc.stdout.strip() == "1"  # NVML_ERROR_UNINITIALIZED
    assert ctypes.sizeof(ctypes.c_uint) == 4


SHARED_DEVICE_SCRIPT = r"""
import ctypes, os, subprocess, sys
GIB = 1 << 30
cudart = ctypes.CDLL("libcudart.so.13")

def free_bytes():
    free, total = ctypes.c_size_t(), ctypes.c_size_t()
    assert cudart.cudaMemGetInfo(ctypes.byref(free), ctypes.byref(total)) == 0
    return free.value, total.value

def alloc(gib):
    p = ctypes.c_void_p()
    return cudart.cudaMalloc(ctypes.byref(p), ctypes.c_size_t(gib * GIB))

if sys.argv[1] == "holder":
    assert alloc(60) == 0
    print("holder_free", free_bytes()[0], flush=True)
    sys.stdin.readline()          # hold the memory until the other process is done
else:
    r, w = os.pipe()
    holder = subprocess.Popen([sys.executable, __file__, "holder"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    print(holder.stdout.readline().strip(), flush=True)
    free, total = free_bytes()
    print("other_free", free, flush=True)
    print("oom", alloc(30), flush=True)       # 60 + 30 GiB do not fit in one 80 GB device
    print("fits", alloc(10), flush=True)
    holder.stdin.write("done\n")
    holder.stdin.close()
    holder.wait()
    print("after_exit_free", free_bytes()[0], flush=True)
"""


def test_processes_share_a_device_capacity(emulate, tmp_path: Path) -> None:  # noqa: ANN001
    script = tmp_path / "shared_device.py"
    script.write_text(SHARED_DEVICE_SCRIPT)
    run = emulate([sys.executable, str(script), "main"])
    assert run.exit_status == 0, run.stderr[-3000:]
    out = dict(line.split(" ", 1) for line in run.stdout.splitlines() if " " in line)
    spec = get_spec("h100")
    gib = 1 << 30
    reserve = spec.reserved_bytes
    # the holder alone: 60 GiB and its context
    assert int(out["holder_free"]) == spec.memory_bytes - 60 * gib - reserve
    # the other process sees the holder's use plus its own context
    assert int(out["other_free"]) == spec.memory_bytes - 60 * gib - 2 * reserve
    assert int(out["oom"]) == 2    # cudaErrorMemoryAllocation
    assert int(out["fits"]) == 0
    # once the holder is gone its memory is free again
    assert int(out["after_exit_free"]) == spec.memory_bytes - 10 * gib - reserve
