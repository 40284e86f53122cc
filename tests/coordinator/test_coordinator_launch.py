"""Coordinator lifecycle: start errors, clean stop, the persistent cache across restarts, parent death."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from coordinator_helpers import mixed_batch, requires_predictors

from coordinator import launch, wire
from coordinator.client import predict_batch

pytestmark = requires_predictors


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in state


def test_persistent_cache_is_reused_after_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMEWARP_CACHE_DIR", str(tmp_path / "cache"))
    descs, names = mixed_batch()
    fields = [wire.desc_to_fields(d) for d in descs]
    first = launch.start(tmp_path / "run1", "h100", 1, "roofline", {})
    try:
        answers = predict_batch(first.address, fields, names)
        assert first.status()["cache_misses"] == len(descs)
    finally:
        assert first.stop() == 0
    assert list((tmp_path / "cache").glob("h100--*.sqlite"))
    second = launch.start(tmp_path / "run2", "h100", 1, "roofline", {})
    try:
        assert predict_batch(second.address, fields, names) == answers
        status = second.status()
    finally:
        second.stop()
    assert status["cache_loaded_entries"] >= len(descs)
    assert status["cache_hits"] == len(descs) and status["cache_misses"] == 0


def test_stop_leaves_no_process_and_no_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMEWARP_CACHE_DIR", str(tmp_path / "cache"))
    handle = launch.start(tmp_path / "run", "h100", 1, "roofline", {})
    pid = handle.process.pid
    assert handle.address == f"unix:{tmp_path / 'run' / 'coordinator.sock'}"
    assert handle.status()["pid"] == pid
    assert handle.stop() == 0
    assert _gone(pid)
    assert not (tmp_path / "run" / "coordinator.sock").exists()
    assert not (tmp_path / "run" / "coordinator.port").exists()
    assert "stopped:" in (tmp_path / "run" / "coordinator.log").read_text()
    assert handle.stop() == 0          # idempotent


def test_unknown_gpu_fails_with_the_log_tail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMEWARP_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(launch.CoordinatorStartError) as info:
        launch.start(tmp_path / "run", "no-such-gpu", 1, "roofline", {}, timeout_s=20)
    assert "no-such-gpu" in str(info.value)
    assert "coordinator.log" in str(info.value)


def test_coordinator_exits_when_its_parent_dies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMEWARP_CACHE_DIR", str(tmp_path / "cache"))
    script = ("import sys, time; from pathlib import Path; from coordinator import launch; "
              f"h = launch.start(Path({str(tmp_path / 'run')!r}), 'h100', 1, 'roofline', {{}}); "
              "print(h.process.pid, flush=True); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=launch.REPO_ROOT)
    try:
        line = parent.stdout.readline() if parent.stdout else ""
        assert line.strip(), "the parent did not start a coordinator"
        pid = int(line)
        assert not _gone(pid)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    outlived = not _gone(pid)
    if outlived:
        os.kill(pid, 9)
    assert not outlived, f"coordinator {pid} outlived its parent"
