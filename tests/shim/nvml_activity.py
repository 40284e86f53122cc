"""Drives the shim's NVML and CUDA runtime through ctypes, as monitoring code in a training
process would (torch.cuda.utilization / power_draw call the same NVML entry points): reads
utilisation and power while idle, right after a second of memsets, and after sleeps of 0.5 s
and 2 s. Prints `key=value` lines. Run under emulate (libnvidia-ml.so.1 and libcudart.so.13
resolve to the shim)."""

from __future__ import annotations

import ctypes as C
import time

NVML = C.CDLL("libnvidia-ml.so.1")
RT = C.CDLL("libcudart.so.13")


class Utilization(C.Structure):
    _fields_ = [("gpu", C.c_uint), ("memory", C.c_uint)]


def sample(label: str, device: C.c_void_p) -> None:
    util, power = Utilization(), C.c_uint(0)
    assert NVML.nvmlDeviceGetUtilizationRates(device, C.byref(util)) == 0
    assert NVML.nvmlDeviceGetPowerUsage(device, C.byref(power)) == 0
    print(f"{label}_gpu={util.gpu}\n{label}_memory={util.memory}\n{label}_power_mw={power.value}", flush=True)


def main() -> None:
    assert NVML.nvmlInit_v2() == 0
    device = C.c_void_p()
    assert NVML.nvmlDeviceGetHandleByIndex_v2(0, C.byref(device)) == 0
    sample("idle", device)
    ptr = C.c_void_p()
    size = 40 << 30  # unbacked: the memsets are predicted, not performed
    assert RT.cudaMalloc(C.byref(ptr), C.c_size_t(size)) == 0
    begin = time.monotonic()
    memsets = 0
    while True:  # queue memsets until their predicted time passes 1.2 s (more than the window)
        assert RT.cudaMemsetAsync(ptr, 0, C.c_size_t(size), None) == 0
        memsets += 1
        if memsets % 16 == 0:
            assert RT.cudaDeviceSynchronize() == 0
            if time.monotonic() - begin > 1.2:
                break
    print(f"memsets={memsets}\nbusy_span_s={time.monotonic() - begin:.6f}", flush=True)
    sample("busy", device)
    time.sleep(0.5)
    sample("half", device)
    time.sleep(2.0)
    sample("after", device)


if __name__ == "__main__":
    main()
