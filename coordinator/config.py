"""Every environment variable and file name the coordinator reads, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

SOCKET_NAME = "coordinator.sock"
PORT_FILE_NAME = "coordinator.port"
LOG_NAME = "coordinator.log"
PID_FILE_NAME = "coordinator.pid"


def cache_dir() -> Path:
    """Where persistent prediction caches live: $TIMEWARP_CACHE_DIR or ~/.cache/timewarp/predictions."""
    override = os.environ.get("TIMEWARP_CACHE_DIR")
    if override:
        return Path(override)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "timewarp" / "predictions"


def cache_disabled() -> bool:
    """TIMEWARP_NO_PREDICTION_CACHE=1 keeps predictions in memory only (no file read or written)."""
    return os.environ.get("TIMEWARP_NO_PREDICTION_CACHE", "") not in ("", "0")


@dataclass
class CoordinatorConfig:
    run_dir: Path
    gpu: str
    gpus: int = 1
    predictor: str = "auto"
    predictor_options: dict[str, object] = field(default_factory=dict)
    grpc_port: int = 0
    watch_parent: bool = False   # exit when the process that started us is gone
    cache_dir: Path = field(default_factory=cache_dir)
    persistent_cache: bool = field(default_factory=lambda: not cache_disabled())

    @property
    def socket_path(self) -> Path:
        return self.run_dir / SOCKET_NAME

    @property
    def port_path(self) -> Path:
        return self.run_dir / PORT_FILE_NAME

    @property
    def log_path(self) -> Path:
        return self.run_dir / LOG_NAME

    @property
    def pid_path(self) -> Path:
        return self.run_dir / PID_FILE_NAME
