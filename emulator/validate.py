"""`emulate validate --real TRACE [--gpu G] -- CMD`: how far the emulation is from a real run.

1. Runs CMD emulated with the chosen predictor and matches its GPU ops (kernels.csv) to the real
   trace's by key and order (kernels by demangled name, GEMMs by m/n/k/batch, copies and memsets by
   bytes): the i-th emulated op of a key is paired with the i-th real one.
2. Per-op error of the predictor: median and p90 of |predicted - real| / real, and the kernel
   families that lose the most time.
3. End-to-end error of the workload's own timings: the program prints `TIMING <name> <seconds>`
   lines; the real trace carries the same names as `e2e` rows (scripts/collect_gpu_traces.py
   writes `step_s`; for a profiler JSON put the lines in TRACE.timings.txt beside it).
4. Ablation: the same run with the real durations substituted (the table predictor built from
   the real trace, model "real"). Its end-to-end error is the emulator's own (timeline, clock,
   overheads); the difference to run 1 is the predictor's.

Writes validation.md, validation.json and scatter.png into the output directory.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import re
import sys
import tempfile
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from predictors.traces import read_rows, write_rows

log = logging.getLogger(__name__)

TIMING_LINE = re.compile(r"^TIMING\s+(\S+)\s+([-+0-9.eE]+)\s*$")


@dataclass
class OpErrors:
    matched: int
    unmatched_real: int
    unmatched_emulated: int
    median_abs_rel_error: float
    p90_abs_rel_error: float
    real_total_s: float
    predicted_total_s: float
    worst_families: list[dict[str, object]] = field(default_factory=list)
    models: dict[str, int] = field(default_factory=dict)


@dataclass
class EndToEnd:
    name: str
    real_s: float
    emulated_s: float | None
    ablation_s: float | None

    @property
    def error(self) -> float | None:
        return None if self.emulated_s is None else (self.emulated_s - self.real_s) / self.real_s

    @property
    def ablation_error(self) -> float | None:
        return None if self.ablation_s is None else (self.ablation_s - self.real_s) / self.real_s


@dataclass
class ValidationReport:
    gpu: str
    predictor: str
    ops: OpErrors
    ablation_ops: OpErrors | None
    end_to_end: list[EndToEnd]
    run_dir: Path
    ablation_run_dir: Path | None
    markdown_path: Path
    scatter_path: Path | None
    exit_status: int
    ablation_exit_status: int | None = None


# ---------------------------------------------------------------------------- real trace
class RealTraceError(Exception):
    """The real trace cannot be used: one line for the user (exit status 2)."""


def load_real(real_trace: Path) -> tuple[list[dict[str, object]], dict[str, float]]:
    """(op rows, e2e seconds by name) from a rows file or a torch.profiler chrome trace JSON.
    Raises RealTraceError naming the file and what is wrong with it."""
    if not real_trace.is_file():
        raise RealTraceError(f"--real {real_trace}: no such file")
    try:
        rows, e2e = _parse_real(real_trace)
    except Exception as err:   # any parser's failure (JSON, zstd, parquet, a row's fields) is the file's
        raise RealTraceError(f"--real {real_trace}: cannot read it as a real trace ({type(err).__name__}: "
                             f"{str(err).splitlines()[0] if str(err) else 'no detail'})") from None
    if not rows:
        raise RealTraceError(f"--real {real_trace}: holds no GPU ops")
    return rows, e2e


def _parse_real(real_trace: Path) -> tuple[list[dict[str, object]], dict[str, float]]:
    name = real_trace.name
    if name.endswith((".json", ".json.gz")):
        from predictors.profiler_trace import rows_from_chrome_trace

        raw = gzip.decompress(real_trace.read_bytes()) if name.endswith(".gz") else real_trace.read_bytes()
        rows = rows_from_chrome_trace(json.loads(raw), "", real_trace.stem)
    else:
        rows = read_rows(real_trace)
    e2e = {str(r["name"]): int(r["duration_ns"]) / 1e9 for r in rows if r.get("kind") == "e2e"}  # type: ignore[call-overload]
    sidecar = real_trace.with_name(real_trace.name + ".timings.txt")
    if sidecar.exists():
        e2e.update(parse_timings(sidecar.read_text()))
    return [r for r in rows if r.get("kind") != "e2e"], e2e


def parse_timings(text: str) -> dict[str, float]:
    """`TIMING <name> <seconds>` lines; a name seen twice keeps its last value."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        match = TIMING_LINE.match(line.strip())
        if match:
            out[match.group(1)] = float(match.group(2))
    return out


