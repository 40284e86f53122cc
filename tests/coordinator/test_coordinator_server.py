"""A live coordinator process: wire predictions, errors, concurrency, gRPC status and Predict."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import grpc
import pytest
from coordinator_helpers import mixed_batch, requires_predictors, tw_desc

from coordinator import wire
from coordinator.client import CoordinatorError, WireClient, predict_batch
from coordinator.launch import CoordinatorHandle
from coordinator.proto import timewarp_pb2 as pb
from shim import abi

pytestmark = requires_predictors

VALID_MODELS = {abi.constant(f"TW_MODEL_{m}") for m in ("ROOFLINE", "TABLE", "XGB", "FLOOR", "REAL")}


def test_mixed_batch_answers_are_positive_deterministic_and_modelled(coordinator: CoordinatorHandle) -> None:
    descs, names = mixed_batch()
    with WireClient(coordinator.address) as client:
        first = client.predict(descs, names)
    second = predict_batch(coordinator.address, [wire.desc_to_fields(d) for d in descs], names)
    assert len(first) == len(descs)
    assert first == second
    for (duration_ns, model, _contention), name in zip(first, names, strict=True):
        assert duration_ns > 0, name
        assert model in VALID_MODELS, (name, model)
    # a bigger copy of the same kind does not take less time
    copies = [r for r, n in zip(first, names, strict=True) if n == "cudaMemcpyAsync"]
    assert [r[0] for r in copies] == sorted(r[0] for r in copies)


def test_malformed_messages_get_errors_and_the_server_survives(coordinator: CoordinatorHandle) -> None:
    c = wire.constants()
    descs, names = mixed_batch()
    with WireClient(coordinator.address) as client:
        # count says 3, payload holds 1: framing intact, so the connection stays usable
        one = wire.encode_predict(descs[:1], names[:1])
        client.send_raw(wire.encode_header(c.predict, 3, len(one) - 16) + one[16:])
        msg_type, _, text = client.receive()
        assert msg_type == c.error and b"descriptor 1" in text
        client.send_raw(wire.encode_message(99, 0, b"??"))
        msg_type, _, text = client.receive()
        assert msg_type == c.error and b"unexpected message type 99" in text
        assert client.predict(descs[:2], names[:2])[0][0] > 0
    with WireClient(coordinator.address) as client:
        client.send_raw(b"\xde\xad\xbe\xef" * 4)      # not a header: error, then the server hangs up
        msg_type, _, text = client.receive()
        assert msg_type == c.error and b"magic" in text
        assert client.receive() is None
    assert predict_batch(coordinator.address, [wire.desc_to_fields(descs[0])], names[:1])[0][0] > 0
    assert coordinator.status()["errors"] >= 3


def test_eight_concurrent_clients_show_in_status(coordinator: CoordinatorHandle) -> None:
    descs, names = mixed_batch()
    expected = predict_batch(coordinator.address, [wire.desc_to_fields(d) for d in descs], names)
    clients = 8
    connected = threading.Barrier(clients + 1)
    release = threading.Event()
    results: dict[int, list] = {}
    failures: list[BaseException] = []

    def run(index: int) -> None:
        try:
            with WireClient(coordinator.address) as client:
                for _ in range(5):
                    results[index] = client.predict(descs, names)
                connected.wait(timeout=10)
                release.wait(timeout=10)
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)
            connected.abort()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    connected.wait(timeout=10)
    status = coordinator.status()
    release.set()
    for thread in threads:
        thread.join(timeout=10)
    assert not failures, failures
    assert all(results[i] == expected for i in range(clients))
    mine = [p for p in status["processes"] if p["pid"] == os.getpid() and p["connected"]]
    assert len(mine) == clients
    assert status["connections"] >= clients
    assert all(p["predictions"] == 5 * len(descs) and p["batches"] == 5 for p in mine)
    assert status["predictions_served"] >= clients * 5 * len(descs)
    assert status["cache_hits"] > 0 and status["uptime_s"] > 0


def test_peer_gone_without_bye_is_noted(coordinator: CoordinatorHandle) -> None:
    before = coordinator.status()["lost_peers"]
    client = WireClient(coordinator.address, hello=False)
    client.send_raw(wire.encode_message(wire.constants().hello, 424242,
                                        wire.encode_hello(424242, 1)[16:]))
    client.close()
    deadline = time.monotonic() + 5
    while coordinator.status()["lost_peers"] == before and time.monotonic() < deadline:
        time.sleep(0.02)
    status = coordinator.status()
    assert status["lost_peers"] == before + 1
    gone = [p for p in status["processes"] if p["pid"] == 424242]
    assert gone and not gone[0]["connected"] and not gone[0]["said_bye"]


def test_grpc_predict_matches_the_wire(coordinator: CoordinatorHandle) -> None:
    descs, names = mixed_batch()
    over_wire = predict_batch(coordinator.address, [wire.desc_to_fields(d) for d in descs], names)
    request = pb.PredictRequest()
    for raw, name in zip(descs, names, strict=True):
        fields = wire.desc_to_fields(raw)
        fields.pop("reserved")
        request.descs.append(pb.Descriptor(name=name, **fields))
    reply = coordinator.stub().Predict(request, timeout=10)
    assert [(p.duration_ns, p.model, p.contention) for p in reply.predictions] == over_wire
    assert all(p.model_name == wire.model_name(p.model) for p in reply.predictions)
    bad = pb.PredictRequest(descs=[pb.Descriptor(grid=[1, 2, 3, 4])])
    with pytest.raises(grpc.RpcError) as info:
        coordinator.stub().Predict(bad, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_thousands_of_descriptors_cost_well_under_a_second_of_cpu(coordinator: CoordinatorHandle) -> None:
    kernel = abi.constant("TW_OP_KERNEL")
    descs = [tw_desc(kind=kernel, grid=[i + 1, 1, 1], block=[128, 1, 1], bytes=4096 * (i + 1))
             for i in range(4000)]
    names = [f"_Z6kernelILi{i % 7}EEvPf" for i in range(4000)]
    # CPU time of both ends (this process and the coordinator's), not wall time: a busy host
    # delays the answer without making it cost more
    def cpu_s() -> float:
        fields = Path(f"/proc/{coordinator.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return time.process_time() + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    with WireClient(coordinator.address) as client:
        start = cpu_s()
        cold = client.predict(descs, names)
        cold_s = cpu_s() - start
        start = cpu_s()
        warm = client.predict(descs, names)
        warm_s = cpu_s() - start
    assert cold == warm and all(r[0] > 0 for r in warm)
    assert warm_s < 0.5, f"4000 cached descriptors took {warm_s:.3f} s of CPU"
    assert cold_s < 5.0, f"4000 new descriptors took {cold_s:.3f} s of CPU"


def test_error_reply_for_unpredictable_descriptor(coordinator: CoordinatorHandle) -> None:
    """Whatever the predictor says about an unknown op kind, the answer is a reply, not a hang."""
    with WireClient(coordinator.address) as client:
        try:
            result = client.predict([tw_desc(kind=999)], ["nonsense"])
        except CoordinatorError as exc:
            assert "nonsense" in str(exc)
        else:
            assert result[0][0] >= 0
        assert client.predict(*[x[:1] for x in mixed_batch()])[0][0] > 0


def test_a_c_client_framed_like_the_shim_gets_the_same_answers(coordinator: CoordinatorHandle,
                                                                 tmp_path: Path) -> None:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler")
    exe = tmp_path / "wire_client"
    subprocess.run([compiler, "-std=gnu11", "-Wall", "-Wextra", "-Werror", f"-I{abi.RECORDS_HEADER.parent.parent}",
                    "-o", str(exe), str(Path(__file__).with_name("wire_client.c"))], check=True)
    out = subprocess.run([str(exe), str(coordinator.socket_path)], capture_output=True, text=True,
                         timeout=10, check=True).stdout
    from_c = [tuple(int(x) for x in line.split()) for line in out.splitlines()]
    c = abi.constant
    same = [tw_desc(kind=c("TW_OP_KERNEL"), grid=[4096, 1, 1], block=[256, 1, 1], bytes=12 << 20),
            tw_desc(kind=c("TW_OP_GEMM"), dtype_a=c("TW_DT_BF16"), dtype_b=c("TW_DT_BF16"),
                    dtype_out=c("TW_DT_BF16"), dtype_compute=c("TW_DT_F32"), dims=[2048, 4096, 1024, 1]),
            tw_desc(kind=c("TW_OP_MEMCPY"), dims=[c("TW_COPY_H2D_PINNED")], bytes=1 << 26)]
    with WireClient(coordinator.address) as client:
        from_python = client.predict(same, ["_Z5saxpyifPfS_", "cublasLtMatmul", "cudaMemcpyAsync"])
    assert from_c == from_python
    assert all(r[0] > 0 for r in from_c)
