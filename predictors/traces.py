"""Trace rows: the one schema real GPU traces are stored in (data/<gpu>/*.jsonl.zst or *.parquet).

A row is a tw_desc with its name and a measured duration: the same fields and the same `dims`
meaning per kind as records.h, so a row converts to a descriptor with `from_wire` and the table
and xgb predictors see exactly what the shim sends.

    {"gpu": "h100", "workload": "gemm_sweep", "seq": 17, "kind": "kernel" | "gemm" | "memcpy" |
     "memset" | "attention" | "conv" | "collective" | "library" | "e2e", "name": str,
     "grid": [x, y, z], "block": [x, y, z], "smem": int, "stream": int, "dims": [8 ints],
     "dtype": int (tw_dtype), "dtype_out": int, "flags": int, "bytes": int, "flops": int,
     "duration_ns": int}

kind "e2e" rows are the workload's own end-to-end timings (name = what was timed).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Iterable
from pathlib import Path

from predictors.descriptors import WIRE_FIELDS, Descriptor, OpKind, from_wire, to_wire

log = logging.getLogger(__name__)

KIND_NAMES: dict[OpKind, str] = {
    OpKind.KERNEL: "kernel", OpKind.MEMCPY: "memcpy", OpKind.MEMSET: "memset", OpKind.GEMM: "gemm",
    OpKind.CONV: "conv", OpKind.ATTENTION: "attention", OpKind.FFT: "fft", OpKind.SOLVER: "solver",
    OpKind.COLLECTIVE: "collective", OpKind.LIBRARY: "library",
}
KIND_BY_NAME = {text: kind for kind, text in KIND_NAMES.items()}
TRACE_SUFFIXES = (".jsonl.zst", ".jsonl", ".parquet")


def empty_row(kind: str, name: str, duration_ns: int, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {"gpu": "", "workload": "", "seq": 0, "kind": kind, "name": name,
                              "grid": [1, 1, 1], "block": [1, 1, 1], "smem": 0, "stream": 0, "dims": [0] * 8,
                              "dtype": 0, "dtype_out": 0, "flags": 0, "bytes": 0, "flops": 0,
                              "duration_ns": int(duration_ns)}
    row.update(extra)
    return row


def row_from_desc(desc: Descriptor, duration_ns: int, **extra: object) -> dict[str, object]:
    wire, name = to_wire(desc)
    kind = KIND_NAMES[OpKind(int(wire["kind"]))]  # type: ignore[arg-type]
    return empty_row(kind, name, duration_ns, grid=list(wire["grid"]), block=list(wire["block"]),  # type: ignore[call-overload]
                     smem=wire["smem_bytes"], dims=list(wire["dims"]), dtype=wire["dtype_a"],  # type: ignore[call-overload]
                     dtype_out=wire["dtype_out"], flags=wire["flags"], bytes=wire["bytes"], flops=wire["flops"],
                     **extra)


def desc_from_row(row: dict[str, object]) -> Descriptor:
    kind = KIND_BY_NAME.get(str(row["kind"]))
    if kind is None:
        raise ValueError(f"row kind {row['kind']!r} is not a GPU op")
    dims = [int(v) for v in (list(row.get("dims") or []) + [0] * 8)[:8]]  # type: ignore[call-overload]
    wire: dict[str, object] = {key: 0 for key in WIRE_FIELDS}
    dtype = int(row.get("dtype") or 0)  # type: ignore[call-overload]
    dtype_out = int(row.get("dtype_out") or 0) or dtype  # type: ignore[call-overload]
    wire.update(kind=int(kind), grid=list(row.get("grid") or [1, 1, 1]), block=list(row.get("block") or [1, 1, 1]),  # type: ignore[call-overload]
                smem_bytes=int(row.get("smem") or 0), dims=dims, dtype_a=dtype, dtype_b=dtype,  # type: ignore[call-overload]
                dtype_out=dtype_out, dtype_compute=int(row.get("dtype_compute") or 0),  # type: ignore[call-overload]
                flags=int(row.get("flags") or 0), bytes=int(row.get("bytes") or 0),  # type: ignore[call-overload]
                flops=int(row.get("flops") or 0))  # type: ignore[call-overload]
    return from_wire(wire, str(row.get("name") or ""))


def write_rows(rows: Iterable[dict[str, object]], path: Path) -> Path:
    """Write rows as .jsonl.zst (default), .jsonl or .parquet by the path's suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = list(rows)
    name = path.name
    if name.endswith(".parquet"):
        import pandas as pd

        pd.DataFrame(rows).to_parquet(path, index=False)
        return path
    text = "".join(json.dumps(row, sort_keys=True, default=_json_default) + "\n" for row in rows).encode()
    if name.endswith(".zst"):
        import zstandard

        path.write_bytes(zstandard.ZstdCompressor(level=19).compress(text))
    else:
        path.write_bytes(text)
    return path


def _json_default(value: object) -> object:
    if hasattr(value, "tolist"):
        return value.tolist()  # numpy arrays and scalars
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_rows(path: Path) -> list[dict[str, object]]:
    name = path.name
    if name.endswith(".parquet"):
        import pandas as pd

        frame = pd.read_parquet(path)
        rows = frame.to_dict(orient="records")
        for row in rows:
            for key in ("grid", "block", "dims"):
                if key in row and hasattr(row[key], "tolist"):
                    row[key] = row[key].tolist()
        return rows
    data = path.read_bytes()
    if name.endswith(".zst"):
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data))
        data = reader.read()
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def trace_files(data_dir: Path, gpu: str) -> list[Path]:
    folder = data_dir / gpu
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name.endswith(TRACE_SUFFIXES))


def load_rows(data_dir: Path, gpu: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for path in trace_files(data_dir, gpu):
        rows.extend(read_rows(path))
    log.info("loaded %d trace rows for %s from %s", len(rows), gpu, data_dir)
    return rows


def rows_sha256(rows: Iterable[dict[str, object]]) -> str:
    """A hash of the rows' content, independent of file format: versions a trained model."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row, sort_keys=True, default=_json_default).encode())
        digest.update(b"\n")
    return digest.hexdigest()
