"""The run's coordinator: prediction service, process registry and control plane (gRPC)."""
