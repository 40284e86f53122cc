"""The registry of a run's actors: every thread of every process that loaded the shim, running
or blocked in what until when (DESIGN §3). The shims keep it in <run>/actors.page (shared
memory, shim/src/actors.c: registering, blocking and waking cost no RPC); the coordinator
serves it in its gRPC Status, and `emulate status` prints it.
"""

from __future__ import annotations

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
    outsiders: int = 0         # live processes of the run without the shim (emulator/monitor.py)


def read_status(run_dir: Path) -> RunStatus:
    """A snapshot of the run's clock and actor table (racy by nature: a live view)."""
    ffi = abi.ffi()
    clock = ffi.from_buffer("tw_clock_page *", bytearray((run_dir / "clock.page").read_bytes()))
    host = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    run_now = host + clock.offset_ns
    start = clock.run_start_mono_ns
    actors: list[Actor] = []
    jumps, deadlock, outsiders = 0, False, 0
    page = run_dir / "actors.page"
    if page.exists():
        raw = bytearray(page.read_bytes())
        if len(raw) >= ffi.sizeof("tw_actor_table"):
            table = ffi.from_buffer("tw_actor_table *", raw)
            jumps, deadlock, outsiders = int(table.jumps), bool(table.deadlock), int(table.outsiders)
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
    return RunStatus((run_now - start) / 1e9, jumps, deadlock, actors, outsiders)
