"""The outputs of a run: trace.json, summary.json, kernels.csv and PNG plots, from the records
the shim left in the run directory (docs/outputs.md)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from emulator.outputs.demangle import demangle, short_name
from emulator.outputs.kernels_csv import write_kernels_csv
from emulator.outputs.ops import run_ops
from emulator.outputs.ranks import find_ranks
from emulator.outputs.records import ProcessRecords, RunRecords, load_run
from emulator.outputs.summary import build_summary
from emulator.outputs.trace_json import write_trace

__all__ = ["ProcessRecords", "RunRecords", "demangle", "load_run", "short_name", "write_outputs"]

log = logging.getLogger(__name__)


def write_outputs(run_dir: Path, run: RunRecords | None = None) -> dict[str, Any]:
    """Read every record of the run (unless `run` holds them already) and write trace.json,
    summary.json, kernels.csv, time_breakdown.png, top_kernels.png and, for a serving benchmark,
    serving.png into run_dir. Returns the summary."""
    from emulator.outputs.plots import plot_serving, plot_time_breakdown, plot_top_kernels  # slow to import

    run_dir = Path(run_dir)
    started = time.monotonic()
    run = run if run is not None else load_run(run_dir)
    ops = run_ops(run)
    ranks = find_ranks(run, ops)
    summary = build_summary(run, ops, ranks)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    write_kernels_csv(ops, run_dir / "kernels.csv")
    events = write_trace(run, ops, run_dir / "trace.json", ranks)
    plot_time_breakdown(summary, ops, run_dir / "time_breakdown.png")
    plot_top_kernels(summary, run_dir / "top_kernels.png")
    if summary.get("serving"):
        plot_serving(summary, run, run_dir / "serving.png")
    log.info("outputs of %s: %d records, %d GPU ops, %d trace events in %.2f s", run_dir, run.record_count,
             len(ops), events, time.monotonic() - started)
    return summary
