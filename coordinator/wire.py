"""The shim <-> coordinator prediction wire of records.h, read and written through cffi.

Framing: a tw_wire_header, then payload_bytes of payload. A PREDICT payload is count entries,
each a tw_wire_desc immediately followed by name_len bytes of name (no padding between entries).
"""

from __future__ import annotations

import functools
import hashlib
import socket
from dataclasses import dataclass

from shim import abi

MAX_PAYLOAD_BYTES = 256 << 20   # far above any real batch; a larger header is garbage


class WireError(Exception):
    """A malformed message: answered with TW_MSG_ERROR."""


class FramingError(WireError):
    """The stream cannot be trusted past this point (bad magic, absurd size): close it."""


@dataclass(frozen=True)
class Constants:
    magic: int
    abi_version: int
    hello: int
    predict: int
    predictions: int
    bye: int
    error: int
    header_bytes: int
    wire_desc_bytes: int
    desc_bytes: int
    prediction_bytes: int
    hello_bytes: int
    key_bytes: int          # prefix of tw_desc that keys a prediction (drops name_id, reserved)
    model_codes: dict[str, int]


@functools.lru_cache(maxsize=1)
def constants() -> Constants:
    ffi = abi.ffi()
    models = {name: abi.constant(f"TW_MODEL_{name.upper()}")
              for name in ("none", "roofline", "table", "xgb", "floor", "real")}
    return Constants(
        magic=abi.constant("TW_WIRE_MAGIC"),
        abi_version=abi.constant("TW_ABI_VERSION"),
        hello=abi.constant("TW_MSG_HELLO"),
        predict=abi.constant("TW_MSG_PREDICT"),
        predictions=abi.constant("TW_MSG_PREDICTIONS"),
        bye=abi.constant("TW_MSG_BYE"),
        error=abi.constant("TW_MSG_ERROR"),
        header_bytes=ffi.sizeof("tw_wire_header"),
        wire_desc_bytes=ffi.sizeof("tw_wire_desc"),
        desc_bytes=ffi.sizeof("tw_desc"),
        prediction_bytes=ffi.sizeof("tw_prediction"),
        hello_bytes=ffi.sizeof("tw_hello"),
        key_bytes=ffi.offsetof("tw_desc", "name_id"),
        model_codes=models,
    )


@functools.lru_cache(maxsize=1)
def desc_field_names() -> tuple[str, ...]:
    """tw_desc's field names in declaration order (the keys of a descriptor dict)."""
    return tuple(name for name, _ in abi.ffi().typeof("tw_desc").fields)


def model_code(model: str) -> int:
    """enum tw_model for a predictor's model word ("roofline", "table", "xgb", "floor", "real").

    A qualified word such as "table-nearest" or "auto/xgb" maps by the known word it contains."""
    codes = constants().model_codes
    word = model.lower()
    if word in codes:
        return codes[word]
    for name, code in codes.items():
        if name != "none" and name in word:
            return code
    raise ValueError(f"predictor answered with unknown model {model!r}")


def model_name(code: int) -> str:
    for name, value in constants().model_codes.items():
        if value == code:
            return name
    return f"model{code}"


# ---- descriptors -------------------------------------------------------------------------

@dataclass(frozen=True)
class WireDesc:
    """One descriptor as received: the raw tw_desc bytes and its name."""
    raw: bytes
    name: str

    @property
    def key(self) -> bytes:
        """Cache key: a digest of the canonical part of tw_desc and the name (name_id is process-local)."""
        digest = hashlib.blake2b(self.raw[: constants().key_bytes], digest_size=20)
        digest.update(self.name.encode())
        return digest.digest()

    def fields(self) -> dict[str, object]:
        return desc_to_fields(self.raw)


def desc_to_fields(raw: bytes) -> dict[str, object]:
    """tw_desc bytes -> {field name: value}; arrays (grid, block, dims) become lists."""
    ffi = abi.ffi()
    desc = ffi.from_buffer("tw_desc *", raw)
    out: dict[str, object] = {}
    for name, field in ffi.typeof("tw_desc").fields:
        value = getattr(desc, name)
        out[name] = list(value) if field.type.kind == "array" else int(value)
    return out


def fields_to_desc(fields: dict[str, object]) -> bytes:
    """{field name: value} -> tw_desc bytes; missing fields are 0, unknown names are an error."""
    ffi = abi.ffi()
    desc = ffi.new("tw_desc *")
    known = desc_field_names()
    for name, value in fields.items():
        if name not in known:
            raise WireError(f"tw_desc has no field {name!r}")
        if isinstance(value, (list, tuple)):
            target = getattr(desc, name)
            if len(value) > len(target):
                raise WireError(f"tw_desc.{name} holds {len(target)} values, got {len(value)}")
            for i, item in enumerate(value):
                target[i] = int(item)
        else:
            try:
                setattr(desc, name, int(value))  # type: ignore[arg-type]
            except OverflowError as exc:
                raise WireError(f"tw_desc.{name} = {value!r}: {exc}") from exc
    return bytes(ffi.buffer(desc))


# ---- messages ----------------------------------------------------------------------------

def encode_header(msg_type: int, count: int, payload_bytes: int) -> bytes:
    ffi = abi.ffi()
    header = ffi.new("tw_wire_header *", {"magic": constants().magic, "type": msg_type,
                                          "count": count, "payload_bytes": payload_bytes})
    return bytes(ffi.buffer(header))


