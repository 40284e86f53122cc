"""Reading a run directory: the per-process record files, their names, run.json and spec.env.

The record layout comes from records.h through cffi (shim/abi.py); a numpy structured dtype is
built from cffi's offsets and sizes so that millions of records load with one read and no
per-record Python work.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shim import abi

log = logging.getLogger(__name__)

_PRIMITIVES = {
    "uint8_t": "u1", "int8_t": "i1", "uint16_t": "u2", "int16_t": "i2",
    "uint32_t": "u4", "int32_t": "i4", "uint64_t": "u8", "int64_t": "i8",
}


def _numpy_format(ctype: Any) -> Any:  # noqa: ANN401 - cffi CType in, numpy format out
    if ctype.kind == "primitive":
        return "<" + _PRIMITIVES[ctype.cname]
    if ctype.kind == "enum":
        return "<u4"
    if ctype.kind == "array":
        return (_numpy_format(ctype.item), (ctype.length,))
    if ctype.kind == "struct":
        return struct_dtype(ctype.cname)
    raise TypeError(f"no numpy layout for {ctype.cname}")


@functools.cache
def struct_dtype(cname: str) -> np.dtype:
    """A numpy dtype with exactly the C layout (offsets, padding, size) of a records.h struct."""
    ffi = abi.ffi()
    ctype = ffi.typeof(cname)
    names, formats, offsets = [], [], []
    for name, fld in ctype.fields:
        names.append(name)
        formats.append(_numpy_format(fld.type))
        offsets.append(fld.offset)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": ffi.sizeof(ctype)})


def _enum_names(enum: str, prefix: str) -> dict[int, str]:
    elements = abi.ffi().typeof(f"enum {enum}").elements
    return {value: name[len(prefix):].lower() for value, name in elements.items()}


@functools.lru_cache(maxsize=1)
def op_kind_names() -> dict[int, str]:
    """enum tw_op_kind value -> "kernel", "memcpy", ... (the names used in every output)."""
    names = _enum_names("tw_op_kind", "TW_OP_")
    names.pop(abi.constant("TW_OP_KIND_COUNT"), None)
    return names


@functools.lru_cache(maxsize=1)
def model_names() -> dict[int, str]:
    """enum tw_model value -> "roofline", "table", ..."""
    return _enum_names("tw_model", "TW_MODEL_")


@functools.lru_cache(maxsize=1)
def copy_kind_names() -> dict[int, str]:
    return {
        abi.constant("TW_COPY_H2D_PAGEABLE"): "HtoD pageable", abi.constant("TW_COPY_H2D_PINNED"): "HtoD pinned",
        abi.constant("TW_COPY_D2H_PAGEABLE"): "DtoH pageable", abi.constant("TW_COPY_D2H_PINNED"): "DtoH pinned",
        abi.constant("TW_COPY_D2D"): "DtoD", abi.constant("TW_COPY_H2H"): "HtoH", abi.constant("TW_COPY_PEER"): "peer",
    }


def rec(name: str) -> int:
    """A record kind constant by its short name: rec("GPU_OP") == TW_REC_GPU_OP."""
    return abi.constant(f"TW_REC_{name}")


@dataclass
class ProcessRecords:
    """One process's trace file: its header fields, its committed records, its names."""

    pid: int
    ppid: int
    start_virtual_ns: int
    start_wall_ns: int
    exit_virtual_ns: int      # 0 while running or after a crash
    exit_status: int
    exit_signal: int
    records: np.ndarray       # struct_dtype("tw_record"), TW_REC_EMPTY slots removed, file order
    names: dict[int, str] = field(default_factory=dict)

    @property
    def crashed(self) -> bool:
        return self.exit_virtual_ns == 0 or self.exit_signal != 0

    def name(self, name_id: int, default: str = "") -> str:
        return self.names.get(int(name_id), default)

    def of_kind(self, kind: str) -> np.ndarray:
        return self.records[self.records["kind"] == rec(kind)]

    def marks(self, prefix: str) -> list[tuple[int, str, int]]:
        """(virtual ns, the rest of the text, value) of each MARK record whose text starts with
        prefix, in time order (then file order)."""
        mark = self.of_kind("MARK")
        found = [(int(at), self.name(int(name_id)), int(value)) for at, name_id, value in
                 zip(mark["begin_ns"].tolist(), mark["name_id"].tolist(), mark["value"].tolist(), strict=True)]
        return sorted(((at, text[len(prefix):], value) for at, text, value in found if text.startswith(prefix)),
                      key=lambda m: m[0])

    @property
    def command(self) -> str:
        """The process's arguments joined by spaces (the shim's "command" mark; cut at 1000
        bytes), or "" for a trace written before the shim recorded it."""
        found = self.marks("command ")
        return found[-1][1] if found else ""

    def http_requests(self) -> list[tuple[int, str]]:
        """(virtual ns, "METHOD /path") of each HTTP request this process sent on a TCP
        connection it opened: when its request line was written (shim/src/http_requests.c)."""
        return [(at, what) for at, what, _ in self.marks("http request ")]

    def http_served(self) -> list[tuple[int, str, int]]:
        """What this process did as an HTTP server, on the connections it accepted: (virtual ns,
        "received METHOD /path" | "response STATUS" | "chunk", connection number)."""
        return [(at, what, conn) for at, what, conn in self.marks("http ")
                if what.startswith(("received ", "response ", "chunk"))]

    @property
    def end_virtual_ns(self) -> int:
        """Exit time, or for a process that never exited cleanly the last time it recorded."""
        if self.exit_virtual_ns:
            return self.exit_virtual_ns
        if len(self.records) == 0:
            return self.start_virtual_ns
        r = self.records
        return int(max(r["end_ns"].max(), r["begin_ns"].max(), r["issue_ns"].max(), self.start_virtual_ns))


