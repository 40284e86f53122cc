"""Kernels the shim evaluates on the host when their buffers are host-backed (shim/src/kernel_data.c):
torch's fills, additions, products, comparisons, concatenations and reductions on small CUDA
tensors give, under emulate, exactly what the same operations give on the CPU. Without the
evaluation every case reads stale memory (the allocator reuses blocks, and kernels never run)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from e2e.frameworks import SGLANG, VLLM_0_33, Framework, interpreter
from timewarp_testing import requires_cuda_torch

pytestmark = requires_cuda_torch

PROGRAM = Path(__file__).resolve().parent / "kernel_data_values.py"


def run_values(emulate, python: str = sys.executable) -> dict[str, tuple[str, str]]:  # noqa: ANN001
    run = emulate([python, str(PROGRAM)])
    assert run.exit_status == 0, f"{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    values = {}
    for line in run.stdout.splitlines():
        if line.startswith("RESULT "):
            name, gpu, cpu = line.split()[1:]
            values[name] = (gpu, cpu)
    assert run.summary["unimplemented"] == []
    return values


# torch 2.13 (this environment), 2.14.0 (vLLM 0.33's) and 2.14.1 (SGLang's): the kernels' names
# change between releases (2.14's vectorized_elementwise_kernel has a fourth template argument)
@pytest.mark.parametrize("torch_of", [None, VLLM_0_33, SGLANG], ids=["torch-2.13", "torch-2.14.0", "torch-2.14.1"])
def test_small_tensor_kernels_match_the_cpu(emulate, torch_of: Framework | None) -> None:  # noqa: ANN001
    values = run_values(emulate, sys.executable if torch_of is None else interpreter(torch_of))
    sys.path.insert(0, str(PROGRAM.parent))
    try:
        import kernel_data_values
    finally:
        sys.path.pop(0)
    assert set(values) == {*kernel_data_values.cases(), "object_sizes", "item", "sampled"}
    # the ids a sampler draws from probabilities no kernel computed: index 0, never the stale 10**9
    assert values.pop("sampled") == ("[0,0,0,0,0,0,0,0]", "in-vocabulary")
    wrong = {name: pair for name, pair in values.items() if pair[0] != pair[1]}
    assert wrong == {}, wrong
    # the example, and what the object collectives compute: max 57, offsets 31, 88, 132
    assert values["item"] == ("12.0", "12.0")
    assert values["object_sizes"][0] == "[57,31,88,132]"
