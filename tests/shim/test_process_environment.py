"""The shim keeps what it read from the environment when the program rewrites it in place."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CUDA_DIR = Path(__file__).resolve().parent / "cuda"


def test_environment_rewritten_in_place_keeps_predictions(emulate, tmp_path: Path) -> None:  # noqa: ANN001
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.fail("a C compiler is needed (setup installs none: it is a prerequisite)")
    exe = tmp_path / "env_rewrite"
    subprocess.run([cc, "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-o", str(exe),
                    str(CUDA_DIR / "env_rewrite.c"), "-ldl"], check=True, capture_output=True, text=True)
    run = emulate([str(exe)])
    assert run.exit_status == 0, run.stderr[-3000:]
    assert "done 1" in run.stdout
    assert "coordinator" not in run.stderr, run.stderr[-3000:]
    models = run.summary["predictions_by_model"]
    # both memsets (1 MiB, 48 MiB), issued after the rewrite, were predicted by the coordinator
    assert models.get("floor", 0) == 0, models
    assert sum(models.values()) >= 2, models
