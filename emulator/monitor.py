"""Supervision of a running emulation: the side of the causal clock that lives in `emulate`.

Every `poll()` (run.py calls it every 100 ms while the command runs):

* **dead actors**: a process of the actor table (shim/src/actors.c) that is gone or a zombie
  without having released its slots (`os._exit`, SIGKILL) has them freed and the waiters
  kicked, so a dead peer is noticed within one poll, not at a timeout;
* **outsiders**: processes of the run (the command's process tree; `emulate` is the subreaper
  of its orphans, so they stay in it) that run without the shim — a static compiler, a child
  started with a cleared environment — are listed in the table: while one works the clock does
  not jump (its time is host time, as any CPU work's), and while one lives no deadlock is
  declared (it may still wake somebody);
* **crashes**: a process that died of a fatal signal wrote `crash/<pid>.txt` (shim/src/crash.c);
  the first one found is the cause with which the run ends.
* **collectives left waiting**: a rank that is gone while a collective of its communicator waits
  for it (shim/src/collectives.c) can never arrive: the run ends, naming the rank, the op, its
  sequence number and sizes.
"""

from __future__ import annotations

import ctypes
import logging
import mmap
import os
from dataclasses import dataclass
from pathlib import Path

from shim import abi

log = logging.getLogger(__name__)

PR_SET_CHILD_SUBREAPER = 36
SYS_FUTEX = 202          # x86-64
FUTEX_WAKE = 1
INT_MAX = 2**31 - 1


@dataclass(frozen=True)
class Crash:
    pid: int
    headline: str      # "pid 123 tid 123 (python w.py) killed by SIGSEGV (11) at address 0x0"
    report: str        # the whole crash file: diagnosis and native backtrace
    path: Path


def become_subreaper() -> None:
    """Orphans of the run are re-parented to this process, so they stay in its process tree."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _stat_fields(pid: int) -> tuple[str, int] | None:
    """(state letter, parent pid) of a process, None once it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    rest = raw[raw.rfind(b")") + 2:].split()
    return rest[0].decode(), int(rest[1])


