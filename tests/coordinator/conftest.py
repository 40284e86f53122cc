"""Fixtures for the coordinator tests: a running coordinator with a private prediction cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from coordinator_helpers import predictors_problem


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("prediction_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TIMEWARP_CACHE_DIR", str(path))
        yield path


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Iterator[object]:
    if predictors_problem() is not None:
        pytest.skip(str(predictors_problem()))
    from coordinator import launch

    handle = launch.start(tmp_path_factory.mktemp("run"), "h100", gpus=2, predictor="roofline", options={})
    yield handle
    handle.stop()
