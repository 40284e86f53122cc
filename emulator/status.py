"""`emulate status DIR`: the live actor table of a run (who runs, who waits in what, until when).

Asks the run's coordinator (its gRPC Status) while it runs; reads the run directory's tables
(coordinator/actors.py) when it does not (a finished run, a run without a coordinator).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from coordinator.actors import Actor, RunStatus, read_status


def status_from_coordinator(run_dir: Path) -> RunStatus | None:
    """The coordinator's view (None when no coordinator serves this run directory)."""
    port_file = run_dir / "coordinator.port"
    if not port_file.exists():
        return None
    import grpc

    from coordinator.proto import timewarp_pb2 as pb
    from coordinator.proto import timewarp_pb2_grpc as pb_grpc

    try:
        target = f"127.0.0.1:{int(port_file.read_text().split()[0])}"
        with grpc.insecure_channel(target) as channel:
            reply = pb_grpc.CoordinatorStub(channel).Status(pb.StatusRequest(), timeout=2.0)
    except (OSError, ValueError, IndexError, grpc.RpcError):
        return None
    actors = [Actor(a.pid, a.tid, a.state, a.label, a.target_s if a.has_target else None, a.for_s, a.waits)
              for a in reply.actors]
    return RunStatus(reply.virtual_s, reply.jumps, reply.deadlock, actors, reply.outsiders,
                     dict(reply.jump_refusals), reply.clock_rate)


def format_status(status: RunStatus) -> str:
    lines = [f"virtual time {status.virtual_s:.6f} s, {status.jumps} causal jumps"
             + (", DEADLOCK reported" if status.deadlock else "")]
    lines.append(f"{'pid':>8} {'tid':>8}  {'state':16} {'in':24} {'until (virtual s)':>18} {'for (s)':>9} {'waits':>7}")
    for a in sorted(status.actors, key=lambda a: (a.pid, a.tid)):
        target = f"{a.target_s:.6f}" if a.target_s is not None else "-"
        lines.append(f"{a.pid:>8} {a.tid:>8}  {a.state:16} {a.label or '-':24} {target:>18} {a.for_s:>9.3f} "
                     f"{a.waits:>7}")
    if not status.actors:
        lines.append("(no live actors)")
    if status.outsiders:
        lines.append(f"{status.outsiders} process(es) of the run without the shim (not actors)")
    lines.append(f"clock rate {status.clock_rate:.3f} virtual s per host s")
    refused = {k: v for k, v in status.jump_refusals.items() if v}
    if refused:
        lines.append("jumps refused: " + ", ".join(f"{k} {v}" for k, v in sorted(refused.items(), key=lambda kv: -kv[1])))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="emulate status", description="Show the live actor table of a run.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--watch", type=float, metavar="SECONDS", help="repeat every SECONDS until interrupted")
    args = parser.parse_args(argv)
    if not (args.run_dir / "clock.page").exists():
        parser.error(f"{args.run_dir}: not a run directory (no clock.page)")
    while True:
        print(format_status(status_from_coordinator(args.run_dir) or read_status(args.run_dir)), flush=True)
        if args.watch is None:
            return 0
        try:
            time.sleep(args.watch)
        except KeyboardInterrupt:
            return 0
