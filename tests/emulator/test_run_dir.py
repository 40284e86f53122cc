"""Run directories (emulator/run_dir.py): every run gets its own, --out holding files is refused
unless --force, and no run touches a live run's directory, even with --force."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from timewarp_testing import emulate_cli

from emulator import run_dir
from emulator.run_dir import RunDirError, claim


def test_runs_started_in_the_same_second_get_their_own_directories(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    frozen = datetime.datetime(2026, 12, 7, 13, 0, 0)

    class FrozenClock:
        @staticmethod
        def now() -> datetime.datetime:
            return frozen

    monkeypatch.setattr(run_dir._dt, "datetime", FrozenClock)
    monkeypatch.chdir(tmp_path)
    first, first_lock = claim(None, "h100")
    second, second_lock = claim(None, "h100")
    assert first == Path("runs/20261207-130000-h100")
    assert second == Path("runs/20261207-130000-h100-2")
    first_lock.release()
    second_lock.release()


def test_out_holding_files_is_refused_without_force(tmp_path: Path) -> None:
    out = tmp_path / "results"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    proc = emulate_cli("--out", str(out), "--", "true")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "holds files" in lines[0] and "--force" in lines[0], proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]   # nothing written there
    # --force takes it (a previous run's state is replaced as the run starts)
    taken, lock = claim(out, "h100", force=True)
    assert taken == out
    lock.release()


def test_out_that_is_a_file_is_one_line_and_status_2(tmp_path: Path) -> None:
    out = tmp_path / "file"
    out.write_text("x")
    proc = emulate_cli("--out", str(out), "--", "true")
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "not a directory" in proc.stderr and "Traceback" not in proc.stderr


def test_a_live_runs_directory_is_refused_even_with_force(tmp_path: Path) -> None:
    out = tmp_path / "live"
    _, lock = claim(out, "h100")
    (out / "coordinator.sock").write_text("")    # stands for what a live run holds there
    proc = emulate_cli("--out", str(out), "--force", "--", "true")
    assert proc.returncode == 2, proc.stderr
    assert "a live run uses it" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert (out / "coordinator.sock").exists()
    # a second claim of the same directory in this process is refused as well
    with pytest.raises(RunDirError, match="live run"):
        claim(out, "h100", force=True)
    lock.release()
    taken, lock = claim(out, "h100", force=True)   # once the run ended, --force may reuse it
    assert taken == out
    lock.release()
