"""CUDA IPC across processes (shim/src/ipc.c, kernel_sync.c): a handle opened in another process
maps the same bytes of a host-backed allocation, and a kernel whose arguments reach into a
peer's memory is a collective with the peer's launch of it."""

from __future__ import annotations

from pathlib import Path

import pytest
from timewarp_testing import compile_cuda

from emulator.outputs.records import load_run, rec
from shim import abi

CUDA_DIR = Path(__file__).resolve().parent / "cuda"


@pytest.fixture(scope="module")
def vmm_peers(nvcc: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_cuda(nvcc, CUDA_DIR / "vmm_peers.cu", tmp_path_factory.mktemp("vmm"))


@pytest.fixture(scope="module")
def ipc_peers(nvcc: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_cuda(nvcc, CUDA_DIR / "ipc_peers.cu", tmp_path_factory.mktemp("ipc"))


def values(stdout: str) -> dict[tuple[int, str], int]:
    out = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "rank":
            out[(int(parts[1]), parts[2])] = int(parts[3])
    return out


def check_kernels_meet(run_dir: Path, got: dict[tuple[int, str], int], kernel: str) -> None:
    """The two processes' launches of `kernel` are one rendezvous, begun at the later arrival."""
    kernels = []
    for proc in load_run(run_dir).processes:
        r = proc.records[(proc.records["kind"] == rec("GPU_OP")) &
                         (proc.records["op_kind"] == abi.constant("TW_OP_KERNEL"))]
        kernels += [(proc.pid, row) for row in r if kernel in proc.name(int(row["name_id"]))]
    assert len(kernels) == 2, kernels
    flag = abi.constant("TW_FLAG_RENDEZVOUS")
    (_, a), (_, b) = kernels
    assert a["flags"] & flag and b["flags"] & flag
    assert int(a["addr"]) == int(b["addr"]), "both launches belong to one rendezvous"
    latest = max(int(a["value"]), int(b["value"]))
    assert int(a["begin_ns"]) == int(b["begin_ns"]) == latest
    assert int(a["end_ns"]) == int(b["end_ns"])
    # rank 1 launched 10 ms after its own t0 (the two t0s differ by how fast each process got
    # there): the shared begin is at least that late, and both syncs returned only after the end
    assert got[(1, "issued")] - got[(1, "t0")] >= 10_000_000
    assert latest >= got[(1, "issued")] and latest >= got[(0, "issued")]
    assert got[(0, "done")] >= int(a["end_ns"]) and got[(1, "done")] >= int(a["end_ns"])


def test_ipc_handles_share_bytes_and_peer_kernels_meet(emulate, ipc_peers: Path) -> None:  # noqa: ANN001
    run = emulate([str(ipc_peers)], extra=["--gpus", "2"])
    assert run.exit_status == 0, run.stderr[-3000:]
    got = values(run.stdout)
    # each sees the value the other wrote before exporting, and the one the other wrote into it
    assert got[(0, "peer_value")] == 1001 and got[(1, "peer_value")] == 1000
    assert got[(0, "written_by_peer")] == 2001 and got[(1, "written_by_peer")] == 2000
    check_kernels_meet(run.run_dir, got, "exchange")


def test_vmm_shareable_handles_share_bytes_and_pointer_tables_meet(emulate, vmm_peers: Path) -> None:  # noqa: ANN001
    """cuMemExportToShareableHandle / ImportFromShareableHandle (POSIX fds over a socket): a small
    handle is the same bytes wherever it is mapped (twice here, once in the peer, again after an
    unmap), and a kernel reaching the peer's imported memory through a pointer table in device
    memory meets the peer's launch, as FlashInfer's all-reduce does through its workspace; a
    multicast object made in one process is imported by the other (cuMulticast*)."""
    run = emulate([str(vmm_peers)], extra=["--gpus", "2"])
    assert run.exit_status == 0, run.stderr[-3000:]
    got = values(run.stdout)
    assert got[(0, "second_mapping")] == 1000 and got[(1, "second_mapping")] == 1001
    assert got[(0, "peer_value")] == 1001 and got[(1, "peer_value")] == 1000
    assert got[(0, "written_by_peer")] == 2001 and got[(1, "written_by_peer")] == 2000
    check_kernels_meet(run.run_dir, got, "table_exchange")
    # an H100 node has NVSwitch: multicast objects are shared by both processes, for two devices
    for rank in (0, 1):
        assert got[(rank, "multicast_supported")] == 1
        assert got[(rank, "third_device_refused")] == 1
        assert got[(rank, "multicast_bound")] == 1
