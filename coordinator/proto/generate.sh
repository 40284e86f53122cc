#!/bin/sh
# Regenerate timewarp_pb2.py / timewarp_pb2_grpc.py (checked in) from timewarp.proto.
# Imports are rewritten to be package-relative so coordinator.proto is importable anywhere.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-$here/../../.venv/bin/python}
"$python" -m grpc_tools.protoc -I"$here" --python_out="$here" --grpc_python_out="$here" "$here/timewarp.proto"
sed -i 's/^import timewarp_pb2 as timewarp__pb2$/from . import timewarp_pb2 as timewarp__pb2/' "$here/timewarp_pb2_grpc.py"