@dataclass
class RunRecords:
    """Everything a run directory holds, parsed."""

    run_dir: Path
    processes: list[ProcessRecords]
    run_info: dict[str, Any]   # run.json ({} when absent)
    spec: dict[str, str]       # spec.env ({} when absent)
    unreadable: list[str] = field(default_factory=list)   # "<file>: why" for each file skipped (the
                                                          # summary's "unreadable"; the CLI says it)

    @property
    def start_virtual_ns(self) -> int:
        starts = [p.start_virtual_ns for p in self.processes if p.start_virtual_ns]
        return min(starts) if starts else 0

    @property
    def end_virtual_ns(self) -> int:
        return max((p.end_virtual_ns for p in self.processes), default=self.start_virtual_ns)

    @property
    def record_count(self) -> int:
        return sum(len(p.records) for p in self.processes)


def read_names(path: Path) -> dict[int, str]:
    """`id<TAB>name` lines; a torn last line (crash mid-write) is skipped."""
    names: dict[int, str] = {}
    if not path.exists():
        return names
    with path.open("r", encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            key, sep, name = line.partition("\t")
            if not sep or not key.isdigit():
                continue
            names[int(key)] = name
    return names


def read_trace(path: Path) -> ProcessRecords:
    """One proc/<pid>.trace file."""
    header_dtype = struct_dtype("tw_trace_header")
    record_dtype = struct_dtype("tw_record")
    header_bytes = abi.constant("TW_TRACE_HEADER_BYTES")
    size = path.stat().st_size
    if size < header_dtype.itemsize:
        raise ValueError(f"{path}: {size} bytes, shorter than a trace header")
    header = np.fromfile(path, dtype=header_dtype, count=1)[0]
    if int(header["magic"]) != abi.constant("TW_TRACE_MAGIC"):
        raise ValueError(f"{path}: not a timewarp trace (magic {int(header['magic']):#x})")
    if int(header["abi_version"]) != abi.constant("TW_ABI_VERSION"):
        raise ValueError(f"{path}: ABI version {int(header['abi_version'])}, this reader knows "
                         f"{abi.constant('TW_ABI_VERSION')}")
    if int(header["record_bytes"]) != record_dtype.itemsize:
        raise ValueError(f"{path}: records of {int(header['record_bytes'])} bytes, expected {record_dtype.itemsize}")
    claimed = int(header["record_count"])
    present = max(0, (size - header_bytes) // record_dtype.itemsize)
    if claimed > present:
        log.warning("%s: %d records claimed, %d in the file; reading those", path, claimed, present)
    count = min(claimed, present)
    records = np.fromfile(path, dtype=record_dtype, count=count, offset=header_bytes) if count else \
        np.zeros(0, dtype=record_dtype)
    records = records[records["kind"] != rec("EMPTY")]
    return ProcessRecords(
        pid=int(header["pid"]), ppid=int(header["ppid"]),
        start_virtual_ns=int(header["start_virtual_ns"]), start_wall_ns=int(header["start_wall_ns"]),
        exit_virtual_ns=int(header["exit_virtual_ns"]), exit_status=int(header["exit_status"]),
        exit_signal=int(header["exit_signal"]), records=records,
        names=read_names(path.with_suffix(".names")),
    )


def trim_trace_files(run_dir: Path) -> None:
    """Cut each proc/<pid>.trace to its records once the run is over (the shim leaves the mapped
    length: a process may record until its last instruction, and cutting under it would fault)."""
    header_dtype = struct_dtype("tw_trace_header")
    header_bytes = abi.constant("TW_TRACE_HEADER_BYTES")
    for path in sorted((run_dir / "proc").glob("*.trace")):
        if path.stat().st_size < header_dtype.itemsize:
            continue
        header = np.fromfile(path, dtype=header_dtype, count=1)[0]
        used = header_bytes + int(header["record_count"]) * int(header["record_bytes"])
        if int(header["magic"]) == abi.constant("TW_TRACE_MAGIC") and used < path.stat().st_size:
            os.truncate(path, used)


def read_spec(path: Path) -> dict[str, str]:
    spec: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not line.lstrip().startswith("#"):
                spec[key.strip()] = value.strip()
    return spec


def load_run(run_dir: Path) -> RunRecords:
    """Parse every process's records, run.json and spec.env of a run directory."""
    run_dir = Path(run_dir)
    processes = []
    unreadable: list[str] = []
    for path in sorted((run_dir / "proc").glob("*.trace")):
        try:
            processes.append(read_trace(path))
        except ValueError as err:   # read_trace names the file and what is wrong with it
            unreadable.append(str(err))
    processes.sort(key=lambda p: (p.start_virtual_ns, p.pid))
    run_json = run_dir / "run.json"
    run_info: dict[str, Any] = {}
    if run_json.exists():
        try:
            run_info = json.loads(run_json.read_text())
        except ValueError as err:
            unreadable.append(f"{run_json}: {err}")
    return RunRecords(run_dir=run_dir, processes=processes, run_info=run_info, spec=read_spec(run_dir / "spec.env"),
                      unreadable=unreadable)
