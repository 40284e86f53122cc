#!/usr/bin/env bash
# The client of tests/e2e/test_serving.py and scripts/bench_serving.py: `vllm bench serve`
# against a running `vllm serve`, once per request rate (Poisson arrivals; `inf` sends all at
# once), each result with its per-request times saved into the run directory
# ($TIMEWARP_RUN_DIR/bench/rate-R.json), where summary.json's `serving` section reads them.
#
#     vllm_bench_rates.sh VLLM_BIN_DIR MODEL_DIR PORT PROMPTS INPUT_LEN OUTPUT_LEN [RATE ...]
set -euo pipefail
bin=$1 model=$2 port=$3 prompts=$4 input_len=$5 output_len=$6
shift 6
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(4 inf)
for rate in "${rates[@]}"; do
    "$bin/vllm" bench serve --model "$model" --port "$port" --dataset-name random \
        --random-input-len "$input_len" --random-output-len "$output_len" --num-prompts "$prompts" \
        --request-rate "$rate" --ignore-eos --seed 1 --save-result --save-detailed \
        --result-dir "$TIMEWARP_RUN_DIR/bench" --result-filename "rate-$rate.json"
done
