"""Wall cost of one NCCL rendezvous under the shim, for 2, 4 and 8 ranks (issue 8's target:
under 100 us on a 2-core host).

Each rank is a process of tests/shim/cuda/nccl_ranks.c (`loop` scenario) under `emulate --gpus N`:
it all-reduces BYTES and synchronises its stream COUNT times and reads the host's clock around
the loop with a raw syscall (the shim does not see it). One op is the whole round trip a
program pays: the arrival, the rendezvous across processes, the clock's jump to its end and
every rank's wake. Small buffers are host-backed, so their bytes are reduced as NCCL would.

    python scripts/bench_collectives.py [--ranks 2 4 8] [--count 2000] [--bytes 1024]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from shim import build

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "tests" / "shim" / "cuda" / "nccl_ranks.c"


def compile_program(out_dir: Path) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("bench_collectives: a C compiler is needed")
    exe = out_dir / "nccl_ranks"
    includes = [f"-I{d}" for d in build.vendor_include_dirs()]
    subprocess.run([cc, "-std=gnu11", "-O2", *includes, "-o", str(exe), str(SOURCE), "-ldl"], check=True)
    return exe


def run_ranks(exe: Path, nranks: int, count: int, nbytes: int, run_dir: Path) -> dict:
    cmd = [sys.executable, "-m", "emulator", "--gpus", str(nranks), "--out", str(run_dir), "--force", "--",
           str(exe), str(nranks), "loop", str(count), str(nbytes)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"bench_collectives: {nranks} ranks exited {proc.returncode}\n{proc.stderr[-3000:]}")
    per_rank = [float(line.split()[3]) for line in proc.stdout.splitlines() if "host_ns_per_op" in line]
    if len(per_rank) != nranks:
        raise SystemExit(f"bench_collectives: {len(per_rank)} of {nranks} ranks reported\n{proc.stdout[-2000:]}")
    return {"ranks": nranks, "count": count, "bytes": nbytes,
            "us_per_op_median_rank": round(statistics.median(per_rank) / 1e3, 1),
            "us_per_op_slowest_rank": round(max(per_rank) / 1e3, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ranks", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--bytes", type=int, default=1024)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-coll-") as tmp:
        exe = compile_program(Path(tmp))
        rows = [run_ranks(exe, n, args.count, args.bytes, Path(tmp) / f"run-{n}") for n in args.ranks]
    print(json.dumps({"host_cpus": len(os.sched_getaffinity(0)), "host_load_1min": os.getloadavg()[0],
                      "results": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
