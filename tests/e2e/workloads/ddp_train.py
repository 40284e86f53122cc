"""A small transformer trained with DistributedDataParallel (or FSDP2's fully_shard) under
torchrun: each rank prints its step times (virtual, from CUDA events) and the values of a few
torch.distributed collectives, so the test can check both the timeline and the data.

    torchrun --nproc-per-node N ddp_train.py [--fsdp] [--steps S] [--objects]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import sys
import time

import torch
import torch.distributed as dist
import torch.nn as nn


def emit(**fields: object) -> None:
    """One `RESULT k=v ...` line in one write: ranks share the stdout pipe."""
    line = "RESULT " + " ".join(f"{k}={str(v).replace(' ', '')}" for k, v in fields.items()) + "\n"
    sys.stdout.write(line)
    sys.stdout.flush()


class Block(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.norm1 = nn.LayerNorm(width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


def model(width: int, layers: int) -> nn.Module:
    return nn.Sequential(*[Block(width, 4) for _ in range(layers)], nn.Linear(width, width))


def check_collective_values(rank: int, world: int) -> None:
    """Values that must cross the ranks: a broadcast tensor, an all-reduced one read back with
    .item(), an all-gather, and a barrier."""
    source = torch.tensor([rank * 100 + 7], dtype=torch.long, device="cuda")
    dist.broadcast(source, src=world - 1)
    value = torch.tensor([float(rank + 1)], device="cuda")
    dist.all_reduce(value)
    gathered = torch.empty(world, dtype=torch.long, device="cuda")
    dist.all_gather_into_tensor(gathered, torch.tensor([rank * rank], dtype=torch.long, device="cuda"))
    dist.barrier()
    emit(rank=rank, broadcast=source.item(), allreduce=f"{value.item():g}", squares=gathered.tolist())


def sent_objects(world: int) -> dict[str, object]:
    """What --objects sends (the test builds the same): dicts, strings and lists of other sizes on
    every rank, and one object of ~100 KB (its bytes are concatenated in one 1-D cat)."""
    return {
        "broadcast": [{"from": 0, "tags": ["a", "b"]}, "text" * 50, [1, 2.5, None, [3, 4]], "x" * 100_000],
        "per_rank": [{"rank": r, "square": r * r, "name": f"rank-{r}" * (r + 1)} for r in range(world)],
        "scatter": [{"to": r, "payload": "y" * (10 * r + 1)} for r in range(world)],
        "broadcast_units": [in_units("first"), in_units("second-and-longer-" * 3)],
    }


def in_units(text: str) -> str:
    """text, padded until its pickle is whole 16-byte units: a list of such objects is
    concatenated by torch.cat's vectorized kernel (CatArrayBatchedCopy_vectorized)."""
    while len(pickle.dumps(text)) % 16 != 0:
        text += "."
    return text


def check_object_collectives(rank: int, world: int) -> None:
    """torch.distributed's object collectives: objects pickled into uint8 tensors, their sizes
    computed with kernels (torch.cat, torch.zeros, torch.sum(...).item(), comparisons, `+=`) that
    the shim evaluates on the host (shim/src/kernel_data.c). Each rank emits, as JSON, what it
    received from broadcast_object_list (twice: the second list's pickles are whole 16-byte
    units), all_gather_object, gather_object (rank world - 1 gathers) and scatter_object_list
    (rank 0 scatters), then passes a barrier."""
    sent = sent_objects(world)
    broadcast = list(sent["broadcast"]) if rank == 0 else [None] * len(sent["broadcast"])  # type: ignore[arg-type]
    dist.broadcast_object_list(broadcast, src=0)
    units = list(sent["broadcast_units"]) if rank == 0 else [None] * len(sent["broadcast_units"])  # type: ignore[arg-type]
    dist.broadcast_object_list(units, src=0)
    gathered: list[object] = [None] * world
    dist.all_gather_object(gathered, sent["per_rank"][rank])  # type: ignore[index]
    root = world - 1
    at_root: list[object] | None = [None] * world if rank == root else None
    dist.gather_object(sent["per_rank"][rank], at_root, dst=root)  # type: ignore[index]
    scattered: list[object] = [None]
    dist.scatter_object_list(scattered, sent["scatter"] if rank == 0 else None, src=0)  # type: ignore[arg-type]
    dist.barrier()
    emit(rank=rank, broadcast_objects=compact(broadcast), broadcast_units=compact(units),
         gathered_objects=compact(gathered), gather_root_objects=compact(at_root),
         scattered_object=compact(scattered[0]))


def compact(value: object) -> str:
    """JSON without spaces (the RESULT line keeps it whole); a long one as its SHA-256, so the
    line stays one atomic pipe write."""
    text = json.dumps(value, separators=(",", ":"))
    return text if len(text) < 1000 else "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--fsdp", action="store_true")
    parser.add_argument("--objects", action="store_true", help="also the object collectives (values as JSON)")
    args = parser.parse_args()
    dist.init_process_group("nccl")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)))
    emit(rank=rank, pid=os.getpid())
    check_collective_values(rank, world)
    if args.objects:
        check_object_collectives(rank, world)
    torch.manual_seed(0)
    net = model(args.width, args.layers).cuda()
    if args.fsdp:
        from torch.distributed.fsdp import fully_shard

        for block in net[:-1]:
            fully_shard(block)
        fully_shard(net)
    else:
        net = nn.parallel.DistributedDataParallel(net)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    x = torch.randn(args.batch, args.seq, args.width, device="cuda")
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for step in range(args.steps):
        begin_ns = time.monotonic_ns()   # virtual: the GPU is idle here (the last step synchronized)
        start.record()
        loss = net(x).float().pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        end.record()
        end.synchronize()
        emit(rank=rank, step=step, ms=f"{start.elapsed_time(end):.4f}", begin_ns=begin_ns, end_ns=time.monotonic_ns())
    dist.barrier()
    emit(rank=rank, done=1)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
