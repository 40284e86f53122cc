"""vLLM offline inference, unmodified: LLM(load_format="dummy") with CUDA graphs, fixed-length
token-id prompts, ignore_eos so every request generates exactly max_tokens tokens.

    python vllm_offline.py MODEL_DIR [--prompts N] [--prompt-len L] [--max-tokens T]
                           [--compile-mode none|vllm] [--capture-sizes 1,2,4,8]

Prints `RESULT k=v ...` lines (read by tests/e2e/test_vllm_offline.py and scripts/bench_vllm.py).
Everything passed to vLLM is a setting a user would pass: a short max_model_len, a memory
fraction, the CUDA-graph capture sizes, (for a fast start on a small CPU) no torch.compile, and
vLLM's CUDA profiler (`profiler="cuda"`): `generate()` runs between `start_profile()` and
`stop_profile()`, so the engine calls cudaProfilerStart/Stop around it, as it would for
`nsys --capture-range=cudaProfilerApi`, and summary.json's `steps` cover exactly that range.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def real_s() -> float:
    """Seconds since boot from the kernel: under emulate every clock call returns virtual time,
    /proc/uptime does not (10 ms resolution)."""
    return float(Path("/proc/uptime").read_text().split()[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--max-model-len", type=int, default=512)
    ap.add_argument("--gpu-memory-utilization", type=float, default=0.5)
    ap.add_argument("--tensor-parallel-size", type=int, default=1)
    ap.add_argument("--pipeline-parallel-size", type=int, default=1)
    ap.add_argument("--compile-mode", choices=("none", "vllm"), default="none",
                    help="none: no torch.compile (full CUDA graphs only); vllm: vLLM's default Inductor path")
    ap.add_argument("--capture-sizes", default="1,2,4,8",
                    help="CUDA-graph batch sizes to capture ('' = vLLM's default list)")
    args = ap.parse_args()

    from vllm import LLM, SamplingParams

    compilation: dict[str, object] = {}
    if args.compile_mode == "none":
        # no Dynamo/Inductor (minutes on a 2-core CPU); CUDA graphs stay on, as full graphs
        compilation.update({"mode": 0, "cudagraph_mode": "FULL_AND_PIECEWISE"})
    if args.capture_sizes:
        compilation["cudagraph_capture_sizes"] = [int(s) for s in args.capture_sizes.split(",")]

    t0 = time.perf_counter()
    llm = LLM(model=args.model, load_format="dummy", max_model_len=args.max_model_len,
              tensor_parallel_size=args.tensor_parallel_size, pipeline_parallel_size=args.pipeline_parallel_size,
              gpu_memory_utilization=args.gpu_memory_utilization, enforce_eager=False,
              compilation_config=compilation or None, profiler_config={"profiler": "cuda"})
    t1 = time.perf_counter()
    # kernels never run, so sampled ids are whatever the output buffers held: no detokenizing
    params = SamplingParams(max_tokens=args.max_tokens, ignore_eos=True, temperature=0.0, detokenize=False)
    prompts = [{"prompt_token_ids": [3 + (i + j) % 200 for j in range(args.prompt_len)]}
               for i in range(args.prompts)]
    gen_begin_ns, gen_begin_real_s = time.monotonic_ns(), real_s()  # virtual under emulate, real
    llm.start_profile()  # the engine's cudaProfilerStart: the range summary.json's steps cover
    outs = llm.generate(prompts, params, use_tqdm=False)
    llm.stop_profile()
    gen_end_ns, gen_end_real_s = time.monotonic_ns(), real_s()
    tokens = [len(o.outputs[0].token_ids) for o in outs]
    print(f"RESULT init_s={t1 - t0:.6f} generate_s={(gen_end_ns - gen_begin_ns) / 1e9:.6f}")
    print(f"RESULT generate_begin_ns={gen_begin_ns} generate_end_ns={gen_end_ns} "
          f"generate_wall_s={gen_end_real_s - gen_begin_real_s:.2f}")
    print(f"RESULT requests={len(outs)} tokens={sum(tokens)} min_tokens={min(tokens)} max_tokens={max(tokens)}")
    print("RESULT done=1", flush=True)


if __name__ == "__main__":  # required: vLLM's engine process may be spawned
    main()
