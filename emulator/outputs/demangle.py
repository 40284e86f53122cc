"""C++ name demangling through libstdc++'s __cxa_demangle (ctypes, no extra dependency), and
shortening of long template names for display."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def _cxa_demangle():  # noqa: ANN202 - a ctypes function or None
    for name in ("libstdc++.so.6", ctypes.util.find_library("stdc++")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        fn = lib.__cxa_demangle
        fn.restype = ctypes.c_void_p  # malloc'd buffer: freed with libc free below
        fn.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
        return fn
    log.warning("libstdc++ not found: C++ kernel names stay mangled")
    return None


@functools.lru_cache(maxsize=1)
def _free():  # noqa: ANN202 - ctypes function
    libc = ctypes.CDLL(None)
    fn = libc.free
    fn.argtypes = [ctypes.c_void_p]
    fn.restype = None
    return fn


@functools.lru_cache(maxsize=65536)
def demangle(name: str) -> str:
    """The demangled C++ name, or the name itself when it is not a mangled name."""
    if not name.startswith("_Z"):
        return name
    fn = _cxa_demangle()
    if fn is None:
        return name
    status = ctypes.c_int(0)
    out = fn(name.encode(), None, None, ctypes.byref(status))
    if not out:
        return name
    try:
        text = ctypes.string_at(out).decode("utf-8", "replace")
    finally:
        _free()(out)
    return text if status.value == 0 else name


def _collapse_templates(text: str, keep_depth: int) -> str:
    """Replace template argument lists nested deeper than keep_depth by <…>."""
    out: list[str] = []
    depth = 0
    for ch in text:
        if ch == "<":
            depth += 1
            if depth == keep_depth + 1:
                out.append("<…")
            elif depth <= keep_depth:
                out.append(ch)
        elif ch == ">" and depth > 0:
            if depth == keep_depth + 1:
                out.append(">")
            elif depth <= keep_depth:
                out.append(ch)
            depth -= 1
        elif depth <= keep_depth:
            out.append(ch)
    return "".join(out)


def _strip_signature(text: str) -> str:
    """Drop a leading `void ` and the trailing parameter list of a demangled function."""
    if text.startswith("void "):
        text = text[5:]
    if text.endswith(")"):
        depth = 0
        for i in range(len(text) - 1, -1, -1):
            if text[i] == ")":
                depth += 1
            elif text[i] == "(":
                depth -= 1
                if depth == 0:
                    # "(anonymous namespace)" is part of a name, not a parameter list
                    if i > 0 and text[:i].rstrip():
                        text = text[:i]
                    break
    return text


@functools.lru_cache(maxsize=65536)
def short_name(name: str, limit: int = 100) -> str:
    """A display form of a (demangled) name: no parameter list, deep templates collapsed,
    at most `limit` characters. The full name stays in the trace's args and in kernels.csv."""
    text = _strip_signature(name) if "(" in name else name
    for depth in (2, 1, 0):
        if len(text) <= limit:
            break
        text = _collapse_templates(text, depth)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text