# ---------------------------------------------------------------------------- matching
def _norm_name(name: str) -> str:
    return re.sub(r"\s+", "", name)


def real_key(row: dict[str, object]) -> tuple[object, ...]:
    kind = str(row["kind"])
    dims = list(row.get("dims") or [0] * 8)  # type: ignore[call-overload]
    if kind == "gemm":
        return ("gemm", *[int(d) for d in dims[:3]], max(int(dims[3]), 1))
    if kind in ("memcpy", "memset"):
        return (kind, int(row.get("bytes") or 0))  # type: ignore[call-overload]
    if kind == "kernel":
        from predictors.descriptors import demangle

        return ("kernel", _norm_name(demangle(str(row["name"]))))
    return (kind,)


def emulated_key(row: dict[str, object]) -> tuple[object, ...]:
    kind = str(row["kind"])
    if kind == "gemm":
        return ("gemm", int(row["m"]), int(row["n"]), int(row["k"]), max(int(row["batch"]), 1))  # type: ignore[call-overload]
    if kind in ("memcpy", "memset"):
        return (kind, int(row.get("bytes") or 0))  # type: ignore[call-overload]
    if kind == "kernel":
        return ("kernel", _norm_name(str(row["name"])))
    return (kind,)


def read_kernels_csv(run_dir: Path) -> list[dict[str, object]]:
    import pandas as pd

    path = run_dir / "kernels.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path}: the emulated run left no kernels.csv")
    frame = pd.read_csv(path, keep_default_na=False)
    if {"start_us"} <= set(frame.columns):
        frame = frame.sort_values(["start_us"], kind="stable")
    return frame.to_dict(orient="records")


def match_ops(real: list[dict[str, object]], emulated: list[dict[str, object]]
              ) -> tuple[list[tuple[dict[str, object], dict[str, object]]], int, int]:
    """Pairs (real, emulated) by key and order; also the counts left unmatched on each side."""
    by_key: dict[tuple[object, ...], list[dict[str, object]]] = defaultdict(list)
    for row in real:
        by_key[real_key(row)].append(row)
    taken: dict[tuple[object, ...], int] = defaultdict(int)
    pairs = []
    unmatched_emulated = 0
    for row in emulated:
        if str(row.get("kind")) not in ("kernel", "gemm", "memcpy", "memset", "conv", "attention", "fft",
                                        "solver", "collective", "library"):
            continue
        key = emulated_key(row)
        index = taken[key]
        candidates = by_key.get(key, [])
        if index < len(candidates):
            pairs.append((candidates[index], row))
            taken[key] += 1
        else:
            unmatched_emulated += 1
    unmatched_real = sum(len(v) for v in by_key.values()) - sum(taken.values())
    return pairs, unmatched_real, unmatched_emulated


def family(name: str) -> str:
    from predictors.features import parse_kernel_name

    return parse_kernel_name(name).family


def op_errors(pairs: list[tuple[dict[str, object], dict[str, object]]], unmatched_real: int,
              unmatched_emulated: int, worst: int = 5) -> OpErrors:
    real_ns = np.array([float(r["duration_ns"]) for r, _ in pairs])  # type: ignore[arg-type]
    pred_ns = np.array([float(e["duration_us"]) * 1000.0 for _, e in pairs])  # type: ignore[arg-type]
    if len(pairs):
        err = np.abs(pred_ns - real_ns) / np.maximum(real_ns, 1.0)
        median, p90 = float(np.median(err)), float(np.percentile(err, 90))
    else:
        median = p90 = float("nan")
    lost: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    models: dict[str, int] = defaultdict(int)
    for (real, emu), r_ns, p_ns in zip(pairs, real_ns, pred_ns, strict=True):
        key = family(str(emu.get("name") or real.get("name"))) if emu.get("kind") == "kernel" else str(emu["kind"])
        entry = lost[key]
        entry[0] += abs(p_ns - r_ns)
        entry[1] += r_ns
        entry[2] += p_ns
        entry[3] += 1
        models[str(emu.get("model", ""))] += 1
    ranked = sorted(lost.items(), key=lambda kv: -kv[1][0])[:worst]
    worst_families = [{"family": k, "count": int(v[3]), "real_us": v[1] / 1e3, "predicted_us": v[2] / 1e3,
                       "abs_error_us": v[0] / 1e3} for k, v in ranked]
    return OpErrors(len(pairs), unmatched_real, unmatched_emulated, median, p90, float(real_ns.sum()) / 1e9,
                    float(pred_ns.sum()) / 1e9, worst_families, dict(models))


