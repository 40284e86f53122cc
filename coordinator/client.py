"""A small client of the coordinator's unix-socket wire (tests, benchmarks, scripts)."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence

from coordinator import wire


class CoordinatorError(Exception):
    """The coordinator answered TW_MSG_ERROR."""


def socket_path(address: str) -> str:
    if not address.startswith("unix:"):
        raise ValueError(f"not a unix: address: {address!r}")
    return address[len("unix:"):]


class WireClient:
    """One connection, as a shim process holds it: HELLO, PREDICT batches, BYE."""

    def __init__(self, address: str, timeout_s: float | None = 30.0, hello: bool = True) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout_s)
        self.sock.connect(socket_path(address))
        if hello:
            self.send_raw(wire.encode_hello(os.getpid(), os.getppid()))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def receive(self) -> tuple[int, int, bytes] | None:
        return wire.recv_message(self.sock)

    def predict(self, descs: Sequence[dict[str, object] | bytes], names: Sequence[str]) -> list[tuple[int, int, int]]:
        """(duration_ns, tw_model) per descriptor; descs are tw_desc field dicts or raw tw_desc bytes."""
        raws = [d if isinstance(d, bytes) else wire.fields_to_desc(d) for d in descs]
        self.send_raw(wire.encode_predict(raws, list(names)))
        message = self.receive()
        if message is None:
            raise CoordinatorError("coordinator closed the connection")
        msg_type, count, payload = message
        c = wire.constants()
        if msg_type == c.error:
            raise CoordinatorError(payload.decode("utf-8", "replace"))
        if msg_type != c.predictions or count != len(raws):
            raise CoordinatorError(f"unexpected reply: type {msg_type}, count {count} for {len(raws)}")
        return wire.decode_predictions(count, payload)

    def bye(self) -> None:
        self.send_raw(wire.encode_message(wire.constants().bye, 0))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> WireClient:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.bye()
        except OSError:
            pass
        self.close()


def predict_batch(address: str, descs: list[dict[str, object]], names: list[str]) -> list[tuple[int, int, int]]:
    """One connection, one PREDICT batch, BYE: [(duration_ns, tw_model), ...] in order."""
    with WireClient(address) as client:
        return client.predict(descs, names)
