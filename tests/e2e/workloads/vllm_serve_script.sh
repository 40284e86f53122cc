#!/usr/bin/env bash
# Serving as a script under emulate (the other way of docs/serving.md): `vllm serve` in the
# background, wait until it answers (curl in a loop: its sleeps are virtual), run the client
# (vllm_test_client.sh), stop the server, exit with the client's status.
#
#     vllm_serve_script.sh VLLM_BIN_DIR MODEL_DIR PORT PROMPTS INPUT_LEN OUTPUT_LEN
set -uo pipefail
here=$(dirname "$0")
bin=$1 model=$2 port=$3
"$bin/vllm" serve "$model" --load-format dummy --port "$port" &
server=$!
until curl -sf "http://127.0.0.1:$port/health" > /dev/null; do
    kill -0 "$server" 2> /dev/null || { echo "vllm_serve_script: the server exited before it answered" >&2; exit 1; }
    sleep 1
done
"$here/vllm_test_client.sh" "$@"
status=$?
kill -TERM "$server"
wait "$server"
exit "$status"
