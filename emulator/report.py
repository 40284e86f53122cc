"""`emulate report DIR`: re-render a run's outputs and print a short summary."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, TextIO

from emulator.outputs import load_run, short_name, write_outputs

log = logging.getLogger(__name__)


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _seconds(s: float) -> str:
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3f} ms"
    return f"{s * 1e6:.1f} µs"


def format_summary(summary: dict[str, Any], top: int = 10) -> str:
    """The human summary printed by `emulate report` (and by `emulate` at the end of a run)."""
    gpu = summary["gpu"]
    lines = [
        f"GPU            {gpu['name'] or gpu['key']} x{gpu['count']}   predictor {summary['predictor'] or '?'}",
        f"virtual time   {_seconds(summary['virtual_time_s'])}",
        f"wall time      {_seconds(summary['wall_time_s'])}",
        f"speedup        {summary['speedup']:.3g}x (virtual / wall)",
    ]
    status = summary.get("exit_status")
    if summary.get("exit_signal"):
        lines.append(f"exit           signal {summary['exit_signal']}")
    elif status is not None:
        lines.append(f"exit           status {status}")
    for p in summary["processes"]:
        if p["exit_status"] is None:
            how = f"signal {p['exit_signal']}" if p["exit_signal"] else "no clean exit"
            lines.append(f"process {p['pid']} (parent {p['ppid']}) crashed: {how}, "
                         f"last record at {_seconds(p['virtual_end_s'])}")
    kernels = summary["kernels"]
    lines.append(f"GPU ops        {kernels['count']} kernels, {_seconds(kernels['gpu_time_s'])} of kernel time")
    if kernels["by_name"]:
        lines.append(f"top {min(top, len(kernels['by_name']))} kernels by time:")
        total = kernels["gpu_time_s"] or 1.0
        for k in kernels["by_name"][:top]:
            lines.append(f"  {100 * k['total_s'] / total:5.1f}%  {_seconds(k['total_s']):>10}  x{k['count']:<7} "
                         f"{short_name(k['name'], 80)}")
    for d in summary["devices"]:
        total_bytes = f" of {_bytes(d['memory_total_bytes'])}" if d["memory_total_bytes"] else ""
        lines.append(f"GPU {d['device']} memory peak {_bytes(d['memory_peak_bytes'])}{total_bytes}")
    waits = summary["waits"]
    lines.append(f"waits          {waits['count']}, clock jumped {_seconds(waits['jumped_s'])} in all")
    if summary["unimplemented"]:
        lines.append("unimplemented calls:")
        for u in summary["unimplemented"]:
            lines.append(f"  {u['count']:>8}  {u['name']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(prog="emulate report", description=__doc__)
    parser.add_argument("run_dir", type=Path, help="a run directory written by emulate")
    parser.add_argument("--top", type=int, default=10, help="kernels to list (default 10)")
    args = parser.parse_args(argv)
    if not (args.run_dir / "proc").is_dir():
        parser.error(f"{args.run_dir}: not a run directory (no proc/)")
    run = load_run(args.run_dir)
    if not run.processes:
        why = f"damaged run directory, no readable trace ({run.unreadable[0]})" if run.unreadable else \
            "no process traces in proc/"
        print(f"emulate report: {args.run_dir}: {why}", file=sys.stderr)
        return 2
    for what in run.unreadable:
        print(f"emulate report: WARNING: skipped {what}", file=sys.stderr)
    summary = write_outputs(args.run_dir, run)
    stream = out or sys.stdout
    stream.write(format_summary(summary, args.top) + "\n")
    stream.write(f"outputs in {args.run_dir}: trace.json summary.json kernels.csv time_breakdown.png "
                 "top_kernels.png\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
