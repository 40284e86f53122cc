"""vLLM offline inference under emulate: prefill and decode step times, and emulation speed.

    python scripts/bench_vllm.py --model tiny --out runs/vllm-tiny
    python scripts/bench_vllm.py --model llama-3.1-8b --out runs/vllm-8b --prompts 8 --prompt-len 128 \\
        --max-tokens 32 --gpu-memory-utilization 0.9

Runs tests/e2e/workloads/vllm_offline.py (unmodified vLLM, dummy weights, token-id prompts of a
fixed length, ignore_eos, generate() inside vLLM's CUDA-profiler range) under `emulate` and
prints one JSON object: the step times come from summary.json's `steps` section (the rule is in
docs/outputs.md), the emulation speed from the run's clock jumps (docs/vllm.md).
The vLLM interpreter is --python, else $TIMEWARP_VLLM_PYTHON, else this one.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script from a checkout

from emulator.outputs import load_run  # noqa: E402
from emulator.outputs.summary import unique_jumps  # noqa: E402

WORKLOAD = REPO / "tests" / "e2e" / "workloads" / "vllm_offline.py"
_RESULT_FIELD = re.compile(r"(\w+)=(\S+)")

log = logging.getLogger("bench_vllm")


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
    env.setdefault("HF_HUB_OFFLINE", "1")   # the model directory is local; nothing to fetch
    return env


@dataclass
class BenchRun:
    exit_status: int
    run_dir: Path
    stdout: str
    stderr: str
    results: dict[str, str]       # the workload's RESULT fields
    summary: dict[str, Any] | None

    @property
    def steps(self) -> dict[str, Any]:
        return (self.summary or {}).get("steps") or {}

    def phase_steps(self, phase: str) -> list[dict[str, Any]]:
        return [s for s in self.steps.get("list", []) if s["phase"] == phase]


def run_bench(model_dir: Path, out: Path, *, python: str | None = None, gpu: str = "h100", prompts: int = 4,
              prompt_len: int = 64, max_tokens: int = 16, compile_mode: str = "none",
              capture_sizes: str = "1,2,4,8", tensor_parallel: int = 1, pipeline_parallel: int = 1,
              extra_args: list[str] | None = None, env: dict[str, str] | None = None,
              timeout: float = 1800) -> BenchRun:
    """One emulated GPU per rank: tensor_parallel x pipeline_parallel of them."""
    gpus = tensor_parallel * pipeline_parallel
    cmd = [sys.executable, "-m", "emulator", "--gpu", gpu, "--gpus", str(gpus), "--out", str(out), "--force", "--",
           vllm_python(python), str(WORKLOAD), str(model_dir), "--prompts", str(prompts),
           "--prompt-len", str(prompt_len), "--max-tokens", str(max_tokens), "--compile-mode", compile_mode,
           "--capture-sizes", capture_sizes, "--tensor-parallel-size", str(tensor_parallel),
           "--pipeline-parallel-size", str(pipeline_parallel), *(extra_args or [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=workload_env(env), cwd=REPO)
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    return BenchRun(proc.returncode, out, proc.stdout, proc.stderr, parse_results(proc.stdout), summary)


def jumped_s(run_dir: Path, begin_us: float, end_us: float) -> float:
    """Virtual seconds that clock jumps added inside [begin, end] (µs from the run's origin)."""
    run = load_run(run_dir)
    jumps = (unique_jumps(run) - run.start_virtual_ns) / 1e3
    overlap = (jumps[:, 1].clip(begin_us, end_us) - jumps[:, 0].clip(begin_us, end_us)).clip(0)
    return float(overlap.sum()) / 1e6


def emulation_speed(run: BenchRun) -> dict[str, float]:
    """Virtual seconds per wall second, for generate() (wall from /proc/uptime in the workload)
    and for its decode steps (wall = virtual minus the jumps inside the decode interval: between
    jumps the virtual clock runs at the wall clock's rate)."""
    out: dict[str, float] = {}
    generate_s, wall_s = float(run.results.get("generate_s", 0)), float(run.results.get("generate_wall_s", 0))
    if generate_s and wall_s:
        out.update(generate_virtual_s=generate_s, generate_wall_s=wall_s, generate_speed=generate_s / wall_s)
    steps = run.steps.get("list", [])
    prefills = [i for i, s in enumerate(steps) if s["phase"] == "prefill"]
    decodes = steps[prefills[-1] + 1:] if prefills else []
    if decodes:
        # from the end of the last prefill step: the decode steps' host and GPU time
        begin_us, end_us = steps[prefills[-1]]["end_us"], decodes[-1]["end_us"]
        virtual_s = (end_us - begin_us) / 1e6
        wall = virtual_s - jumped_s(run.run_dir, begin_us, end_us)
        out.update(decode_steps=len(decodes), decode_virtual_s=virtual_s, decode_wall_s=wall,
                   decode_speed=virtual_s / wall if wall > 0 else float("inf"))
    return out


def bench_result(run: BenchRun) -> dict[str, Any]:
    summary = run.summary or {}
    by_phase = run.steps.get("by_phase", {})
    result: dict[str, Any] = {
        "requests": int(run.results.get("requests", 0)), "tokens": int(run.results.get("tokens", 0)),
        "virtual_time_s": summary.get("virtual_time_s"), "wall_time_s": summary.get("wall_time_s"),
        "unimplemented": summary.get("unimplemented"), "steps": run.steps.get("count", 0),
    }
    for phase in ("prefill", "decode"):
        if phase in by_phase:
            p = by_phase[phase]
            result[phase] = {"count": p["count"], "tokens_median": p["tokens_median"],
                             "busy_ms_median": p["busy_us"]["median"] / 1e3, "busy_ms_p90": p["busy_us"]["p90"] / 1e3,
                             "span_ms_median": p["span_us"]["median"] / 1e3}
    result["speed"] = emulation_speed(run)
    return result


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", help="tiny | llama-3.1-8b (scripts/make_model_dir.py)")
    ap.add_argument("--model-dir", type=Path, help="an existing model dir (default: OUT-model)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--python", help="the interpreter that has vLLM")
    ap.add_argument("--gpu", default="h100")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--compile-mode", choices=("none", "vllm"), default="none")
    ap.add_argument("--capture-sizes", default="1,2,4,8", help="'' = vLLM's default list")
    ap.add_argument("--max-model-len", type=int, default=512)
    ap.add_argument("--gpu-memory-utilization", type=float, default=0.5)
    ap.add_argument("--tensor-parallel-size", type=int, default=1)
    ap.add_argument("--pipeline-parallel-size", type=int, default=1)
    args = ap.parse_args()
    python = vllm_python(args.python)
    model_dir = args.model_dir or make_model_dir(python, args.model, args.out.with_name(args.out.name + "-model"))
    run = run_bench(model_dir, args.out, python=python, gpu=args.gpu, prompts=args.prompts,
                    prompt_len=args.prompt_len, max_tokens=args.max_tokens, compile_mode=args.compile_mode,
                    capture_sizes=args.capture_sizes, tensor_parallel=args.tensor_parallel_size,
                    pipeline_parallel=args.pipeline_parallel_size, extra_args=["--max-model-len", str(args.max_model_len),
                                "--gpu-memory-utilization", str(args.gpu_memory_utilization)])
    if run.exit_status != 0:
        log.error("emulate exited %d\n%s", run.exit_status, run.stderr[-4000:])
        return 1
    result = {"model": args.model, "gpu": args.gpu, "prompts": args.prompts, "prompt_len": args.prompt_len,
              "max_tokens": args.max_tokens, "compile_mode": args.compile_mode,
              "tensor_parallel": args.tensor_parallel_size, "pipeline_parallel": args.pipeline_parallel_size,
              **bench_result(run)}
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
