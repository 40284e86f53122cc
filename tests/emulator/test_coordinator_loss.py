"""A lost coordinator never turns predictions into the floor silently: the run ends with the
cause named, or, with --allow-degraded, goes on and says so in the summary and closing line."""

from __future__ import annotations

import sys
from pathlib import Path

WORKLOAD = Path(__file__).resolve().parent.parent / "e2e" / "workloads" / "coordinator_lost.py"
FATAL_EXIT_STATUS = 70   # shim/src/crash.c tw_fatal


def test_lost_coordinator_ends_the_run_with_the_cause(emulate) -> None:  # noqa: ANN001
    run = emulate([sys.executable, str(WORKLOAD)])
    assert "before_loss 1" in run.stdout
    assert "after_loss 1" not in run.stdout, "the process went on with floor predictions"
    assert run.exit_status == FATAL_EXIT_STATUS, run.stderr[-3000:]
    ended = run.summary["ended_by"]
    assert ended["reason"] == "emulation", ended
    assert "predictions unavailable" in ended["cause"], ended
    assert "the run was ended early" in run.stderr
    assert run.summary["floor_predicted"] == []


def test_lost_coordinator_with_allow_degraded_says_so(emulate) -> None:  # noqa: ANN001
    run = emulate([sys.executable, str(WORKLOAD)], extra=["--allow-degraded"])
    assert run.exit_status == 0, run.stderr[-3000:]
    assert "after_loss 1" in run.stdout
    summary = run.summary
    assert summary["allow_degraded"] is True
    assert len(summary["degraded"]) == 1 and "predictions unavailable" in summary["degraded"][0]["cause"]
    assert [f["name"] for f in summary["floor_predicted"]] == ["memset"], summary["floor_predicted"]
    assert "DEGRADED" in run.stderr
