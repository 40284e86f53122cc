"""Shared fixtures: build the shim once, run commands under `emulate`, find nvcc."""

from __future__ import annotations

from pathlib import Path

import pytest
from timewarp_testing import EmulatedRun, run_emulated


@pytest.fixture(scope="session")
def shim_lib() -> Path:
    from shim import build

    return build.build()


@pytest.fixture
def emulate(shim_lib: Path, tmp_path: Path):  # noqa: ANN201 - returns a runner callable
    counter = iter(range(1000))

    def runner(cmd: list[str], **kwargs: object) -> EmulatedRun:
        return run_emulated(cmd, tmp_path / f"run{next(counter)}", **kwargs)  # type: ignore[arg-type]

    return runner


@pytest.fixture(scope="session")
def nvcc() -> str:
    """nvcc from PyPI (scripts/setup.sh installs nvidia-cuda-nvcc), in the CUDA_HOME emulate gives
    programs: never a system toolkit's, and never a skip: a missing compiler fails the tests."""
    from emulator import environment

    home = environment.cuda_home()
    if home is None:
        pytest.fail("no nvcc from PyPI in this environment: run scripts/setup.sh (it installs nvidia-cuda-nvcc)")
    return str(home / "bin" / "nvcc")


@pytest.fixture(scope="session")
def cuda_bin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cuda_bin")
