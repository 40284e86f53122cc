#!/usr/bin/env bash
# The client of tests/e2e/test_serving.py: `vllm bench serve` at 4 requests/s and all at once
# (vllm_bench_rates.sh), then one streamed completion and one streamed chat completion with curl,
# each response saved into the run directory ($TIMEWARP_RUN_DIR/stream-*.txt).
#
#     vllm_test_client.sh VLLM_BIN_DIR MODEL_DIR PORT PROMPTS INPUT_LEN OUTPUT_LEN
set -euo pipefail
here=$(dirname "$0")
bin=$1 model=$2 port=$3 prompts=$4 input_len=$5 output_len=$6
"$here/vllm_bench_rates.sh" "$bin" "$model" "$port" "$prompts" "$input_len" "$output_len" 4 inf
url="http://127.0.0.1:$port/v1"
curl -sSfN "$url/completions" -H 'Content-Type: application/json' -o "$TIMEWARP_RUN_DIR/stream-completions.txt" \
    -d "{\"model\": \"$model\", \"prompt\": \"the time warp\", \"max_tokens\": 32, \"ignore_eos\": true, \"stream\": true, \"stream_options\": {\"include_usage\": true}}"
curl -sSfN "$url/chat/completions" -H 'Content-Type: application/json' -o "$TIMEWARP_RUN_DIR/stream-chat.txt" \
    -d "{\"model\": \"$model\", \"messages\": [{\"role\": \"user\", \"content\": \"the time warp\"}], \"max_tokens\": 32, \"ignore_eos\": true, \"stream\": true, \"stream_options\": {\"include_usage\": true}}"
