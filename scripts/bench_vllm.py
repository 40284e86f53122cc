"""vLLM offline inference under emulate, and its prefill and decode step times.

    python scripts/bench_vllm.py --model tiny --out runs/vllm-tiny
    python scripts/bench_vllm.py --model llama-3.1-8b --out runs/vllm-8b --prompts 8 --max-tokens 32

Runs tests/e2e/workloads/vllm_offline.py (unmodified vLLM, dummy weights, token-id prompts of a
fixed length, ignore_eos) under `emulate`, then derives the engine steps of `generate()` from
the run's kernels.csv and trace.json (method in docs/vllm.md) and prints one JSON object.
The vLLM interpreter is --python, else $TIMEWARP_VLLM_PYTHON, else this one.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import json
import logging
import os
import re
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WORKLOAD = REPO / "tests" / "e2e" / "workloads" / "vllm_offline.py"
COMPUTE_KINDS = {"kernel", "gemm", "attention", "conv", "collective"}
SLEEP_REASON = 2  # TW_WAIT_SLEEP: a sleep is not a wait on the GPU
_RESULT_FIELD = re.compile(r"(\w+)=(\S+)")

log = logging.getLogger("bench_vllm")


@dataclass
class Step:
    """GPU work issued by the engine between two of its host waits on the GPU."""

    index: int
    ops: int
    compute_ops: int
    graph_replays: int
    start_us: float
    end_us: float
    span_us: float   # first op start to last op end on the virtual timeline
    busy_us: float   # union of the ops' [start, end] intervals: time the GPU had work


@dataclass
class StepReport:
    engine_pid: int
    steps: list[Step] = field(default_factory=list)

    @property
    def prefill(self) -> Step | None:
        return self.steps[0] if self.steps else None

    @property
    def decode(self) -> list[Step]:
        return self.steps[1:]

    def summary(self) -> dict[str, object]:
        dec = self.decode
        out: dict[str, object] = {"engine_pid": self.engine_pid, "steps": len(self.steps),
                                  "decode_steps": len(dec)}
        if self.prefill:
            out["prefill_span_ms"] = self.prefill.span_us / 1e3
            out["prefill_busy_ms"] = self.prefill.busy_us / 1e3
        if dec:
            out["decode_span_ms_median"] = statistics.median(s.span_us for s in dec) / 1e3
            out["decode_busy_ms_median"] = statistics.median(s.busy_us for s in dec) / 1e3
            out["decode_graph_steps"] = sum(1 for s in dec if s.graph_replays)
        return out


def _union_us(intervals: list[tuple[float, float]]) -> float:
    total, cur_s, cur_e = 0.0, None, None
    for s, e in sorted(intervals):
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s  # type: ignore[operator]
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        total += cur_e - cur_s  # type: ignore[operator]
    return total


def engine_steps(run_dir: Path, begin_ns: int, end_ns: int, decode_steps: int) -> StepReport:
    """Split the GPU ops issued during [begin_ns, end_ns] (virtual CLOCK_MONOTONIC, as the
    workload printed them) into engine steps at the engine thread's host waits on the GPU.
    The engine's last `decode_steps` groups are the decode steps and the group before them the
    prefill (the window only checks that the engine's timeline and the workload's agree)."""
    trace = json.loads((run_dir / "trace.json").read_text())
    t0_ns = int(trace.get("otherData", {}).get("time_origin_virtual_ns", 0))
    lo_us, hi_us = (begin_ns - t0_ns) / 1e3, (end_ns - t0_ns) / 1e3
    with (run_dir / "kernels.csv").open() as f:
        rows = list(csv.DictReader(f))
    if rows and not any(lo_us <= float(r["issue_us"]) <= hi_us for r in rows):
        log.warning("no GPU op issued inside the generate window: using the engine's last steps")
    # the engine's own timeline decides: its last steps are generate()'s (nothing follows them)
    if not rows:
        return StepReport(engine_pid=0)
    by_pid: dict[str, int] = {}
    for r in rows:
        by_pid[r["pid"]] = by_pid.get(r["pid"], 0) + 1
    pid = max(by_pid, key=by_pid.__getitem__)
    waits = sorted(e["ts"] for e in trace["traceEvents"]
                   if e.get("cat") == "wait" and str(e.get("pid")) == pid and str(e.get("tid")) == pid
                   and e.get("args", {}).get("reason") != SLEEP_REASON)
    groups: dict[int, list[dict[str, str]]] = {}
    for r in sorted((r for r in rows if r["pid"] == pid), key=lambda r: float(r["issue_us"])):
        groups.setdefault(bisect.bisect_left(waits, float(r["issue_us"])), []).append(r)
    report = StepReport(engine_pid=int(pid))
    with_compute = [ops for _, ops in sorted(groups.items()) if any(r["kind"] in COMPUTE_KINDS for r in ops)]
    # input/output copies alone are not a step; the prefill is the group before the decodes
    for ops in with_compute[-(decode_steps + 1):]:
        if not ops:
            continue
        compute = [r for r in ops if r["kind"] in COMPUTE_KINDS]
        spans = [(float(r["start_us"]), float(r["end_us"])) for r in ops]
        start, end = min(s for s, _ in spans), max(e for _, e in spans)
        report.steps.append(Step(index=len(report.steps), ops=len(ops), compute_ops=len(compute),
                                 graph_replays=len({r["graph_id"] for r in ops if r["graph_id"] not in ("", "0")}),
                                 start_us=start, end_us=end, span_us=end - start, busy_us=_union_us(spans)))
    return report


def parse_results(stdout: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            out.update(_RESULT_FIELD.findall(line[len("RESULT "):]))
    return out


def vllm_python(explicit: str | None = None) -> str:
    return explicit or os.environ.get("TIMEWARP_VLLM_PYTHON") or sys.executable


def make_model_dir(python: str, model: str, out: Path) -> Path:
    if not (out / "config.json").exists():
        subprocess.run([python, str(REPO / "scripts" / "make_model_dir.py"), model, str(out)], check=True,
                       capture_output=True, text=True)
    return out


def workload_env(base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    # FlashInfer's sampler is JIT-compiled with nvcc at first use (minutes; it needs curand.h,
    # absent from a minimal toolkit): the torch sampler is vLLM's documented alternative.
    env.setdefault("VLLM_USE_FLASHINFER_SAMPLER", "0")
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


@dataclass
class BenchRun:
    exit_status: int
    run_dir: Path
    stdout: str
    stderr: str
    results: dict[str, str]
    report: StepReport | None


def run_bench(model_dir: Path, out: Path, *, python: str | None = None, gpu: str = "h100", prompts: int = 4,
              prompt_len: int = 64, max_tokens: int = 16, compile_mode: str = "none",
              capture_sizes: str = "1,2,4,8", extra_args: list[str] | None = None,
              env: dict[str, str] | None = None, timeout: float = 1800) -> BenchRun:
    cmd = [sys.executable, "-m", "emulator", "--gpu", gpu, "--out", str(out), "--",
           vllm_python(python), str(WORKLOAD), str(model_dir), "--prompts", str(prompts),
           "--prompt-len", str(prompt_len), "--max-tokens", str(max_tokens), "--compile-mode", compile_mode,
           "--capture-sizes", capture_sizes, *(extra_args or [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=workload_env(env), cwd=REPO)
    results = parse_results(proc.stdout)
    report = None
    if proc.returncode == 0 and "generate_begin_ns" in results:
        report = engine_steps(out, int(results["generate_begin_ns"]), int(results["generate_end_ns"]),
                              decode_steps=max_tokens - 1)
    return BenchRun(proc.returncode, out, proc.stdout, proc.stderr, results, report)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", help="tiny | llama-3.1-8b (scripts/make_model_dir.py)")
    ap.add_argument("--model-dir", type=Path, help="an existing model dir (default: OUT/model)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--python", help="the interpreter that has vLLM")
    ap.add_argument("--gpu", default="h100")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--compile-mode", choices=("none", "vllm"), default="none")
    ap.add_argument("--capture-sizes", default="1,2,4,8")
    ap.add_argument("--max-model-len", type=int, default=512)
    args = ap.parse_args()
    python = vllm_python(args.python)
    model_dir = args.model_dir or make_model_dir(python, args.model, args.out.with_name(args.out.name + "-model"))
    run = run_bench(model_dir, args.out, python=python, gpu=args.gpu, prompts=args.prompts,
                    prompt_len=args.prompt_len, max_tokens=args.max_tokens, compile_mode=args.compile_mode,
                    capture_sizes=args.capture_sizes, extra_args=["--max-model-len", str(args.max_model_len)])
    if run.exit_status != 0:
        log.error("emulate exited %d\n%s", run.exit_status, run.stderr[-4000:])
        return 1
    summary = json.loads((args.out / "summary.json").read_text())
    result: dict[str, object] = {
        "model": args.model, "gpu": args.gpu, "prompts": args.prompts, "prompt_len": args.prompt_len,
        "max_tokens": args.max_tokens, "tokens": int(run.results.get("tokens", 0)),
        "virtual_time_s": summary["virtual_time_s"], "wall_time_s": summary["wall_time_s"],
        "generate_virtual_s": float(run.results.get("generate_s", "nan")),
        "unimplemented": summary["unimplemented"],
    }
    if run.report:
        result.update(run.report.summary())
        (args.out / "vllm_steps.json").write_text(json.dumps([asdict(s) for s in run.report.steps], indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
