"""Benchmark of the shim's hot paths and of emulation speed (not a test).

Reports: host cost of a cached kernel launch under emulate; an interposed clock_gettime against
the native one; wall time against virtual time for the small training loop of the e2e tests.

    python scripts/bench_shim.py [--gpu h100] [--launches 1000000] [--reads 10000000] [--steps 20]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_RESULT_FIELD = re.compile(r"(\w+)=(.*?)(?=\s+\w+=|$)")


@dataclass
class Row:
    what: str
    value: float
    unit: str
    target: str
    ok: bool | None


def results(stdout: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            merged.update({k: v.strip() for k, v in _RESULT_FIELD.findall(line[len("RESULT "):])})
    return merged


def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return proc


def emulated(cmd: list[str], gpu: str, out: Path) -> tuple[str, dict]:
    proc = run([sys.executable, "-m", "emulator", "--gpu", gpu, "--out", str(out), "--force", "--", *cmd])
    return proc.stdout, json.loads((out / "summary.json").read_text())


def build(work: Path) -> tuple[Path, Path]:
    nvcc = shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
    launch = work / "app_empty_launch"
    run([nvcc, "-cudart", "shared", "-arch=sm_90", "-o", str(launch),
         str(REPO / "tests/shim/cuda/app_empty_launch.cu")])
    clock = work / "bench_clock"
    run([shutil.which("cc") or "gcc", "-O2", "-o", str(clock), str(REPO / "scripts/bench_clock.c")])
    return launch, clock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", default="h100")
    parser.add_argument("--launches", type=int, default=1_000_000)
    parser.add_argument("--reads", type=int, default=10_000_000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the run directories")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tw-bench-"))
    launch_exe, clock_exe = build(work)
    rows: list[Row] = []

    out, _ = emulated([str(launch_exe), str(args.launches)], args.gpu, work / "launch")
    launch_us = float(results(out)["ns_per_launch"]) / 1e3
    rows.append(Row("cached kernel launch", launch_us, "us", "<= 0.3", launch_us <= 0.3))

    native = float(results(run([str(clock_exe), str(args.reads)]).stdout)["ns_per_read"])
    out, _ = emulated([str(clock_exe), str(args.reads)], args.gpu, work / "clock")
    shimmed = float(results(out)["ns_per_read"])
    rows.append(Row("clock_gettime native", native, "ns", "", None))
    rows.append(Row("clock_gettime interposed", shimmed, "ns", "", None))
    rows.append(Row("clock read ratio", shimmed / native, "x", "<= 2", shimmed / native <= 2.0))

    workload = REPO / "tests/e2e/workloads/train_transformer.py"
    out, summary = emulated([sys.executable, str(workload), str(args.steps)], args.gpu, work / "train")
    wall, virtual = float(summary["wall_time_s"]), float(summary["virtual_time_s"])
    steps_ms = [float(m) for m in re.findall(r"^RESULT step=\d+ ms=([\d.]+)", out, re.MULTILINE)]
    rows.append(Row(f"training loop ({args.steps} steps) wall", wall, "s", "", None))
    rows.append(Row(f"training loop ({args.steps} steps) virtual", virtual, "s", "", None))
    rows.append(Row("training loop virtual/wall", virtual / wall if wall else 0.0, "x", "", None))
    if steps_ms:
        rows.append(Row("last step (CUDA events)", steps_ms[-1], "ms", "", None))

    width = max(len(r.what) for r in rows)
    print(f"{'measure':<{width}}  {'value':>12}  unit  target   ok")
    for r in rows:
        ok = "" if r.ok is None else ("yes" if r.ok else "NO")
        print(f"{r.what:<{width}}  {r.value:>12.4g}  {r.unit:<4}  {r.target:<7}  {ok}")
    if args.keep:
        print(f"run directories kept under {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