def decode_header(raw: bytes) -> tuple[int, int, int]:
    """-> (type, count, payload_bytes); FramingError if it is not a tw_wire_header."""
    header = abi.ffi().from_buffer("tw_wire_header *", raw)
    if header.magic != constants().magic:
        raise FramingError(f"bad wire magic 0x{header.magic:08x}")
    if header.payload_bytes > MAX_PAYLOAD_BYTES:
        raise FramingError(f"payload of {header.payload_bytes} bytes exceeds {MAX_PAYLOAD_BYTES}")
    return int(header.type), int(header.count), int(header.payload_bytes)


def encode_message(msg_type: int, count: int, payload: bytes = b"") -> bytes:
    return encode_header(msg_type, count, len(payload)) + payload


def encode_error(text: str) -> bytes:
    return encode_message(constants().error, 0, text.encode("utf-8", "replace"))


def encode_hello(pid: int, ppid: int) -> bytes:
    ffi = abi.ffi()
    hello = ffi.new("tw_hello *", {"pid": pid, "ppid": ppid, "abi_version": constants().abi_version})
    return encode_message(constants().hello, pid, bytes(ffi.buffer(hello)))


def decode_hello(count: int, payload: bytes) -> tuple[int, int, int]:
    """-> (pid, ppid, abi_version)."""
    c = constants()
    if len(payload) != c.hello_bytes:
        raise WireError(f"HELLO payload is {len(payload)} bytes, tw_hello is {c.hello_bytes}")
    hello = abi.ffi().from_buffer("tw_hello *", payload)
    if hello.abi_version != c.abi_version:
        raise WireError(f"HELLO abi_version {hello.abi_version}, coordinator speaks {c.abi_version}")
    return int(hello.pid), int(hello.ppid), int(hello.abi_version)


def encode_predict(descs: list[bytes], names: list[str]) -> bytes:
    """A PREDICT message from tw_desc bytes and names."""
    if len(descs) != len(names):
        raise ValueError("descs and names differ in length")
    c = constants()
    ffi = abi.ffi()
    parts: list[bytes] = []
    entry = ffi.new("tw_wire_desc *")
    for raw, name in zip(descs, names, strict=True):
        name_bytes = name.encode()
        ffi.memmove(ffi.addressof(entry.desc), raw, c.desc_bytes)
        entry.name_len = len(name_bytes)
        parts.append(bytes(ffi.buffer(entry)))
        parts.append(name_bytes)
    return encode_message(c.predict, len(descs), b"".join(parts))


def decode_predict(count: int, payload: bytes) -> list[WireDesc]:
    c = constants()
    ffi = abi.ffi()
    out: list[WireDesc] = []
    view = memoryview(payload)
    offset = 0
    name_len_at = ffi.offsetof("tw_wire_desc", "name_len")
    for index in range(count):
        end = offset + c.wire_desc_bytes
        if end > len(payload):
            raise WireError(f"PREDICT payload ends inside descriptor {index} of {count}")
        name_len = int.from_bytes(view[offset + name_len_at: offset + name_len_at + 4], "little")
        if end + name_len > len(payload):
            raise WireError(f"PREDICT payload ends inside the name of descriptor {index} ({name_len} bytes)")
        raw = bytes(view[offset: offset + c.desc_bytes])
        name = bytes(view[end: end + name_len]).decode("utf-8", "replace")
        out.append(WireDesc(raw, name))
        offset = end + name_len
    if offset != len(payload):
        raise WireError(f"PREDICT payload has {len(payload) - offset} bytes after {count} descriptors")
    return out


def encode_predictions(results: list[tuple[int, int, int]]) -> bytes:
    ffi = abi.ffi()
    array = ffi.new("tw_prediction[]", max(len(results), 1))
    for i, (duration_ns, model, contention) in enumerate(results):
        array[i].duration_ns = duration_ns
        array[i].model = model
        array[i].contention = contention
    payload = bytes(ffi.buffer(array, len(results) * constants().prediction_bytes))
    return encode_message(constants().predictions, len(results), payload)


def decode_predictions(count: int, payload: bytes) -> list[tuple[int, int, int]]:
    c = constants()
    if len(payload) != count * c.prediction_bytes:
        raise WireError(f"PREDICTIONS payload is {len(payload)} bytes for {count} predictions")
    array = abi.ffi().from_buffer("tw_prediction[]", payload)
    return [(int(array[i].duration_ns), int(array[i].model), int(array[i].contention)) for i in range(count)]


def recv_exact(sock: socket.socket, nbytes: int) -> bytes | None:
    """nbytes from sock, or None at a clean end of stream before the first byte."""
    buf = bytearray(nbytes)
    view = memoryview(buf)
    got = 0
    while got < nbytes:
        n = sock.recv_into(view[got:])
        if n == 0:
            if got == 0:
                return None
            raise FramingError(f"connection closed after {got} of {nbytes} bytes")
        got += n
    return bytes(buf)


def recv_message(sock: socket.socket) -> tuple[int, int, bytes] | None:
    """One message -> (type, count, payload), or None when the peer closed between messages."""
    raw = recv_exact(sock, constants().header_bytes)
    if raw is None:
        return None
    msg_type, count, payload_bytes = decode_header(raw)
    payload = recv_exact(sock, payload_bytes) if payload_bytes else b""
    if payload is None:
        raise FramingError("connection closed before the payload")
    return msg_type, count, payload
