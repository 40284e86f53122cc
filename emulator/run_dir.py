"""Each run gets a directory of its own, and no run touches another's (docs/outputs.md).

* Without --out: runs/<time>-<gpu>, made by an exclusive mkdir, so a second run started in the
  same second gets <time>-<gpu>-2 (and so on) instead of sharing the first one's files.
* --out DIR: refused while DIR holds files (a previous run's, or anything else), unless --force;
  then the previous run's state is cleared as the run starts.
* A live run holds an exclusive lock on DIR/run.lock from before it writes anything until its
  outputs are written: another emulate pointed at DIR is refused even with --force, so nothing
  of a live run (its coordinator socket, its shared pages, its traces) is unlinked by another.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

LOCK_NAME = "run.lock"
MAX_SUFFIX = 1000


class RunDirError(Exception):
    """The run directory cannot be used: one line for the user (exit status 2)."""


@dataclass
class RunDirLock:
    """The lock a live run holds on its directory; release() once its outputs are written."""

    path: Path
    fd: int

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)   # closing the descriptor drops the flock
            self.fd = -1


def _fresh_default(gpu_key: str) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{stamp}-{gpu_key}"
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, MAX_SUFFIX):
        candidate = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise RunDirError(f"{MAX_SUFFIX} runs already started at {stamp}: choose a directory with --out")


def _live_run_error(run_dir: Path) -> RunDirError:
    try:
        pid = (run_dir / LOCK_NAME).read_text().strip()
    except OSError:
        pid = ""
    holder = f"emulate pid {pid}" if pid.isdigit() else "another emulate"
    return RunDirError(f"--out {run_dir}: a live run uses it ({holder}); choose another directory")


def _try_lock(lock_path: Path) -> int | None:
    """The locked descriptor, or None while a live run holds it."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _is_live(run_dir: Path) -> bool:
    lock_path = run_dir / LOCK_NAME
    if not lock_path.exists():
        return False
    fd = _try_lock(lock_path)
    if fd is None:
        return True
    os.close(fd)
    return False


def claim(out: Path | None, gpu_key: str, *, force: bool = False) -> tuple[Path, RunDirLock]:
    """The run's directory, locked for this run. Raises RunDirError with the reason."""
    if out is None:
        run_dir = _fresh_default(gpu_key)
    else:
        run_dir = Path(out)
        if run_dir.exists() and not run_dir.is_dir():
            raise RunDirError(f"--out {run_dir}: exists and is not a directory")
        if run_dir.is_dir() and any(run_dir.iterdir()):
            if _is_live(run_dir):
                raise _live_run_error(run_dir)
            if not force:
                raise RunDirError(f"--out {run_dir}: the directory holds files (a previous run?); choose an empty "
                                  "or new directory, or pass --force to replace its run")
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise RunDirError(f"--out {run_dir}: cannot create it ({err.strerror})") from None
    lock_path = run_dir / LOCK_NAME
    try:
        fd = _try_lock(lock_path)
    except OSError as err:
        raise RunDirError(f"--out {run_dir}: cannot write in it ({err.strerror})") from None
    if fd is None:   # another emulate claimed the same new directory a moment ago
        raise _live_run_error(run_dir)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return run_dir, RunDirLock(lock_path, fd)
