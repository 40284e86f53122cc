"""Online serving under emulate: `vllm serve` with `vllm bench serve` at several request rates in
one run (`emulate --client`), and what it gives: TTFT, TPOT and ITL per rate, the engine's decode
period, and the emulation speed (virtual seconds per wall second during each benchmark).

    python scripts/bench_serving.py --model tiny --out runs/serve-tiny
    python scripts/bench_serving.py --model llama-3.1-8b --out runs/serve-8b --rates 1 4 16 \\
        --prompts 64 --input-len 512 --output-len 128

Prints one JSON object. The serving numbers come from summary.json's `serving` section
(docs/serving.md); `startup_wall_s` is the wall time until the server answered /health.
The vLLM interpreter is --python, else $TIMEWARP_VLLM_PYTHON, else .venv-vllm's.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CLIENT = REPO / "tests" / "e2e" / "workloads" / "vllm_bench_rates.sh"

log = logging.getLogger("bench_serving")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vllm_python(explicit: str | None) -> str:
    return explicit or os.environ.get("TIMEWARP_VLLM_PYTHON") or str(REPO / ".venv-vllm" / "bin" / "python")


def make_model_dir(python: str, model: str, out: Path) -> Path:
    if not (out / "config.json").exists():
        subprocess.run([python, str(REPO / "scripts" / "make_model_dir.py"), model, str(out)], check=True,
                       capture_output=True, text=True)
    return out


def run_serving(python: str, model_dir: Path, out: Path, *, gpu: str, rates: list[str], prompts: int,
                input_len: int, output_len: int, server_args: list[str], timeout: float) -> tuple[int, str, float]:
    port = free_port()
    bin_dir = Path(python).parent
    client = " ".join([str(CLIENT), str(bin_dir), str(model_dir), str(port), str(prompts), str(input_len),
                       str(output_len), *rates])
    cmd = [sys.executable, "-m", "emulator", "--gpu", gpu, "--out", str(out), "--force", "--client", client,
           "--client-port", str(port), "--", str(bin_dir / "vllm"), "serve", str(model_dir), "--load-format", "dummy",
           "--port", str(port), *server_args]
    began = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return proc.returncode, proc.stderr, time.monotonic() - began


def result(summary: dict[str, Any]) -> dict[str, Any]:
    client = summary.get("client") or {}
    out: dict[str, Any] = {
        "virtual_time_s": summary["virtual_time_s"], "wall_time_s": summary["wall_time_s"],
        "startup_wall_s": client.get("ready_after_wall_s"), "floor_predicted": len(summary["floor_predicted"]),
        "unimplemented": summary["unimplemented"], "rates": {},
    }
    for bench in (summary.get("serving") or {}).get("benchmarks", []):
        rate = Path(bench["file"]).stem.removeprefix("rate-")
        engine = bench.get("engine") or {}
        out["rates"][rate] = {
            "completed": bench["completed"], "failed": bench["failed"],
            "request_throughput": bench.get("request_throughput"), "output_throughput": bench.get("output_throughput"),
            "ttft_ms": bench["ttft_ms"], "tpot_ms": bench["tpot_ms"], "itl_ms": bench["itl_ms"],
            "engine_decode_period_ms": engine.get("decode_period_ms"), "engine_decode_busy_ms": engine.get("decode_busy_ms"),
            "sequences_per_decode_step": engine.get("sequences_per_decode_step"),
            "speed": bench.get("speed"), "agreement_max_relative": bench["agreement_max_relative"],
        }
    return out


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", help="tiny | llama-3.1-8b (scripts/make_model_dir.py)")
    ap.add_argument("--model-dir", type=Path, help="an existing model dir (default: OUT-model)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--python", help="the interpreter that has vLLM")
    ap.add_argument("--gpu", default="h100")
    ap.add_argument("--rates", nargs="+", default=["4", "inf"], help="request rates (per second; inf = all at once)")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--input-len", type=int, default=64)
    ap.add_argument("--output-len", type=int, default=16)
    ap.add_argument("--server-arg", action="append", default=[], help="extra `vllm serve` argument (repeat)")
    ap.add_argument("--timeout", type=float, default=3600)
    args = ap.parse_args()
    python = vllm_python(args.python)
    model_dir = args.model_dir or make_model_dir(python, args.model, args.out.with_name(args.out.name + "-model"))
    status, stderr, wall_s = run_serving(python, model_dir, args.out, gpu=args.gpu, rates=args.rates,
                                         prompts=args.prompts, input_len=args.input_len, output_len=args.output_len,
                                         server_args=args.server_arg, timeout=args.timeout)
    summary_path = args.out / "summary.json"
    if status != 0 or not summary_path.exists():
        log.error("emulate exited %d after %.0f s\n%s", status, wall_s, stderr[-4000:])
        return 1
    print(json.dumps({"model": args.model, "gpu": args.gpu, "prompts": args.prompts, "input_len": args.input_len,
                      "output_len": args.output_len, "emulate_wall_s": wall_s,
                      **result(json.loads(summary_path.read_text()))}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
