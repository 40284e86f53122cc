"""Persistent prediction cache: one sqlite file per (GPU key, predictor name, predictor version).

Loaded whole at start (lookups are then dict hits), new entries written at flush (periodically
and at shutdown). Concurrent runs sharing a file is safe: sqlite serialises writers and
INSERT OR REPLACE of an equal key stores an equal value."""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)


def cache_file(directory: Path, gpu: str, predictor: str, version: str, abi_version: int) -> Path:
    def clean(part: str) -> str:
        return re.sub(r"[^A-Za-z0-9_.+-]", "_", part) or "_"

    return directory / f"{clean(gpu)}--{clean(predictor)}--{clean(version)}--abi{abi_version}.sqlite"


class PredictionCache:
    """key (bytes) -> (duration_ns, tw_model); optionally backed by a file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._entries: dict[bytes, tuple[int, int]] = {}
        self._unsaved: dict[bytes, tuple[int, int]] = {}
        self._lock = threading.Lock()
        self.loaded_entries = 0
        if path is not None:
            self._load(path)

    def _connect(self, path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, timeout=10)
        db.execute("CREATE TABLE IF NOT EXISTS predictions "
                   "(key BLOB PRIMARY KEY, duration_ns INTEGER NOT NULL, model INTEGER NOT NULL)")
        return db

    def _load(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = self._connect(path)
            try:
                rows = db.execute("SELECT key, duration_ns, model FROM predictions").fetchall()
            finally:
                db.close()
        except sqlite3.Error as exc:
            # A damaged cache costs only time: predict afresh and say so.
            log.warning("prediction cache %s unreadable (%s): starting empty", path, exc)
            return
        self._entries = {bytes(key): (int(duration), int(model)) for key, duration, model in rows}
        self.loaded_entries = len(self._entries)
        log.info("prediction cache %s: %d entries loaded", path, self.loaded_entries)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> tuple[int, int] | None:
        return self._entries.get(key)

    def put(self, key: bytes, value: tuple[int, int]) -> None:
        with self._lock:
            self._entries[key] = value
            self._unsaved[key] = value

    def flush(self) -> int:
        """Write entries added since the last flush; returns how many."""
        if self.path is None:
            return 0
        with self._lock:
            pending, self._unsaved = self._unsaved, {}
        if not pending:
            return 0
        try:
            db = self._connect(self.path)
            try:
                with db:
                    db.executemany("INSERT OR REPLACE INTO predictions VALUES (?, ?, ?)",
                                   [(key, d, m) for key, (d, m) in pending.items()])
            finally:
                db.close()
        except sqlite3.Error as exc:
            log.error("prediction cache %s: writing %d entries failed: %s", self.path, len(pending), exc)
            with self._lock:
                pending.update(self._unsaved)
                self._unsaved = pending
            return 0
        log.info("prediction cache %s: %d entries written", self.path, len(pending))
        return len(pending)
