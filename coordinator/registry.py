"""Registry of the shim connections of a run: who said hello, who is connected, who left how.

Keyed by connection (a process may reconnect; pid reuse is possible across a long run). The
multi-process clock builds on this: threads-by-state will hang off the same entries."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class Peer:
    connection_id: int
    pid: int = 0                  # 0 until HELLO
    ppid: int = 0
    abi_version: int = 0
    connected: bool = True
    said_bye: bool = False
    predictions: int = 0          # descriptors answered on this connection
    batches: int = 0
    connected_at_s: float = 0.0   # since the registry was created
    disconnected_at_s: float = 0.0

    @property
    def lost(self) -> bool:
        """Registered (said hello) and gone without BYE: the process died or was killed."""
        return not self.connected and self.pid != 0 and not self.said_bye


class ProcessRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._peers: dict[int, Peer] = {}
        self._ids = itertools.count(1)
        self._start = time.monotonic()

    def uptime_s(self) -> float:
        return time.monotonic() - self._start

    def open(self) -> int:
        """A new connection; returns its id."""
        with self._lock:
            connection_id = next(self._ids)
            self._peers[connection_id] = Peer(connection_id, connected_at_s=self.uptime_s())
        return connection_id

    def hello(self, connection_id: int, pid: int, ppid: int, abi_version: int) -> None:
        with self._lock:
            peer = self._peers[connection_id]
            peer.pid, peer.ppid, peer.abi_version = pid, ppid, abi_version
        log.info("connection %d: hello from pid %d (ppid %d)", connection_id, pid, ppid)

    def served(self, connection_id: int, predictions: int) -> None:
        with self._lock:
            peer = self._peers[connection_id]
            peer.predictions += predictions
            peer.batches += 1

    def bye(self, connection_id: int) -> None:
        with self._lock:
            self._peers[connection_id].said_bye = True

    def close(self, connection_id: int) -> Peer:
        """The connection ended (after BYE or not); returns the final entry."""
        with self._lock:
            peer = self._peers[connection_id]
            peer.connected = False
            peer.disconnected_at_s = self.uptime_s()
            final = dataclasses.replace(peer)
            if peer.pid == 0:
                # never said hello (a readiness probe, a stray client): nothing to remember
                del self._peers[connection_id]
        if final.lost:
            log.warning("connection %d: pid %d disconnected without BYE (exited abnormally?)",
                        connection_id, final.pid)
        else:
            log.info("connection %d: pid %d closed after %d predictions", connection_id, final.pid,
                     final.predictions)
        return final

    def peers(self) -> list[Peer]:
        with self._lock:
            return [dataclasses.replace(p) for p in self._peers.values()]

    def connected_count(self) -> int:
        with self._lock:
            return sum(1 for p in self._peers.values() if p.connected)

    def lost_count(self) -> int:
        with self._lock:
            return sum(1 for p in self._peers.values() if p.lost)

    def by_pid(self, pid: int) -> list[Peer]:
        with self._lock:
            return [dataclasses.replace(p) for p in self._peers.values() if p.pid == pid]
