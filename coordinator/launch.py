"""Start and stop a run's coordinator as a child process (used by emulate)."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from coordinator import config as cfg
from coordinator import wire
from coordinator.proto import timewarp_pb2 as pb
from coordinator.proto import timewarp_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
# The coordinator's start (imports, loading the predictor models) is CPU work: the limit is on
# the CPU time it got, so a loaded host that gives it a fraction of a core does not fail the run;
# the wall limit only catches a coordinator that gets no CPU at all.
START_TIMEOUT_S = 30.0
START_WALL_LIMIT_S = 600.0


class CoordinatorStartError(RuntimeError):
    pass


def _log_tail(run_dir: Path, lines: int = 30) -> str:
    try:
        text = (run_dir / cfg.LOG_NAME).read_text(errors="replace")
    except FileNotFoundError:
        return "(no coordinator.log)"
    return "\n".join(text.splitlines()[-lines:])


def message_to_dict(message: object) -> dict:
    """A protobuf message as plain Python values (ints stay ints, unlike json_format)."""
    out: dict[str, object] = {}
    for fd in message.DESCRIPTOR.fields:  # type: ignore[attr-defined]
        value = getattr(message, fd.name)
        if fd.message_type is not None:
            if fd.is_repeated:
                out[fd.name] = [message_to_dict(v) for v in value]
            else:
                out[fd.name] = message_to_dict(value)
        elif fd.is_repeated:
            out[fd.name] = list(value)
        else:
            out[fd.name] = value
    return out


@dataclass
class CoordinatorHandle:
    run_dir: Path
    process: subprocess.Popen
    grpc_port: int
    _channel: grpc.Channel | None = field(default=None, repr=False)

    @property
    def socket_path(self) -> Path:
        return self.run_dir / cfg.SOCKET_NAME

    @property
    def address(self) -> str:
        """What TIMEWARP_COORDINATOR holds."""
        return f"unix:{self.socket_path}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def stub(self) -> pb_grpc.CoordinatorStub:
        if self._channel is None:
            self._channel = grpc.insecure_channel(self.grpc_target)
        return pb_grpc.CoordinatorStub(self._channel)

    def status(self, timeout_s: float = 5.0) -> dict:
        return message_to_dict(self.stub().Status(pb.StatusRequest(), timeout=timeout_s))

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float = 10.0) -> int:
        """Shutdown RPC (the coordinator flushes its cache and exits), then SIGTERM, then SIGKILL."""
        if self.alive():
            try:
                self.stub().Shutdown(pb.Empty(), timeout=2.0)
            except grpc.RpcError as exc:
                log.warning("coordinator Shutdown RPC failed (%s): sending SIGTERM", exc.code())
                self.process.terminate()
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("coordinator pid %d ignored SIGTERM for %.0f s: killing", self.process.pid, timeout_s)
                self.process.terminate()
                try:
                    self.process.wait(timeout=2.0)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        return self.process.returncode


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    # The coordinator must run on the host for real: never under the shim.
    env.pop("LD_PRELOAD", None)
    for key in [k for k in env if k.startswith("TIMEWARP_") and k not in ("TIMEWARP_CACHE_DIR",
                                                                          "TIMEWARP_NO_PREDICTION_CACHE")]:
        env.pop(key)
    return env


def _probe(socket_path: Path) -> bool:
    """True once the socket accepts; says BYE so the registry forgets the probe."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            sock.connect(str(socket_path))
            sock.sendall(wire.encode_message(wire.constants().bye, 0))
        return True
    except OSError:
        return False


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat), 0 if it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(run_dir: Path, gpu: str, gpus: int = 1, predictor: str = "auto",
          options: dict[str, object] | None = None, timeout_s: float = START_TIMEOUT_S,
          persistent_cache: bool = True) -> CoordinatorHandle:
    """Spawn `python -m coordinator` for run_dir and wait until its socket accepts."""
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in (cfg.SOCKET_NAME, cfg.PORT_FILE_NAME):
        (run_dir / stale).unlink(missing_ok=True)
    argv = [sys.executable, "-m", "coordinator", "--run-dir", str(run_dir), "--gpu", gpu,
            "--gpus", str(gpus), "--predictor", predictor, "--watch-parent"]
    for key, value in (options or {}).items():
        argv += ["--predictor-option", f"{key}={value}"]
    if not persistent_cache:
        argv.append("--no-persistent-cache")
    with open(run_dir / cfg.LOG_NAME, "ab") as log_file:
        # stderr into the log too: an import error before logging starts lands there
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                                   env=_child_env(), cwd=REPO_ROOT, start_new_session=True)
    socket_path = run_dir / cfg.SOCKET_NAME
    wall_deadline = time.monotonic() + max(START_WALL_LIMIT_S, timeout_s)
    while True:
        if process.poll() is not None:
            raise CoordinatorStartError(f"coordinator exited with status {process.returncode} before "
                                        f"accepting; {run_dir / cfg.LOG_NAME} ends:\n{_log_tail(run_dir)}")
        if socket_path.exists() and _probe(socket_path):
            break
        if _cpu_seconds(process.pid) > timeout_s or time.monotonic() > wall_deadline:
            process.kill()
            process.wait()
            raise CoordinatorStartError(f"coordinator did not accept on {socket_path} within {timeout_s:.0f} s "
                                        f"of its CPU time; {run_dir / cfg.LOG_NAME} ends:\n{_log_tail(run_dir)}")
        time.sleep(0.02)
    port = int((run_dir / cfg.PORT_FILE_NAME).read_text())
    handle = CoordinatorHandle(run_dir, process, port)
    log.info("coordinator pid %d: %s, gRPC %s", process.pid, handle.address, handle.grpc_target)
    return handle
