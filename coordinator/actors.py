"""The registry of a run's actors: every thread of every process that loaded the shim, running
or blocked in what until when (DESIGN §3). The shims keep it in <run>/actors.page (shared
memory, shim/src/actors.c: registering, blocking and waking cost no RPC); the coordinator
serves it in its gRPC Status, and `emulate status` prints it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
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
    jump_refusals: dict[str, int] = field(default_factory=dict)  # reason -> count (records.h tw_jump_refusal)
    clock_rate: float = 1.0    # virtual s per host s now (the governor's dilation; 0 while paused)


def refusal_names() -> dict[int, str]:
    """records.h's TW_REFUSED_* values by their names in lower case ("running", "reached", ...)."""
    elements = abi.ffi().typeof("enum tw_jump_refusal").elements
    return {value: name[len("TW_REFUSED_"):].lower() for value, name in elements.items()
            if name.startswith("TW_REFUSED_")}


def read_refusals(table) -> dict[str, int]:  # noqa: ANN001 - a cffi tw_actor_table
    return {name: int(table.refusals[value]) for value, name in refusal_names().items()}


def read_status(run_dir: Path) -> RunStatus:
    """A snapshot of the run's clock and actor table (racy by nature: a live view)."""
    ffi = abi.ffi()
    clock = ffi.from_buffer("tw_clock_page *", bytearray((run_dir / "clock.page").read_bytes()))
    host = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    # the current segment of the piecewise-linear clock (shim/src/clock_page.h)
    run_now = int(clock.base_virtual_ns) + max(host - int(clock.base_host_ns), 0) * int(clock.rate_ppm) // \
        abi.constant("TW_RATE_ONE_PPM")
    start = clock.run_start_mono_ns
    actors: list[Actor] = []
    jumps, deadlock, outsiders = 0, False, 0
    refusals: dict[str, int] = {}
    page = run_dir / "actors.page"
    if page.exists():
        raw = bytearray(page.read_bytes())
        if len(raw) >= ffi.sizeof("tw_actor_table"):
            table = ffi.from_buffer("tw_actor_table *", raw)
            jumps, deadlock, outsiders = int(table.jumps), bool(table.deadlock), int(table.outsiders)
            refusals = read_refusals(table)
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
    rate = int(clock.rate_ppm) / abi.constant("TW_RATE_ONE_PPM")
    return RunStatus((run_now - start) / 1e9, jumps, deadlock, actors, outsiders, refusals, rate)