def _processes() -> dict[int, tuple[str, int]]:
    table: dict[int, tuple[str, int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                table[int(entry.name)] = fields
    return table


def _dead(state: str | None) -> bool:
    return state is None or state in ("Z", "X", "x")


def _gone(pid: int) -> bool:
    """The process no longer runs: absent, or a zombie whose last thread has finished tearing
    it down (a zombie leader with live threads is still exiting, which takes host time)."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("X", "x"):
        return True
    if fields[0] != "Z":
        return False
    try:
        return len(os.listdir(f"/proc/{pid}/task")) <= 1
    except OSError:
        return True


def _coll_kind(kind: int) -> str:
    names = {abi.constant(f"TW_COLL_{n.upper()}"): n for n in (
        "allreduce", "allgather", "reducescatter", "broadcast", "reduce", "send", "recv", "alltoall", "gather",
        "scatter", "p2p", "split", "kernel")}
    return {abi.constant("TW_COLL_P2P"): "send/recv"}.get(kind, names.get(kind, f"op {kind}"))


def _subtrees(procs: dict[int, tuple[str, int]], roots: set[int]) -> set[int]:
    """The roots that exist and all their descendants."""
    children: dict[int, list[int]] = {}
    for pid, (_, ppid) in procs.items():
        children.setdefault(ppid, []).append(pid)
    out: set[int] = set()
    stack = [p for p in roots if p in procs]
    while stack:
        pid = stack.pop()
        if pid not in out:
            out.add(pid)
            stack.extend(children.get(pid, []))
    return out


class RunMonitor:
    """Watches one run directory on behalf of the `emulate` process (the root of the run)."""

    def __init__(self, run_dir: Path, command_pid: int) -> None:
        self.run_dir = run_dir
        self.command_pid = command_pid
        self.known: set[int] = {command_pid}   # every process seen in the run's tree so far
        self.waited_by_caller: set[int] = {command_pid}   # children emulate reaps itself (Popen)
        self.crashes: list[Crash] = []
        self.dead_actor_pids: list[int] = []
        self.outsider_pids: set[int] = set()
        self._seen_crash_files: set[str] = set()
        self._ffi = abi.ffi()
        self._map: mmap.mmap | None = None
        self._table = None
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._coll = None
        self._coll_map: mmap.mmap | None = None
        self.collective_failure: str | None = None

    def _actor_table(self):  # noqa: ANN202 - a cffi tw_actor_table pointer, or None
        if self._table is not None:
            return self._table
        page = self.run_dir / "actors.page"
        size = self._ffi.sizeof("tw_actor_table")
        if not page.exists() or page.stat().st_size < size:
            return None
        with open(page, "r+b") as f:
            self._map = mmap.mmap(f.fileno(), size)
        self._table = self._ffi.from_buffer("tw_actor_table *", self._map)
        return self._table

    def _kick(self, table) -> None:  # noqa: ANN001
        """Wake every waiter to re-evaluate (what a thread's exit does in the shim)."""
        table.generation += 1
        table.epoch += 1
        address = int(self._ffi.cast("uintptr_t", self._ffi.addressof(table, "epoch")))
        self._libc.syscall(SYS_FUTEX, ctypes.c_void_p(address), FUTEX_WAKE, INT_MAX, None, None, 0)

    def _sweep_actors(self, procs: dict[int, tuple[str, int]]) -> set[int]:
        """Frees the slots of processes that are gone; returns the pids that hold slots."""
        table = self._actor_table()
        if table is None:
            return set()
        holders: set[int] = set()
        freed = False
        for i in range(min(int(table.high_water), abi.constant("TW_ACTOR_SLOTS"))):
            slot = table.slots[i]
            pid = int(slot.pid)
            if pid == 0 or slot.state == abi.constant("TW_ACTOR_FREE"):
                continue
            # Dead in the snapshot is confirmed now: a process started since the snapshot is
            # alive and registered, and freeing its slot would hide its waits from the jump rule.
            if slot.tid != 0 and _dead(procs.get(pid, (None, 0))[0]) and _gone(pid):
                slot.state = abi.constant("TW_ACTOR_FREE")
                slot.pid = 0
                freed = True
                if pid not in self.dead_actor_pids:
                    self.dead_actor_pids.append(pid)
                continue
            holders.add(pid)
        if freed:
            self._kick(table)
        return holders

    def _count_outsiders(self, procs: dict[int, tuple[str, int]], holders: set[int]) -> None:
        run = self._run_tree(procs)
        traced = self.run_dir / "proc"
        outsiders = {pid for pid in run if not _dead(procs[pid][0]) and pid not in holders
                     and not (traced / f"{pid}.trace").exists()}
        self.outsider_pids |= outsiders
        table = self._actor_table()
        if table is not None:
            # the jumper reads each listed process's state: no jump while one works
            listed = sorted(outsiders)[:abi.constant("TW_OUTSIDERS")]
            for i in range(abi.constant("TW_OUTSIDERS")):
                pid = listed[i] if i < len(listed) else 0
                if int(table.outsider[i].pid) != pid:
                    table.outsider[i].pid = pid
                    table.outsider[i].probe_host_ns = 0
            table.outsiders = len(outsiders)

    def _run_tree(self, procs: dict[int, tuple[str, int]]) -> set[int]:
        """The command's process tree, with orphans of it that were re-parented to us."""
        self.known = _subtrees(procs, self.known)
        return self.known

    def _reap_orphans(self, procs: dict[int, tuple[str, int]]) -> None:
        """Zombies of the run re-parented to us (the subreaper); the command (and a serving run's
        client) are Popen's to reap."""
        me = os.getpid()
        for pid in self.known - self.waited_by_caller:
            state, ppid = procs.get(pid, (None, 0))
            if ppid == me and state == "Z":
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass

    def _new_crashes(self) -> None:
        folder = self.run_dir / "crash"
        if not folder.is_dir():
            return
        for path in sorted(folder.glob("*.txt")):
            if path.name in self._seen_crash_files:
                continue
            text = path.read_text(errors="replace")
            if "\n" not in text:
                continue   # still being written
            self._seen_crash_files.add(path.name)
            self.crashes.append(Crash(int(path.stem), text.splitlines()[0], text, path))

    def poll(self) -> Crash | None:
        """One supervision pass; returns the first crash once there is one."""
        procs = _processes()
        holders = self._sweep_actors(procs)
        self._count_outsiders(procs, holders)
        self._reap_orphans(procs)
        self._new_crashes()
        if self.collective_failure is None:
            self.collective_failure = self._orphaned_collective()
        return self.crashes[0] if self.crashes else None

    def _collective_page(self):  # noqa: ANN202 - a cffi tw_coll_page pointer, or None
        if self._coll is not None:
            return self._coll
        path = self.run_dir / "collectives.page"
        size = self._ffi.sizeof("tw_coll_page")
        if not path.exists() or path.stat().st_size < size:
            return None
        with open(path, "r+b") as f:
            self._coll_map = mmap.mmap(f.fileno(), size)
        self._coll = self._ffi.from_buffer("tw_coll_page *", self._coll_map)
        return self._coll

    def _orphaned_collective(self) -> str | None:
        """A collective that waits for a participant whose process is gone, described."""
        page = self._collective_page()
        if page is None:
            return None
        comms = {int(c.key): c for c in page.comms if c.key != 0}
        p2p = abi.constant("TW_COLL_P2P")
        for e in page.entries:
            if e.comm_key == 0 or e.arrived >= e.expected:
                continue
            comm = comms.get(int(e.comm_key))
            if comm is None:
                continue
            for index in range(int(e.expected)):
                if int(e.arrived_mask) >> index & 1:
                    continue
                rank = (int(e.root) if index == 0 else int(e.peer)) if e.kind == p2p else index
                pid = int(comm.pid[rank]) if 0 <= rank < len(comm.pid) else 0
                if pid == 0 or not _gone(pid):
                    continue
                arrived = [i for i in range(int(e.expected)) if int(e.arrived_mask) >> i & 1]
                return (f"rank {rank} (pid {pid}) is gone while nccl {_coll_kind(int(e.kind))} "
                        f"#{int(e.op_key) & 0xffffffffffff} on communicator {int(e.comm_key):016x} "
                        f"({int(e.expected)} participants, count {int(e.count)}, dtype {int(e.dtype)}) waits for "
                        f"it; participants that arrived: {arrived}")
        return None

    def run_pids(self) -> list[int]:
        """Live processes of the run's tree."""
        procs = _processes()
        return sorted(pid for pid in self._run_tree(procs) if not _dead(procs[pid][0]))

    def close(self) -> None:
        self._table = self._coll = None
        for mapping in (self._map, self._coll_map):
            if mapping is not None:
                try:
                    mapping.close()
                except BufferError:
                    pass   # a cffi view still holds it; the mapping goes with the process
        self._map = self._coll_map = None
