"""User errors of `emulate validate` and `emulate report`: one line naming the problem and exit
status 2, never a traceback; a partly damaged run directory is rendered with each skipped file
named (summary.json "unreadable")."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from test_outputs import T0, TraceFile, gpu_op
from timewarp_testing import REPO, emulate_cli

from shim.build import _first_error


def one_line_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert all(w in lines[0] for w in words), lines[0]


def test_validate_with_a_missing_trace(tmp_path: Path) -> None:
    one_line_error(emulate_cli("validate", "--real", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "v"),
                               "--", "true"), "none.jsonl", "no such file")


def test_validate_with_an_unparsable_trace(tmp_path: Path) -> None:
    for name, content in (("bad.json", b"not json"), ("bad.jsonl", b'{"kind": "kernel"'), ("empty.jsonl", b"")):
        trace = tmp_path / name
        trace.write_bytes(content)
        proc = emulate_cli("validate", "--real", str(trace), "--out", str(tmp_path / "v"), "--", "true")
        one_line_error(proc, name)
        assert "cannot read it" in proc.stderr or "no GPU ops" in proc.stderr, proc.stderr
    assert not (tmp_path / "v" / "run").exists()   # refused before the program ran


def test_validate_with_an_unknown_gpu(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_text(json.dumps({"kind": "kernel", "name": "k", "duration_ns": 1000}) + "\n")
    one_line_error(emulate_cli("validate", "--real", str(trace), "--gpu", "h900", "--", "true"), "unknown GPU 'h900'")


def test_report_on_a_damaged_run_directory(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "proc").mkdir(parents=True)
    (run_dir / "proc" / "7.trace").write_bytes(b"xx")
    one_line_error(emulate_cli("report", str(run_dir)), "damaged run directory", "7.trace")
    assert not (run_dir / "summary.json").exists()
    (run_dir / "proc" / "7.trace").unlink()
    one_line_error(emulate_cli("report", str(run_dir)), "no process traces")


def test_report_names_each_damaged_file_and_renders_the_rest(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "proc").mkdir(parents=True)
    good = TraceFile(pid=500, ppid=1, start_ns=T0, exit_ns=T0 + 1_000_000)
    gpu_op(good, "GEMM", "cublasLt", 100_000, 300_000, seq=1, issue_ns=T0 + 90_000, dims=(4096, 8, 4096, 1))
    good.write(run_dir)
    shutil.copy(run_dir / "proc" / "500.trace", run_dir / "proc" / "501.trace")
    with open(run_dir / "proc" / "501.trace", "r+b") as f:
        f.write(b"\0" * 8)   # its magic
    (run_dir / "run.json").write_text("{not json")
    proc = emulate_cli("report", str(run_dir))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    warnings = proc.stderr.strip().splitlines()
    assert len(warnings) == 2 and "501.trace: not a timewarp trace" in warnings[0] and "run.json" in warnings[1], \
        proc.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert len(summary["unreadable"]) == 2 and summary["kernels"]["count"] == 1


def test_a_shim_that_cannot_build_is_one_line(tmp_path: Path) -> None:
    """No `make` on PATH: the run stops before the program starts, naming what is missing."""
    proc = subprocess.run([sys.executable, "-m", "emulator", "--out", str(tmp_path / "run"), "--", "/bin/true"],
                          capture_output=True, text=True, cwd=REPO, timeout=120, env={**os.environ, "PATH": ""})
    one_line_error(proc, "building the shim needs `make`")


def test_a_compile_error_is_named_by_its_first_error_line() -> None:
    output = ("cc -O2 -c src/launch.c -o build/launch.o\n"
              "src/launch.c: In function 'tw_launch':\n"
              "src/launch.c:12:5: error: unknown type name 'tw_nope'\n"
              "src/launch.c:40:1: error: expected ';' before '}' token\n"
              "make: *** [Makefile:30: build/launch.o] Error 1\n")
    assert _first_error(output) == "src/launch.c:12:5: error: unknown type name 'tw_nope'"
    assert _first_error("make: *** No rule to make target 'x'.  Stop.\n").startswith("make: ***")
