"""The shim's shared structures for Python, read through cffi from the one C header."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import cffi

RECORDS_HEADER = Path(__file__).resolve().parent / "include" / "timewarp" / "records.h"


def _cdef_source(text: str) -> str:
    """Drop what cffi's cdef does not parse: comments, guards, includes."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    kept = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") and not re.match(r"#define\s+TW_\w+\s+(0x[0-9a-fA-F]+|\d+)\s*$", stripped):
            continue
        kept.append(line)
    return "\n".join(kept)


@functools.lru_cache(maxsize=1)
def ffi() -> cffi.FFI:
    """A cffi FFI that knows every type and constant of records.h."""
    out = cffi.FFI()
    out.cdef(_cdef_source(RECORDS_HEADER.read_text()))
    return out


def constant(name: str) -> int:
    """An integer #define or enum value from records.h."""
    return int(getattr(_lib(), name))


@functools.lru_cache(maxsize=1)
def _lib():  # noqa: ANN202 - cffi's dlopen(None) namespace
    return ffi().dlopen(None)