# ---------------------------------------------------------------------------- outputs
def scatter_png(pairs: list[tuple[dict[str, object], dict[str, object]]], path: Path, title: str) -> Path | None:
    if not pairs:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real_us = np.array([float(r["duration_ns"]) / 1e3 for r, _ in pairs])  # type: ignore[arg-type]
    pred_us = np.array([float(e["duration_us"]) for _, e in pairs])  # type: ignore[arg-type]
    fig, ax = plt.subplots(figsize=(5.5, 5))
    kinds = sorted({str(e["kind"]) for _, e in pairs})
    for kind in kinds:
        mask = np.array([str(e["kind"]) == kind for _, e in pairs])
        ax.scatter(real_us[mask], pred_us[mask], s=10, alpha=0.6, label=kind)
    low = max(min(real_us.min(), pred_us.min()) * 0.8, 1e-3)
    high = max(real_us.max(), pred_us.max()) * 1.2
    ax.plot([low, high], [low, high], "k--", linewidth=0.8, label="exact")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("real duration (us)")
    ax.set_ylabel("predicted duration (us)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _pct(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value * 100:+.1f}%"


def _abs_pct(value: float) -> str:
    return "-" if value != value else f"{value * 100:.1f}%"


def render_markdown(report: ValidationReport, command: list[str], real_trace: Path) -> str:
    lines = [f"# Validation: {' '.join(command)}", "",
             f"GPU `{report.gpu}`, predictor `{report.predictor}`, real trace `{real_trace}`.", "",
             "## Per-op error", "",
             "| run | matched | unmatched real / emulated | median abs err | p90 abs err | real total | predicted total |",
             "|---|---|---|---|---|---|---|"]
    for label, ops in (("predicted", report.ops), ("ablation (real durations)", report.ablation_ops)):
        if ops is None:
            continue
        lines.append(f"| {label} | {ops.matched} | {ops.unmatched_real} / {ops.unmatched_emulated} | "
                     f"{_abs_pct(ops.median_abs_rel_error)} | {_abs_pct(ops.p90_abs_rel_error)} | "
                     f"{ops.real_total_s * 1e3:.3f} ms | {ops.predicted_total_s * 1e3:.3f} ms |")
    lines += ["", "## Families losing the most time (predicted run)", "",
              "| family | count | real us | predicted us | abs error us |", "|---|---|---|---|---|"]
    for fam in report.ops.worst_families:
        lines.append(f"| `{fam['family']}` | {fam['count']} | {fam['real_us']:.1f} | {fam['predicted_us']:.1f} | "
                     f"{fam['abs_error_us']:.1f} |")
    lines += ["", "## End to end (the workload's own timings)", "",
              "| timing | real | emulated | error | ablation | ablation error (emulator) |", "|---|---|---|---|---|---|"]
    for e2e in report.end_to_end:
        emulated = "-" if e2e.emulated_s is None else f"{e2e.emulated_s * 1e3:.3f} ms"
        ablation = "-" if e2e.ablation_s is None else f"{e2e.ablation_s * 1e3:.3f} ms"
        lines.append(f"| {e2e.name} | {e2e.real_s * 1e3:.3f} ms | {emulated} | {_pct(e2e.error)} | {ablation} | "
                     f"{_pct(e2e.ablation_error)} |")
    if not report.end_to_end:
        lines.append("| (no timings: print `TIMING <name> <seconds>` in the workload) | | | | | |")
    lines += ["", f"Run: `{report.run_dir}`" + (f", ablation run: `{report.ablation_run_dir}`"
                                               if report.ablation_run_dir else ""), ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- running
def _run_capturing_stdout(cmd: list[str], **kwargs: object) -> tuple[object, str]:
    """run_command with the program's stdout (fd 1, inherited) captured to read its TIMING lines."""
    from emulator.run import run_command

    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 1)
        try:
            result = run_command(cmd, **kwargs)  # type: ignore[arg-type]
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
        capture.seek(0)
        text = capture.read().decode(errors="replace")
    sys.stdout.write(text)
    return result, text


def validate(real_trace: Path, cmd: list[str], gpu: str, out_dir: Path, predictor: str = "auto",
             predictor_options: dict | None = None, ablation: bool = True, gpus: int = 1) -> ValidationReport:
    out_dir.mkdir(parents=True, exist_ok=True)
    real_rows, real_e2e = load_real(real_trace)
    # out_dir is validate's own: its runs replace the last validation's (never a live one's)
    result, stdout = _run_capturing_stdout(cmd, gpu=gpu, gpus=gpus, predictor=predictor, out=out_dir / "run",
                                           predictor_options=predictor_options, force=True)
    emulated = read_kernels_csv(result.run_dir)  # type: ignore[attr-defined]
    pairs, unmatched_real, unmatched_emulated = match_ops(real_rows, emulated)
    ops = op_errors(pairs, unmatched_real, unmatched_emulated)
    timings = parse_timings(stdout)

    ablation_ops = None
    ablation_timings: dict[str, float] = {}
    ablation_dir = None
    ablation_status = None
    if ablation:
        table_path = write_rows(real_rows, out_dir / "real_rows.jsonl.zst")
        ab_result, ab_stdout = _run_capturing_stdout(
            cmd, gpu=gpu, gpus=gpus, predictor="table", out=out_dir / "ablation",
            predictor_options={"table_path": str(table_path.resolve()), "label": "real"}, force=True)
        ablation_dir = ab_result.run_dir  # type: ignore[attr-defined]
        ablation_status = ab_result.exit_status  # type: ignore[attr-defined]
        ab_pairs, ab_real, ab_emu = match_ops(real_rows, read_kernels_csv(ablation_dir))
        ablation_ops = op_errors(ab_pairs, ab_real, ab_emu)
        ablation_timings = parse_timings(ab_stdout)

    end_to_end = [EndToEnd(name, real_s, timings.get(name), ablation_timings.get(name) if ablation else None)
                  for name, real_s in sorted(real_e2e.items())]
    spec_key = result.summary.get("gpu", {}).get("key", gpu) if result.summary else gpu  # type: ignore[attr-defined]
    report = ValidationReport(gpu=str(spec_key), predictor=predictor, ops=ops, ablation_ops=ablation_ops,
                              end_to_end=end_to_end, run_dir=result.run_dir, ablation_run_dir=ablation_dir,  # type: ignore[attr-defined]
                              markdown_path=out_dir / "validation.md", scatter_path=None,
                              exit_status=result.exit_status, ablation_exit_status=ablation_status)  # type: ignore[attr-defined]
    report.scatter_path = scatter_png(pairs, out_dir / "scatter.png", f"{report.gpu}: predicted vs real")
    report.markdown_path.write_text(render_markdown(report, cmd, real_trace))
    (out_dir / "validation.json").write_text(json.dumps(_jsonable(report), indent=2))
    return report


def _jsonable(report: ValidationReport) -> dict[str, object]:
    data = asdict(report)
    data["end_to_end"] = [{**asdict(e), "error": e.error, "ablation_error": e.ablation_error}
                          for e in report.end_to_end]
    return json.loads(json.dumps(data, default=str))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        sys.stderr.write("usage: emulate validate --real TRACE [--gpu G] [--out DIR] -- CMD ...\n")
        return 2
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="emulate validate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", required=True, type=Path, help="real trace (rows .jsonl.zst/.parquet or profiler JSON)")
    parser.add_argument("--gpu", default="h100")
    parser.add_argument("--gpus", type=int, default=1)
    parser.add_argument("--predictor", default="auto")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--no-ablation", action="store_true")
    args = parser.parse_args(argv[:split])
    cmd = argv[split + 1:]
    if not cmd:
        parser.error("no command after --")
    from coordinator.launch import CoordinatorStartError
    from emulator.run_dir import RunDirError
    from predictors import catalog
    from shim.build import ShimBuildError

    out = args.out or Path("runs") / f"validate-{args.gpu}"
    try:
        catalog.get_spec(args.gpu)
        report = validate(args.real, cmd, args.gpu, out, predictor=args.predictor, ablation=not args.no_ablation,
                          gpus=args.gpus)
    except (catalog.UnknownGpuError, RealTraceError, RunDirError, ShimBuildError) as err:
        sys.stderr.write(f"emulate validate: {err}\n")
        return 2
    except CoordinatorStartError as err:   # not the user's error, but no traceback either
        sys.stderr.write(f"emulate validate: {err}\n")
        return 1
    sys.stdout.write(report.markdown_path.read_text())
    return 0 if report.exit_status == 0 else report.exit_status
