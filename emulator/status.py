"""`emulate status DIR`: the live actor table of a run (who runs, who waits in what, until when).

Reads DIR/actors.page (written by the shims, shim/src/actors.c) and DIR/clock.page.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

from shim import abi

STATE_NAMES = {
    "TW_ACTOR_RUNNING": "running",
    "TW_ACTOR_BLOCKED": "blocked",
    "TW_ACTOR_BLOCKED_FOREVER": "blocked-forever",
    "TW_ACTOR_SPINNING": "spinning",
}


@dataclass
class Actor:
    pid: int
    tid: int
    state: str
    label: str
    target_s: float | None     # run virtual time the actor waits for, seconds since run start
    for_s: float               # real seconds in this state
    waits: int


@dataclass
class RunStatus:
    virtual_s: float
    jumps: int
    deadlock: bool
    actors: list[Actor]


def read_status(run_dir: Path) -> RunStatus:
    """A snapshot of the run's clock and actor table (racy by nature: a live view)."""
    ffi = abi.ffi()
    clock = ffi.from_buffer("tw_clock_page *", bytearray((run_dir / "clock.page").read_bytes()))
    host = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    run_now = host + clock.offset_ns
    start = clock.run_start_mono_ns
    actors: list[Actor] = []
    jumps, deadlock = 0, False
    page = run_dir / "actors.page"
    if page.exists():
        raw = bytearray(page.read_bytes())
        if len(raw) >= ffi.sizeof("tw_actor_table"):
            table = ffi.from_buffer("tw_actor_table *", raw)
            jumps, deadlock = int(table.jumps), bool(table.deadlock)
            names = {abi.constant(name): text for name, text in STATE_NAMES.items()}
            for i in range(min(int(table.high_water), abi.constant("TW_ACTOR_SLOTS"))):
                slot = table.slots[i]
                if slot.pid == 0 or slot.state not in names:
                    continue
                target = None
                if slot.state == abi.constant("TW_ACTOR_BLOCKED"):
                    target = (slot.target_ns - start) / 1e9
                label = ffi.string(slot.label, abi.constant("TW_ACTOR_LABEL_LEN")).decode(errors="replace")
                actors.append(Actor(int(slot.pid), int(slot.tid), names[slot.state], label, target,
                                    (host - slot.since_host_ns) / 1e9, int(slot.heartbeat)))
    return RunStatus((run_now - start) / 1e9, jumps, deadlock, actors)


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
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="emulate status", description="Show the live actor table of a run.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--watch", type=float, metavar="SECONDS", help="repeat every SECONDS until interrupted")
    args = parser.parse_args(argv)
    if not (args.run_dir / "clock.page").exists():
        parser.error(f"{args.run_dir}: not a run directory (no clock.page)")
    while True:
        print(format_status(read_status(args.run_dir)), flush=True)
        if args.watch is None:
            return 0
        try:
            time.sleep(args.watch)
        except KeyboardInterrupt:
            return 0
