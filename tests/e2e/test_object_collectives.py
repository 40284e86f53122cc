"""torch.distributed's object collectives on the NCCL backend across two emulated GPUs:
broadcast_object_list, all_gather_object, gather_object and scatter_object_list deliver exactly
the objects sent (dicts, strings, lists, one of ~100 KB; other sizes on every rank; pickles of
whole 16-byte units, which torch.cat copies with its vectorized kernel), barrier passes, and
`.item()` of an all-reduced scalar is the sum. Their sizes are computed on the GPU between the collectives (torch.cat, torch.zeros,
torch.sum(...).item(), `>` and `+=` on size tensors): shim/src/kernel_data.c evaluates those
kernels on the host, in issue order with the collectives' data (shim/src/collective_data.c)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from timewarp_testing import requires_cuda_torch

pytestmark = requires_cuda_torch

WORKLOAD = Path(__file__).resolve().parent / "workloads" / "ddp_train.py"
TORCHRUN = Path(sys.executable).with_name("torchrun")
TINY_MODEL = ["--width", "64", "--layers", "1", "--batch", "2", "--seq", "8", "--steps", "1"]


def workload() -> ModuleType:
    """ddp_train.py's definitions of what it sends and how it prints it."""
    spec = importlib.util.spec_from_file_location("ddp_train", WORKLOAD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_object_collectives_two_ranks(emulate) -> None:  # noqa: ANN001
    ranks = 2
    env = dict(os.environ, OMP_NUM_THREADS="1")
    run = emulate([str(TORCHRUN), "--nproc-per-node", str(ranks), str(WORKLOAD), "--objects", *TINY_MODEL],
                  extra=["--gpus", str(ranks)], env=env, timeout=1800)
    assert run.exit_status == 0, f"{run.stdout[-3000:]}\n{run.stderr[-6000:]}\n{run.crash_reports()}"
    received: dict[int, dict[str, str]] = {}
    reduced: dict[int, str] = {}
    for line in run.stdout.splitlines():
        if not line.startswith("RESULT "):
            continue
        fields = dict(f.split("=", 1) for f in line[len("RESULT "):].split())
        if "broadcast_objects" in fields:
            received[int(fields.pop("rank"))] = fields
        elif "allreduce" in fields:
            reduced[int(fields["rank"])] = fields["allreduce"]
    assert sorted(received) == list(range(ranks)), run.stdout[-3000:]
    # `.item()` of an all-reduced scalar: the sum of rank + 1 over the ranks, on every rank
    assert reduced == {rank: f"{sum(range(1, ranks + 1)):g}" for rank in range(ranks)}, run.stdout[-3000:]
    w = workload()
    sent = w.sent_objects(ranks)
    root = ranks - 1
    for rank, got in received.items():
        assert got["broadcast_objects"] == w.compact(sent["broadcast"]), rank
        assert got["broadcast_units"] == w.compact(sent["broadcast_units"]), (rank, got)
        assert got["gathered_objects"] == w.compact(sent["per_rank"]), (rank, got)
        assert got["gather_root_objects"] == w.compact(sent["per_rank"] if rank == root else None), (rank, got)
        assert got["scattered_object"] == w.compact(sent["scatter"][rank]), (rank, got)
    # the other collectives of the run still hold, and nothing fell back to a stub
    assert run.stdout.count("done=1") == ranks
    assert run.summary["unimplemented"] == []
