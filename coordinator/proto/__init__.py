"""Generated protobuf/gRPC modules of the coordinator's control plane (see generate.sh)."""
