#!/usr/bin/env bash
# The client of tests/e2e/test_serving.py: `vllm bench serve` against a running `vllm serve`,
# twice (Poisson arrivals at 4 requests/s, then all at once), each result with per-request times
# saved into the run directory, where summary.json's `serving` section reads them.
#
#     vllm_bench_two_rates.sh VLLM_BIN_DIR MODEL_DIR PORT [PROMPTS] [INPUT_LEN] [OUTPUT_LEN]
set -euo pipefail
bin=$1 model=$2 port=$3 prompts=${4:-32} input_len=${5:-64} output_len=${6:-16}
for rate in 4 inf; do
    "$bin/vllm" bench serve --model "$model" --port "$port" --dataset-name random \
        --random-input-len "$input_len" --random-output-len "$output_len" --num-prompts "$prompts" \
        --request-rate "$rate" --ignore-eos --seed 1 --save-result --save-detailed \
        --result-dir "$TIMEWARP_RUN_DIR/bench" --result-filename "rate-$rate.json"
done
