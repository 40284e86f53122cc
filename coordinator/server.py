"""The run's coordinator process: prediction service on the unix-socket wire of records.h,
gRPC control plane on loopback, a registry of the shim processes that connect.

    python -m coordinator --run-dir DIR --gpu KEY [--gpus N] [--predictor NAME]
                          [--predictor-option k=v ...] [--grpc-port 0] [--watch-parent]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc

from coordinator import actors, wire
from coordinator.config import CoordinatorConfig
from coordinator.proto import timewarp_pb2 as pb
from coordinator.proto import timewarp_pb2_grpc as pb_grpc
from coordinator.registry import ProcessRegistry
from coordinator.service import PredictionFailed, PredictionService

log = logging.getLogger("coordinator")

UNIX_PATH_MAX = 107        # sun_path is 108 bytes including the NUL
PARENT_POLL_S = 0.5
CACHE_FLUSH_S = 30.0
STATS_FILE_NAME = "coordinator.json"


class Coordinator:
    def __init__(self, config: CoordinatorConfig) -> None:
        self.config = config
        self.registry = ProcessRegistry()
        self.service = PredictionService(config.gpu, config.gpus, config.predictor,
                                         config.predictor_options,
                                         config.cache_dir if config.persistent_cache else None)
        self.stop_event = threading.Event()
        self.errors = 0
        self._errors_lock = threading.Lock()
        self._connections: dict[int, socket.socket] = {}
        self._threads: list[threading.Thread] = []
        self._conn_lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._grpc: grpc.Server | None = None
        self.grpc_port = 0

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """gRPC first (its port file is written before the socket accepts), then the socket."""
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="grpc"))
        pb_grpc.add_CoordinatorServicer_to_server(_Servicer(self), self._grpc)
        self.grpc_port = self._grpc.add_insecure_port(f"127.0.0.1:{self.config.grpc_port}")
        if self.grpc_port == 0:
            raise RuntimeError(f"cannot bind gRPC on 127.0.0.1:{self.config.grpc_port}")
        self._grpc.start()
        _write_atomic(self.config.port_path, f"{self.grpc_port}\n")

        path = str(self.config.socket_path)
        if len(path.encode()) > UNIX_PATH_MAX:
            raise RuntimeError(f"socket path {path} is {len(path.encode())} bytes; unix sockets allow "
                               f"{UNIX_PATH_MAX}: use a shorter run directory")
        if self.config.socket_path.exists() or self.config.socket_path.is_symlink():
            self.config.socket_path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(512)
        listener.settimeout(0.25)   # lets the accept loop see stop_event
        self._listener = listener
        threading.Thread(target=self._accept_loop, name="accept", daemon=True).start()
        log.info("coordinator pid %d: socket %s, gRPC 127.0.0.1:%d", os.getpid(), path, self.grpc_port)

    def run_until_stopped(self) -> None:
        parent = os.getppid()
        last_flush = time.monotonic()
        while not self.stop_event.wait(PARENT_POLL_S):
            if self.config.watch_parent and os.getppid() != parent:
                log.warning("parent pid %d is gone: stopping", parent)
                self.stop_event.set()
                break
            if time.monotonic() - last_flush > CACHE_FLUSH_S:
                self.service.flush()
                last_flush = time.monotonic()

    def shutdown(self) -> None:
        self.stop_event.set()
        if self._listener is not None:
            self._listener.close()
        try:
            self.config.socket_path.unlink()
        except FileNotFoundError:
            pass
        with self._conn_lock:
            open_connections = list(self._connections.values())
            threads = list(self._threads)
        for conn in open_connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in threads:
            thread.join(timeout=1.0)
        written = self.service.flush()
        status = self.status_dict()
        _write_atomic(self.config.run_dir / STATS_FILE_NAME, json.dumps(status, indent=1) + "\n")
        if self._grpc is not None:
            # grace lets an in-flight Shutdown RPC answer
            self._grpc.stop(grace=1.0).wait(timeout=2.0)
        try:
            self.config.port_path.unlink()
        except FileNotFoundError:
            pass
        log.info("stopped: %d predictions served, %d cache hits, %d misses, %d cache entries written, "
                 "%d peers lost", status["predictions_served"], status["cache_hits"], status["cache_misses"],
                 written, status["lost_peers"])

    # ---- unix-socket wire -----------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self.stop_event.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break   # listener closed by shutdown
            conn.setblocking(True)
            connection_id = self.registry.open()
            thread = threading.Thread(target=self._serve, args=(conn, connection_id),
                                      name=f"conn-{connection_id}", daemon=True)
            with self._conn_lock:
                self._connections[connection_id] = conn
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket, connection_id: int) -> None:
        c = wire.constants()
        try:
            while not self.stop_event.is_set():
                try:
                    message = wire.recv_message(conn)
                except wire.FramingError as exc:
                    self._reply_error(conn, connection_id, f"{exc}; closing the connection")
                    break
                except OSError:
                    break
                if message is None:
                    break
                msg_type, count, payload = message
                try:
                    if msg_type == c.hello:
                        pid, ppid, abi_version = wire.decode_hello(count, payload)
                        self.registry.hello(connection_id, pid, ppid, abi_version)
                    elif msg_type == c.predict:
                        descs = wire.decode_predict(count, payload)
                        results = self.service.predict(descs)
                        conn.sendall(wire.encode_predictions(results))
                        self.registry.served(connection_id, len(results))
                    elif msg_type == c.bye:
                        self.registry.bye(connection_id)
                        break
                    else:
                        raise wire.WireError(f"unexpected message type {msg_type}")
                except (wire.WireError, PredictionFailed) as exc:
                    self._reply_error(conn, connection_id, str(exc))
                except OSError:
                    break
                except Exception as exc:   # a bug here must not take the coordinator down
                    log.exception("connection %d: message type %d failed", connection_id, msg_type)
                    self._reply_error(conn, connection_id, f"internal error: {exc!r}")
        finally:
            with self._conn_lock:
                self._connections.pop(connection_id, None)
            conn.close()
            self.registry.close(connection_id)

    def _reply_error(self, conn: socket.socket, connection_id: int, text: str) -> None:
        with self._errors_lock:
            self.errors += 1
        log.error("connection %d: %s", connection_id, text)
        try:
            conn.sendall(wire.encode_error(text))
        except OSError:
            pass

    # ---- status ---------------------------------------------------------------------------

    def status_dict(self) -> dict:
        stats = self.service.snapshot()
        peers = self.registry.peers()
        clock = actors.read_status(self.config.run_dir) if (self.config.run_dir / "clock.page").exists() else None
        return {
            "actors": [] if clock is None else [
                {"pid": a.pid, "tid": a.tid, "state": a.state, "label": a.label,
                 "has_target": a.target_s is not None, "target_s": a.target_s or 0.0,
                 "for_s": a.for_s, "waits": a.waits} for a in clock.actors],
            "virtual_s": 0.0 if clock is None else clock.virtual_s,
            "jumps": 0 if clock is None else clock.jumps,
            "deadlock": False if clock is None else clock.deadlock,
            "outsiders": 0 if clock is None else clock.outsiders,
            "jump_refusals": {} if clock is None else clock.jump_refusals,
            "clock_rate": 1.0 if clock is None else clock.clock_rate,
            "gpu": self.config.gpu,
            "gpus": self.config.gpus,
            "predictor": self.service.predictor_name,
            "predictor_version": self.service.predictor_version,
            "processes": [vars(p) for p in peers],
            "connections": sum(1 for p in peers if p.connected),
            "predictions_served": stats.predictions_served,
            "cache_hits": stats.cache_hits,
            "cache_misses": stats.cache_misses,
            "cache_entries": len(self.service.cache),
            "cache_loaded_entries": self.service.cache.loaded_entries,
            "uptime_s": self.registry.uptime_s(),
            "pid": os.getpid(),
            "errors": self.errors,
            "lost_peers": sum(1 for p in peers if p.lost),
        }


class _Servicer(pb_grpc.CoordinatorServicer):
    def __init__(self, coordinator: Coordinator) -> None:
        self.coordinator = coordinator

    def Status(self, request: pb.StatusRequest, context: grpc.ServicerContext) -> pb.StatusReply:  # noqa: N802
        status = self.coordinator.status_dict()
        processes = [pb.Process(**p) for p in status.pop("processes")]
        actors_ = [pb.Actor(**a) for a in status.pop("actors")]
        return pb.StatusReply(processes=processes, actors=actors_, **status)

    def Predict(self, request: pb.PredictRequest, context: grpc.ServicerContext) -> pb.PredictReply:  # noqa: N802
        names = wire.desc_field_names()
        descs = []
        try:
            for message in request.descs:
                fields = {name: getattr(message, name) for name in names if name != "reserved"}
                fields = {k: list(v) if not isinstance(v, int) else v for k, v in fields.items()}
                descs.append(wire.WireDesc(wire.fields_to_desc(fields), message.name))
            results = self.coordinator.service.predict(descs)
        except (wire.WireError, PredictionFailed) as exc:
            with self.coordinator._errors_lock:
                self.coordinator.errors += 1
            log.error("gRPC Predict: %s", exc)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return pb.PredictReply(predictions=[
            pb.Prediction(duration_ns=d, model=m, model_name=wire.model_name(m), contention=c) for d, m, c in results])

    def Shutdown(self, request: pb.Empty, context: grpc.ServicerContext) -> pb.Empty:  # noqa: N802
        log.info("Shutdown requested over gRPC")
        self.coordinator.stop_event.set()
        return pb.Empty()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def parse_option(text: str) -> tuple[str, object]:
    """k=v -> (k, v) with v as JSON when it parses (numbers, true/false), else the string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"predictor option {text!r} is not k=v")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def parse_args(argv: list[str] | None) -> CoordinatorConfig:
    parser = argparse.ArgumentParser(prog="python -m coordinator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument("--gpu", required=True, help="GPU key of the predictors catalog")
    parser.add_argument("--gpus", type=int, default=1)
    parser.add_argument("--predictor", default="auto", help="auto | roofline | table | xgb")
    parser.add_argument("--predictor-option", type=parse_option, action="append", default=[],
                        metavar="K=V")
    parser.add_argument("--grpc-port", type=int, default=0, help="0 = chosen by the OS (loopback only)")
    parser.add_argument("--watch-parent", action="store_true", help="exit when the parent process dies")
    parser.add_argument("--no-persistent-cache", action="store_true")
    args = parser.parse_args(argv)
    config = CoordinatorConfig(run_dir=args.run_dir.resolve(), gpu=args.gpu, gpus=args.gpus,
                               predictor=args.predictor, predictor_options=dict(args.predictor_option),
                               grpc_port=args.grpc_port, watch_parent=args.watch_parent)
    if args.no_persistent_cache:
        config.persistent_cache = False
    return config


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    config.run_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(config.log_path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        coordinator = Coordinator(config)
        coordinator.start()
    except Exception:
        log.exception("coordinator failed to start (gpu %s, predictor %s)", config.gpu, config.predictor)
        return 1
    # SIGTERM/SIGINT stop cleanly: the persistent cache is flushed on the way out.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: coordinator.stop_event.set())
    try:
        coordinator.run_until_stopped()
    finally:
        coordinator.shutdown()
    return 0
