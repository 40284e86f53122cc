"""The wire codec, the registry and the persistent cache, without a coordinator process."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from coordinator_helpers import mixed_batch, tw_desc

from coordinator import wire
from coordinator.cache import PredictionCache, cache_file
from coordinator.proto import timewarp_pb2 as pb
from coordinator.registry import ProcessRegistry
from shim import abi


def test_predict_round_trip_keeps_descriptors_and_names() -> None:
    descs, names = mixed_batch()
    names[0] = ""                       # an empty name is legal
    names[1] = "kernel_\u00e9\u00e8"      # utf-8 bytes of odd length shift the next entry
    message = wire.encode_predict(descs, names)
    msg_type, count, payload_bytes = wire.decode_header(message[:16])
    assert (msg_type, count, payload_bytes) == (abi.constant("TW_MSG_PREDICT"), len(descs), len(message) - 16)
    decoded = wire.decode_predict(count, message[16:])
    assert [d.raw for d in decoded] == descs
    assert [d.name for d in decoded] == names


def test_fields_follow_tw_desc() -> None:
    raw = tw_desc(kind=4, grid=[1, 2, 3], dims=[5, 6, 7, 8, 9, 10, 11, 12], bytes=1 << 40, flops=3, name_id=9)
    fields = wire.desc_to_fields(raw)
    assert list(fields) == [name for name, _ in abi.ffi().typeof("tw_desc").fields]
    assert fields["grid"] == [1, 2, 3] and fields["dims"][-1] == 12 and fields["bytes"] == 1 << 40
    assert wire.fields_to_desc(fields) == raw


def test_cache_key_ignores_process_local_name_id() -> None:
    a = wire.WireDesc(tw_desc(kind=1, grid=[8, 1, 1], name_id=1), "k")
    b = wire.WireDesc(tw_desc(kind=1, grid=[8, 1, 1], name_id=99), "k")
    c = wire.WireDesc(tw_desc(kind=1, grid=[9, 1, 1], name_id=1), "k")
    d = wire.WireDesc(tw_desc(kind=1, grid=[8, 1, 1], name_id=1), "k2")
    assert a.key == b.key
    assert len({a.key, c.key, d.key}) == 3


@pytest.mark.parametrize("cut", [1, 100, -1])
def test_truncated_or_padded_predict_is_an_error(cut: int) -> None:
    descs, names = mixed_batch()
    payload = wire.encode_predict(descs[:2], names[:2])[16:]
    broken = payload + b"x" if cut == -1 else payload[:-cut]
    with pytest.raises(wire.WireError):
        wire.decode_predict(2, broken)


def test_bad_magic_is_a_framing_error() -> None:
    with pytest.raises(wire.FramingError):
        wire.decode_header(b"\0" * 16)


def test_proto_descriptor_mirrors_tw_desc() -> None:
    """The gRPC Descriptor and records.h's tw_desc must not drift apart."""
    proto_fields = {f.name for f in pb.Descriptor.DESCRIPTOR.fields} - {"name"}
    c_fields = {name for name, _ in abi.ffi().typeof("tw_desc").fields} - {"reserved"}
    assert proto_fields == c_fields


def test_model_words_map_to_tw_model() -> None:
    assert wire.model_code("roofline") == abi.constant("TW_MODEL_ROOFLINE")
    assert wire.model_code("table") == abi.constant("TW_MODEL_TABLE")
    assert wire.model_code("XGB") == abi.constant("TW_MODEL_XGB")
    assert wire.model_code("floor") == abi.constant("TW_MODEL_FLOOR")
    assert wire.model_code("real") == abi.constant("TW_MODEL_REAL")
    with pytest.raises(ValueError):
        wire.model_code("magic")


def test_registry_tells_bye_from_a_lost_peer() -> None:
    registry = ProcessRegistry()
    polite, lost, probe = registry.open(), registry.open(), registry.open()
    registry.hello(polite, 100, 1, 1)
    registry.hello(lost, 101, 1, 1)
    registry.served(polite, 5)
    registry.bye(polite)
    assert registry.connected_count() == 3
    assert not registry.close(polite).lost
    assert registry.close(lost).lost
    registry.close(probe)                      # never said hello: forgotten
    assert registry.connected_count() == 0
    assert registry.lost_count() == 1
    assert [p.pid for p in registry.peers()] == [100, 101]
    assert registry.by_pid(100)[0].predictions == 5


def test_cache_persists_and_reloads(tmp_path: Path) -> None:
    path = cache_file(tmp_path, "h100", "roof/line", "1.0", 1)
    assert "/" not in path.name
    first = PredictionCache(path)
    first.put(b"k1", (1234, 1))
    first.put(b"k2", (99, 4))
    assert first.flush() == 2
    assert first.flush() == 0
    second = PredictionCache(path)
    assert second.loaded_entries == 2
    assert second.get(b"k1") == (1234, 1) and second.get(b"k2") == (99, 4)


def test_damaged_cache_starts_empty(tmp_path: Path) -> None:
    path = tmp_path / "bad.sqlite"
    path.write_bytes(b"not a database" * 100)
    cache = PredictionCache(path)
    assert len(cache) == 0
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(path).execute("SELECT 1 FROM predictions").fetchall()
