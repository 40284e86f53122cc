"""Node-level CUDA graph construction under `emulate`: nodes of every modelled type, edges added
after the nodes (a forward one, a refused cycle), kernel-node parameters on the graph and on its
instantiation, cudaGraphExecUpdate, cudaGraphDebugDotPrint and capture into an existing graph.
The replays' ops must follow the graph's edges on the virtual timeline."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from timewarp_testing import compile_cuda

CUDA_DIR = Path(__file__).resolve().parent / "cuda"
# driver_types.h: cudaGraphNodeType and statuses
KERNEL, MEMCPY, MEMSET, HOST, GRAPH, EMPTY = 0, 1, 2, 3, 4, 5
INVALID_VALUE, UPDATE_FAILURE = 1, 910
UPDATE_SUCCESS, UPDATE_TOPOLOGY_CHANGED = 0, 2
GRID = (1 << 24) // 256


@pytest.fixture
def app(nvcc: str, cuda_bin_dir: Path) -> str:
    return str(compile_cuda(nvcc, CUDA_DIR / "app_graph_nodes.cu", cuda_bin_dir))


def test_graph_built_node_by_node(emulate, app: str, tmp_path: Path) -> None:  # noqa: ANN001
    dot = tmp_path / "graph.dot"
    run = emulate([app, str(dot)])
    assert run.exit_status == 0, run.stdout + run.stderr[-3000:]
    res: dict[str, str] = {}
    for line in run.stdout.splitlines():
        if line.startswith("RESULT "):
            res.update(kv.split("=", 1) for kv in line[len("RESULT "):].split())
    assert int(res["cycle"]) == INVALID_VALUE
    assert [int(t) for t in res["types"].split(",")] == [KERNEL, MEMSET, MEMCPY, HOST, EMPTY, GRAPH]
    assert (res["second_deps"], res["first_dependents"], res["dep_is_first"]) == ("1", "1", "1")
    assert (int(res["got_grid"]), int(res["got_block"])) == (GRID, 256)
    # three replays ran the host node three times and moved the memset's bytes through the copy
    assert (res["host_runs"], res["copied"], res["event_done"]) == ("3", "1", "1")
    assert int(res["graph_grid_after_exec_set"]) == GRID  # the exec's parameters are its own
    assert (int(res["update_same"]), int(res["update_same_result"])) == (0, UPDATE_SUCCESS)
    assert (int(res["update_other"]), int(res["update_other_result"])) == (UPDATE_FAILURE, UPDATE_TOPOLOGY_CHANGED)
    assert (res["capture_to_graph_same"], res["added"], res["deps"]) == ("1", "2", "1,0")
    # the DOT dump: one vertex per node, the edges as made (the forward one included)
    text = dot.read_text()
    assert text.count("[label=") == 10 and "n1 -> n0;" in text and "kernel" in text and "memset" in text

    rows = [r for r in csv.DictReader(io.StringIO(run.kernels_csv())) if int(r["graph_id"]) != 0]
    replays: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        replays.setdefault(r["seq"], []).append(r)
    assert len(replays) == 5  # 3 launches, then one after each parameter change
    for seq, ops in replays.items():
        by = {}
        for r in ops:
            by.setdefault(r["name"].split("(")[0], []).append(r)
        first, second = by["node_first"][0], by["node_second"][0]
        (memset,), (copy,), child = by["memset"], by["memcpy DtoD"], by["node_child"]
        # the edges, in virtual time: first -> second -> memset -> memcpy -> (host, empty) -> child x2
        assert float(first["end_us"]) <= float(second["start_us"]), seq
        assert float(second["end_us"]) <= float(memset["start_us"])
        assert float(memset["end_us"]) <= float(copy["start_us"])
        assert len(child) == 2 and float(copy["end_us"]) <= min(float(c["start_us"]) for c in child)
        assert int(copy["bytes"]) == 4096 and int(memset["bytes"]) == 4096
    grids = [int(r["grid"].split("x")[0]) for ops in replays.values() for r in ops
             if r["name"].startswith("node_second")]
    assert grids == [GRID, GRID, GRID, GRID // 2, GRID // 4]
    assert run.summary["unimplemented"] == []
