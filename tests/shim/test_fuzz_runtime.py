"""Random sequences of CUDA runtime calls (streams, events, allocations, copies, memsets, host
functions, stream capture and graphs, invalid handles, sizes and directions) run by a C harness
(tests/shim/cuda/fuzz_harness.c) under the shim. Every sequence must end (no crash, no hang),
and every call must return what the CUDA Runtime API documents for it, given the state the
calls before it left: a small model of that state says which statuses are allowed.

CI runs a derandomised search of 300 sequences; `pytest -m slow` runs 10,000 random ones."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

CUDA_DIR = Path(__file__).resolve().parent / "cuda"
WHEEL = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / \
    "site-packages" / "nvidia" / "cu13"

# driver_types.h
OK, INVALID_VALUE, ALLOCATION, DIRECTION = 0, 1, 2, 21
INVALID_DEVICE, ILLEGAL_STATE, INVALID_HANDLE, NOT_READY = 101, 401, 400, 600
UNSUPPORTED, INVALIDATED, MERGE, UNMATCHED, UNJOINED, IMPLICIT = 900, 901, 902, 903, 904, 906
RELAXED = 2
LEGACY = -1
SLOTS = 4
SIZES = [0, 1, 4096, 1 << 20, 8 << 20, 200 << 30]  # backed, unbacked, past an 80 GB card
DEVICE_BYTES = 80 << 30


@dataclass
class Capture:
    mode: int
    origin: int
    streams: set[int]
    invalidated: bool = False


@dataclass
class Model:
    streams: dict[int, bool] = field(default_factory=dict)         # slot -> non-blocking
    events: dict[int, str] = field(default_factory=dict)           # slot -> "new" | "recorded" | "captured"
    event_capture: dict[int, int] = field(default_factory=dict)    # slot -> capture id it was recorded in
    buffers: dict[int, int] = field(default_factory=dict)          # slot -> bytes
    pending_free: set[int] = field(default_factory=set)
    graphs: set[int] = field(default_factory=set)
    execs: set[int] = field(default_factory=set)
    captures: dict[int, Capture] = field(default_factory=dict)
    next_capture: int = 1

    def stream(self, slot: int) -> int:
        return slot if slot in self.streams else LEGACY

    def capture_of(self, slot: int) -> int | None:
        s = self.stream(slot)
        return next((cid for cid, c in self.captures.items() if s in c.streams), None)

    def blocking_capture(self) -> int | None:
        """A capture holding a blocking stream: the legacy stream cannot be used meanwhile."""
        return next((cid for cid, c in self.captures.items()
                     if any(not self.streams.get(s, False) for s in c.streams)), None)

    # -- the capture rules, as graph.c states them; each returns the status or None (allowed)
    def unsafe(self) -> int | None:
        strict = [c for c in self.captures.values() if c.mode != RELAXED]
        for c in strict:
            c.invalidated = True
        return UNSUPPORTED if strict else None

    def enqueue(self, slot: int) -> int | None:
        cid = self.capture_of(slot)
        if cid is not None:
            return INVALIDATED if self.captures[cid].invalidated else None
        if self.stream(slot) == LEGACY and (blocker := self.blocking_capture()) is not None:
            self.captures[blocker].invalidated = True
            return IMPLICIT
        return None

    def sync(self, slot: int) -> int | None:
        cid = self.capture_of(slot)
        if cid is not None:
            self.captures[cid].invalidated = True
            return UNSUPPORTED
        return self.unsafe() or self.enqueue(slot)


def allowed(m: Model, op: tuple) -> set[int]:
    """The statuses the documentation allows for op in state m (updates m's capture state as the
    call would; the caller applies the call's own effects after it ran)."""
    name, a, b, c, d = op
    buf = lambda slot: slot in m.buffers and slot not in m.pending_free  # noqa: E731
    fits = lambda slot, n: n == 0 or (buf(slot) and n <= m.buffers[slot])  # noqa: E731
    if name == "stream_create":
        return {OK} if b in (0, 1) else {INVALID_VALUE}
    if name == "stream_destroy":
        return {OK} if a in m.streams else {INVALID_HANDLE}
    if name in ("stream_sync", "stream_query"):
        rule = m.sync(a)
        return {rule} if rule else ({OK} if name == "stream_sync" else {OK, NOT_READY})
    if name == "stream_is_capturing":
        return {IMPLICIT} if m.stream(a) == LEGACY and m.blocking_capture() is not None else {OK}
    if name == "event_create":
        return {OK}
    if name == "event_null_record":
        return {INVALID_HANDLE}
    if name == "event_record":
        if a not in m.events:
            return {INVALID_HANDLE}
        rule = m.enqueue(b)
        return {rule} if rule else {OK}
    if name == "stream_wait":
        if b not in m.events:
            return {INVALID_HANDLE}
        rule = m.enqueue(a)
        if rule:
            return {rule}
        source, into = m.event_capture.get(b), m.capture_of(a)
        if source in m.captures and source != into:
            if into is not None:  # two captures would merge
                m.captures[into].invalidated = m.captures[source].invalidated = True
                return {MERGE}
            if m.stream(a) == LEGACY:  # the legacy stream cannot join a capture
                m.captures[source].invalidated = True
                return {UNSUPPORTED}
        return {OK}
    if name in ("event_sync", "event_query"):
        if a not in m.events:
            return {INVALID_HANDLE}
        cid = m.event_capture.get(a)
        if cid in m.captures:
            m.captures[cid].invalidated = True
            return {UNSUPPORTED}
        rule = m.unsafe()
        return {rule} if rule else ({OK} if name == "event_sync" else {OK, NOT_READY})
    if name == "event_elapsed":
        if a not in m.events or b not in m.events:
            return {INVALID_VALUE, INVALID_HANDLE}
        if m.events[a] != "recorded" or m.events[b] != "recorded":
            return {INVALID_HANDLE}  # never recorded outside a capture
        return {OK, NOT_READY}
    if name == "host_func":
        rule = m.enqueue(a)
        return {rule} if rule else {OK}
    if name == "device_sync":
        rule = m.unsafe()
        for cap in m.captures.values():
            cap.invalidated = True
        return {UNSUPPORTED} if rule or m.captures else {OK}
    if name == "set_device":
        return {OK} if a == 0 else {INVALID_DEVICE}
    if name in ("malloc", "malloc_null", "free_host_pointer"):
        rule = m.unsafe()
        if rule:
            return {rule}
        if name == "malloc":
            return {ALLOCATION} if c > DEVICE_BYTES else {OK}
        return {INVALID_VALUE}
    if name == "free":
        rule = m.unsafe()
        if rule:
            return {rule}
        return {INVALID_VALUE} if a in m.pending_free else {OK}
    if name == "malloc_async":
        rule = m.enqueue(b)
        return {rule} if rule else ({ALLOCATION} if c > DEVICE_BYTES else {OK})
    if name == "free_async":
        if a not in m.buffers:
            return {OK}
        if a in m.pending_free:
            return {INVALID_VALUE}
        rule = m.enqueue(b)
        return {rule} if rule else {OK}
    if name == "memcpy":
        if not 0 <= d <= 4:
            return {DIRECTION}
        if c and not (fits(a, c) and fits(b, c)):
            return {INVALID_VALUE}
        rule = m.sync(LEGACY)
        return {rule} if rule else {OK}
    if name == "memcpy_async":
        if c and not (fits(a, c) and fits(b, c)):
            return {INVALID_VALUE}
        rule = m.enqueue(d)
        return {rule} if rule else {OK}
    if name in ("memcpy_d2h", "memcpy_h2d", "memset"):
        if c and not fits(a, c):
            return {INVALID_VALUE}
        rule = m.sync(LEGACY)
        return {rule} if rule else {OK}
    if name == "memcpy_null":
        return {INVALID_VALUE}
    if name == "memset_async":
        if c and not fits(a, c):
            return {INVALID_VALUE}
        rule = m.enqueue(b)
        return {rule} if rule else {OK}
    if name == "begin_capture":
        if m.stream(a) == LEGACY:
            return {UNSUPPORTED}
        return {ILLEGAL_STATE} if m.capture_of(a) is not None else {OK}
    if name == "end_capture":
        cid = m.capture_of(a)
        if cid is None:
            return {ILLEGAL_STATE}
        cap = m.captures[cid]
        if cap.origin != m.stream(a):
            return {ILLEGAL_STATE, UNMATCHED}
        if cap.invalidated:
            return {INVALIDATED}
        return {OK, UNJOINED} if len(cap.streams) > 1 else {OK}
    if name == "instantiate":
        return {OK} if a in m.graphs else {INVALID_VALUE}
    if name == "graph_launch":
        if a not in m.execs:
            return {INVALID_VALUE, INVALID_HANDLE}
        rule = m.enqueue(b)
        return {rule} if rule else {OK}
    if name == "graph_destroy":
        return {OK} if a in m.graphs else {INVALID_VALUE}
    raise AssertionError(f"unknown op {name}")


def apply(m: Model, op: tuple, status: int) -> None:
    """The effect of a call that returned `status` on the model."""
    name, a, b, c, d = op
    if name == "stream_create" and status == OK:
        m.streams[a] = b == 1
    elif name == "stream_destroy" and status == OK:
        m.streams.pop(a, None)
    elif name == "event_create":
        m.events[a] = "new"
        m.event_capture.pop(a, None)
    elif name == "event_record" and status == OK:
        cid = m.capture_of(b)
        if cid is not None:
            m.event_capture[a] = cid
        else:
            m.events[a] = "recorded"
            m.event_capture.pop(a, None)
    elif name == "stream_wait" and status == OK:
        cid = m.event_capture.get(b)
        if cid in m.captures and m.capture_of(a) is None:
            m.captures[cid].streams.add(m.stream(a))  # a fork: the stream joins the capture
    elif name in ("malloc", "malloc_async") and status == ALLOCATION:
        m.buffers.pop(a, None)  # a failed allocation writes NULL
    elif name in ("malloc", "malloc_async") and status == OK:
        m.buffers[a] = c
        m.pending_free.discard(a)
        if c == 0:
            m.buffers.pop(a, None)  # a zero-byte allocation is a NULL pointer
    elif name == "free" and status == OK:
        m.buffers.pop(a, None)
        m.pending_free.discard(a)
    elif name == "free_async" and status == OK:
        m.buffers.pop(a, None)  # the harness forgets the pointer
    elif name == "begin_capture" and status == OK:
        m.captures[m.next_capture] = Capture(b, m.stream(a), {m.stream(a)})
        m.next_capture += 1
    elif name == "end_capture" and status in (OK, INVALIDATED, UNJOINED):
        cid = m.capture_of(a)
        m.captures.pop(cid, None)
        if status == OK:
            m.graphs.add(b)
        else:
            m.graphs.discard(b)
    elif name == "instantiate" and status == OK:
        m.execs.add(b)
    elif name == "graph_destroy" and status == OK:
        m.graphs.discard(a)


slot = st.integers(0, SLOTS - 1)
stream_slot = st.integers(LEGACY, SLOTS - 1)
size = st.sampled_from(SIZES)
copy_size = st.sampled_from([0, 16, 4096, 1 << 20, 9 << 20])
OPS = st.one_of(
    st.tuples(st.just("stream_create"), slot, st.sampled_from([0, 1, 4]), st.just(0), st.just(0)),
    st.tuples(st.just("stream_destroy"), slot, st.just(0), st.just(0), st.just(0)),
    st.tuples(st.sampled_from(["stream_sync", "stream_query", "stream_is_capturing", "host_func"]), stream_slot,
              st.just(0), st.just(0), st.just(0)),
    st.tuples(st.just("event_create"), slot, st.just(0), st.just(0), st.just(0)),
    st.tuples(st.sampled_from(["event_record"]), slot, stream_slot, st.just(0), st.just(0)),
    st.tuples(st.sampled_from(["stream_wait"]), stream_slot, slot, st.just(0), st.just(0)),
    st.tuples(st.sampled_from(["event_sync", "event_query"]), slot, st.just(0), st.just(0), st.just(0)),
    st.tuples(st.just("event_elapsed"), slot, slot, st.just(0), st.just(0)),
    st.tuples(st.sampled_from(["device_sync", "event_null_record", "malloc_null", "free_host_pointer",
                               "memcpy_null"]), st.just(0), st.just(0), st.just(0), st.just(0)),
    st.tuples(st.just("set_device"), st.sampled_from([0, 1, 7, -1]), st.just(0), st.just(0), st.just(0)),
    st.tuples(st.just("malloc"), slot, st.just(0), size, st.just(0)),
    st.tuples(st.just("malloc_async"), slot, stream_slot, size, st.just(0)),
    st.tuples(st.just("free"), slot, st.just(0), st.just(0), st.just(0)),
    st.tuples(st.just("free_async"), slot, stream_slot, st.just(0), st.just(0)),
    st.tuples(st.just("memcpy"), slot, slot, copy_size, st.sampled_from([0, 1, 2, 3, 4, 9])),
    st.tuples(st.just("memcpy_async"), slot, slot, copy_size, stream_slot),
    st.tuples(st.sampled_from(["memcpy_d2h", "memcpy_h2d"]), slot, st.just(0),
              st.sampled_from([0, 16, 4096, 1 << 16]), st.just(0)),  # the harness's host buffer: 64 KiB
    st.tuples(st.just("memset"), slot, st.just(0), copy_size, st.just(0)),
    st.tuples(st.just("memset_async"), slot, stream_slot, copy_size, st.just(0)),
    st.tuples(st.just("begin_capture"), stream_slot, st.integers(0, 2), st.just(0), st.just(0)),
    st.tuples(st.just("end_capture"), stream_slot, slot, st.just(0), st.just(0)),
    st.tuples(st.just("instantiate"), slot, slot, st.just(0), st.just(0)),
    st.tuples(st.just("graph_launch"), slot, stream_slot, st.just(0), st.just(0)),
    st.tuples(st.just("graph_destroy"), slot, st.just(0), st.just(0), st.just(0)),
)


@pytest.fixture(scope="session")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exe = tmp_path_factory.mktemp("fuzz") / "fuzz_harness"
    subprocess.run(["cc", "-std=gnu11", "-O1", "-Wall", "-Wextra", "-Werror", f"-I{WHEEL / 'include'}", "-o",
                    str(exe), str(CUDA_DIR / "fuzz_harness.c"), f"-L{WHEEL / 'lib'}", "-l:libcudart.so.13"],
                   check=True, capture_output=True, text=True)
    return exe


def defined(m: Model, op: tuple) -> bool:
    """Leave out what CUDA leaves undefined: destroying a stream that is capturing, and
    (re)creating the handle of a slot a capture holds."""
    name, a = op[0], op[1]
    if name in ("stream_destroy", "stream_create"):
        return m.capture_of(a) is None or m.stream(a) == LEGACY
    return True


def run_sequence(harness: Path, shim: Path, ops: list[tuple]) -> None:
    model = Model()
    kept = []
    for op in ops:  # a dry pass drops undefined calls given the states the model can foresee
        if defined(model, op):
            kept.append(op)
            apply(model, op, min(allowed(model, op)))
    script = "".join(f"{op[0]} {op[1]} {op[2]} {op[3]} {op[4]}\n" for op in kept)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEWARP_")}
    env.update(LD_PRELOAD=str(shim), TIMEWARP_LOG_LEVEL="0", TIMEWARP_DEADLOCK_S="0")
    proc = subprocess.run([str(harness)], input=script, capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, f"harness died ({proc.returncode}) on:\n{script}\n{proc.stderr[-2000:]}"
    lines = proc.stdout.splitlines()
    assert lines and lines[-1].startswith("end "), f"harness did not finish:\n{script}\n{proc.stdout[-2000:]}"
    model = Model()
    for line, op in zip(lines[:-1], kept, strict=True):
        status = int(line.split()[2])
        want = allowed(model, op)
        assert status in want, f"{op} returned {status}, documented {sorted(want)}; sequence:\n{script}"
        apply(model, op, status)


SEQUENCES = st.lists(OPS, min_size=1, max_size=40)


@settings(max_examples=300, derandomize=True, deadline=None, database=None, phases=[Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(ops=SEQUENCES)
def test_random_call_sequences(harness: Path, shim_lib: Path, ops: list[tuple]) -> None:
    run_sequence(harness, shim_lib, ops)


@pytest.mark.slow
@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=SEQUENCES)
def test_random_call_sequences_long(harness: Path, shim_lib: Path, ops: list[tuple]) -> None:
    run_sequence(harness, shim_lib, ops)
