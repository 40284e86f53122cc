"""A serving run's client (`emulate --client CMD --client-port PORT -- SERVER ...`).

The command under emulate is a server; the client (a benchmark, curl, a script) runs in the
same run and on the same clock, and its life decides the run's:

* it starts once the server's port accepts a connection and, with a ready path (`/health` by
  default), answers it with HTTP 200: `emulate` probes from outside the run every PROBE_S, one
  probe at a time on a thread that waits up to PROBE_ANSWER_S for the answer;
* when it exits, the server gets SIGTERM (a clean shutdown), SIGKILL after SERVER_STOP_S; the
  run's exit status is the client's;
* when the server ends first (before it was ready, or while the client ran), the run ends with
  that cause named (`ended_by` reason `server-exited`); a client still running gets
  CLIENT_GRACE_S to notice, then SIGTERM; a server that is not ready within the ready timeout
  (wall seconds) is stopped (`server-not-ready`).
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass

from emulator import monitor

log = logging.getLogger(__name__)

PROBE_S = 0.5            # readiness probes, wall seconds apart
PROBE_TIMEOUT_S = 0.5    # a port that listens but does not answer yet (vLLM binds before its engine is up)
PROBE_ANSWER_S = 60.0    # how long a probe waits for the ready path's answer (SGLang's /health runs a
                         # one-token generation and polls for it every second): probes run on a thread
SERVER_STOP_S = 30.0     # after the client: time for the server's clean shutdown before SIGKILL
CLIENT_GRACE_S = 2.0     # after the server ended: time for the client to notice before SIGTERM
TERM_GRACE_S = 1.5


@dataclass
class ClientSpec:
    command: list[str]
    port: int
    ready_path: str | None = "/health"   # None: the port accepting is enough
    ready_timeout_s: float = 1800.0      # wall seconds for the server to become ready


def describe_status(returncode: int) -> str:
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"status {returncode}"


def port_ready(port: int, path: str | None, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """The port accepts a connection and, with a path, answers `GET path` with HTTP 200."""
    try:
        with socket.create_connection(("localhost", port), timeout=timeout_s) as conn:
            if not path:
                return True
            conn.sendall(f"GET {path} HTTP/1.0\r\nHost: localhost:{port}\r\n\r\n".encode())
            head = conn.recv(64)
    except OSError:
        return False
    return head.split(b" ")[1:2] == [b"200"]


class ServingClient:
    """The client's side of Supervisor (emulator/run.py): `step()` every poll, `finish()` once
    the server command has ended."""

    def __init__(self, spec: ClientSpec, env: dict[str, str], watch: monitor.RunMonitor) -> None:
        self.spec = spec
        self.env = env
        self.watch = watch
        self.state = "waiting"       # waiting -> running -> stopping
        self.process: subprocess.Popen | None = None
        self.client_returncode: int | None = None
        self.ended_by: dict | None = None
        self.began = time.monotonic()
        self.ready_after_s: float | None = None
        self.next_probe = self.began
        self.probe: threading.Thread | None = None
        self.probe_answered = threading.Event()
        self.stop_at: float | None = None

    def forward(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)

    def step(self, server: subprocess.Popen) -> None:
        now = time.monotonic()
        if self.state == "waiting":
            if now - self.began > self.spec.ready_timeout_s:
                self.ended_by = {"reason": "server-not-ready",
                                 "cause": f"the server did not answer on port {self.spec.port}"
                                          f"{self._path_words()} within {self.spec.ready_timeout_s:g} s (wall); "
                                          "the client was not started"}
                log.error("timewarp: %s", self.ended_by["cause"])
                self._stop_server(server, now)
            elif self.probe_answered.is_set():
                self._start(now)
            elif now >= self.next_probe and (self.probe is None or not self.probe.is_alive()):
                self.next_probe = now + PROBE_S
                self.probe = threading.Thread(target=self._probe, name="timewarp-ready-probe", daemon=True)
                self.probe.start()
        elif self.state == "running":
            returncode = self.process.poll() if self.process is not None else None
            if returncode is not None:
                self.client_returncode = returncode
                if returncode < 0:
                    log.error("timewarp: the client (pid %d) was %s; stopping the server", self.process.pid,
                              describe_status(returncode))
                self._stop_server(server, now)
        elif self.state == "stopping" and self.stop_at is not None and now - self.stop_at > SERVER_STOP_S:
            log.error("timewarp: the server did not stop within %g s of SIGTERM: killing it", SERVER_STOP_S)
            self.stop_at = None
            for pid in self.watch.run_pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def _probe(self) -> None:
        if port_ready(self.spec.port, self.spec.ready_path, PROBE_ANSWER_S if self.spec.ready_path else PROBE_TIMEOUT_S):
            self.probe_answered.set()

    def _path_words(self) -> str:
        return f" (GET {self.spec.ready_path} -> 200)" if self.spec.ready_path else ""

    def _start(self, now: float) -> None:
        self.ready_after_s = now - self.began
        log.warning("timewarp: the server answers on port %d after %.1f s: starting the client: %s", self.spec.port,
                 self.ready_after_s, shlex.join(self.spec.command))
        try:
            self.process = subprocess.Popen(self.spec.command, env=self.env)
        except OSError as err:
            log.error("timewarp: the client cannot be started: %s", err)
            self.client_returncode = 127 if isinstance(err, FileNotFoundError) else 126
            self.state = "running"   # step() stops the server
            self.process = None
            return
        self.watch.known.add(self.process.pid)   # its processes are the run's too
        self.watch.waited_by_caller.add(self.process.pid)
        self.state = "running"

    def _stop_server(self, server: subprocess.Popen, now: float) -> None:
        self.state, self.stop_at = "stopping", now
        if server.poll() is None:
            server.terminate()

    def _end_client(self) -> None:
        """The server is gone: the client gets CLIENT_GRACE_S, then SIGTERM, then SIGKILL."""
        if self.process is None:
            return
        for sig, grace in ((None, CLIENT_GRACE_S), (signal.SIGTERM, TERM_GRACE_S), (signal.SIGKILL, 5.0)):
            if sig is not None:
                self.process.send_signal(sig)
            try:
                self.client_returncode = self.process.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue

    def finish(self, server_status: int, server_signal: int | None) -> tuple[int, int | None, dict]:
        """The run's exit status and signal once the server has ended, and run.json's `client`."""
        server_words = f"signal {server_signal}" if server_signal else f"status {server_status}"
        status, sig = server_status, server_signal
        if self.state == "running" and self.process is not None and self.process.poll() is not None \
                and not (server_status or server_signal):
            # both ended within one poll and the server cleanly: the client's end, as usual
            self.client_returncode, self.state = self.process.returncode, "stopping"
        if self.state == "waiting":
            self.ended_by = {"reason": "server-exited",
                             "cause": f"the server exited ({server_words}) before port {self.spec.port} was ready; "
                                      "the client was not started"}
            status = server_status or 1
        elif self.state == "running":
            self.ended_by = {"reason": "server-exited",
                             "cause": f"the server exited ({server_words}) while the client ran"}
            self._end_client()
            client = self.client_returncode
            status = (128 - client) if client is not None and client < 0 else (client or server_status or 1)
            sig = -client if client is not None and client < 0 else None
        elif self.client_returncode is not None:   # the normal end: client done, server stopped
            status, sig = (128 - self.client_returncode, -self.client_returncode) if self.client_returncode < 0 \
                else (self.client_returncode, None)
        else:                                        # never ready: stopped by the ready timeout
            status, sig = 1, None
        info = {
            "command": list(self.spec.command), "port": self.spec.port, "ready_path": self.spec.ready_path,
            "pid": self.process.pid if self.process is not None else None,
            "ready_after_wall_s": self.ready_after_s,
            "exit_status": self.client_returncode if (self.client_returncode or 0) >= 0 else None,
            "exit_signal": -self.client_returncode if (self.client_returncode or 0) < 0 else None,
            "server_exit_status": server_status if server_signal is None else None,
            "server_exit_signal": server_signal,
        }
        return status, sig, info
