"""One emulated run: spec, clock page, coordinator, the program, the outputs."""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from emulator import environment, monitor
from predictors import catalog
from shim import abi

log = logging.getLogger(__name__)

POLL_S = 0.1          # supervision period: dead peers and crashes are seen this fast
CRASH_GRACE_S = 2.0   # after a crash report, time for the program to notice and exit by itself
TERM_GRACE_S = 1.5    # after SIGTERM, before SIGKILL


@dataclass
class RunResult:
    exit_status: int
    run_dir: Path
    summary: dict = field(default_factory=dict)


def default_run_dir(gpu_key: str) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{stamp}-{gpu_key}"


def write_clock_page(run_dir: Path, cpu_speed: float = 1.0, host_cores: int = 0) -> Path:
    """The shared clock page every shim maps (records.h tw_clock_page): virtual time starts at the
    host's monotonic now and runs at the CPU speed until the governor measures better; realtime is
    fixed to the host's now."""
    ffi = abi.ffi()
    page = ffi.new("tw_clock_page *")
    page.magic = abi.constant("TW_CLOCK_MAGIC")
    page.abi_version = abi.constant("TW_ABI_VERSION")
    mono = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    page.base_host_ns = page.base_virtual_ns = mono
    speed_ppm = round(cpu_speed * abi.constant("TW_RATE_ONE_PPM"))
    page.rate_ppm = page.cpu_rate_ppm = page.cpu_speed_ppm = speed_ppm
    page.host_cores = host_cores
    page.realtime_minus_mono_ns = time.clock_gettime_ns(time.CLOCK_REALTIME) - mono
    page.run_start_mono_ns = mono
    path = run_dir / "clock.page"
    path.write_bytes(bytes(ffi.buffer(page)))
    # The shims create these tables on first use (all-zero is empty); a reused run directory
    # must not hand them the last run's threads, communicators or device memory.
    for stale in ("actors.page", "collectives.page", "collectives.data", "devices.page", "deadlock.txt"):
        (run_dir / stale).unlink(missing_ok=True)
    return path


def _start_governor(run_dir: Path) -> subprocess.Popen:
    """The clock's governor (shim/tools/governor.c): a program outside the shim that dilates the
    clock's rate by the CPU the run's threads get, for the whole run."""
    from shim import build

    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    return subprocess.Popen([str(build.governor_path()), str(run_dir)], env=env, stdin=subprocess.DEVNULL,
                            stderr=open(run_dir / "governor.log", "w"))  # noqa: SIM115 - closed with the process


def _exit_status(returncode: int) -> tuple[int, int | None]:
    """Shell-style status (128 + signal for a signalled child) and the signal."""
    if returncode < 0:
        return 128 - returncode, -returncode
    return returncode, None


def run_command(cmd: list[str], *, gpu: str = "h100", gpus: int = 1, predictor: str = "auto",
                out: Path | None = None, predictor_options: dict | None = None, log_level: int | None = None,
                write_outputs: bool = True, allow_degraded: bool = False, cpu_speed: float = 1.0,
                host_cores: int | None = None) -> RunResult:
    """Run CMD emulated on `gpus` GPUs of kind `gpu`; returns its status and run directory.

    Raises catalog.UnknownGpuError for an unknown GPU name.
    """
    spec = catalog.get_spec(gpu)
    run_dir = Path(out) if out is not None else default_run_dir(spec.key)
    run_dir.mkdir(parents=True, exist_ok=True)
    for folder in ("proc", "crash"):
        (run_dir / folder).mkdir(exist_ok=True)
        for stale in (run_dir / folder).iterdir():
            stale.unlink()
    spec_path = run_dir / "spec.env"
    spec_path.write_text(catalog.spec_env_text(spec, gpus))
    if host_cores is None:
        host_cores = catalog.host_spec(spec.key).cores
    write_clock_page(run_dir, cpu_speed, host_cores)
    shim_library = environment.ensure_shim()
    governor = _start_governor(run_dir)

    from coordinator import launch as coordinator_launch

    coordinator = coordinator_launch.start(run_dir, spec.key, gpus, predictor, predictor_options or {})
    env = environment.program_environment(
        dict(os.environ), shim_library=shim_library, run_dir=run_dir.resolve(), coordinator=coordinator.address,
        spec_path=spec_path.resolve(), gpus=gpus, log_level=log_level, allow_degraded=allow_degraded)
    started_at = _dt.datetime.now(_dt.timezone.utc).isoformat()
    wall_start = time.monotonic()
    exit_status: int
    exit_signal: int | None = None
    ended_by: dict | None = None
    try:
        try:
            monitor.become_subreaper()
            child = subprocess.Popen(cmd, env=env)
        except FileNotFoundError:
            log.error("%s: command not found", cmd[0])
            exit_status = 127
        except PermissionError:
            log.error("%s: permission denied", cmd[0])
            exit_status = 126
        else:
            exit_status, exit_signal, ended_by = _supervise(child, run_dir)
    finally:
        wall_time_s = time.monotonic() - wall_start
        coordinator.stop()
        governor.terminate()
        governor.wait()
    run_info = {
        "command": list(cmd),
        "exit_status": exit_status if exit_signal is None else None,
        "exit_signal": exit_signal,
        "shell_status": exit_status,
        "wall_time_s": wall_time_s,
        "gpu": {"key": spec.key, "name": spec.name, "count": gpus},
        "predictor": predictor,
        "allow_degraded": allow_degraded,
        "switches": environment.switches_set(env, dict(os.environ)),
        "cpu_speed": cpu_speed,
        "host_cores": host_cores,
        "timewarp_version": _version(),
        "started_at": started_at,
        "ended_by": ended_by,
    }
    (run_dir / "run.json").write_text(json.dumps(run_info, indent=2))
    from emulator.outputs.records import trim_trace_files

    trim_trace_files(run_dir)
    summary: dict = {}
    if write_outputs:
        from emulator.outputs import write_outputs as render

        summary = render(run_dir)
    return RunResult(exit_status, run_dir, summary)


def _supervise(child: subprocess.Popen, run_dir: Path) -> tuple[int, int | None, dict | None]:
    """Wait for the command while watching the run (emulator/monitor.py): SIGINT/SIGTERM to
    emulate go to the program; a crash of any process of the run ends it within
    CRASH_GRACE_S + TERM_GRACE_S (the program may first notice and exit by itself); when the
    command ends, processes of the run it left behind are ended too."""
    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    watch = monitor.RunMonitor(run_dir, child.pid)
    ended_by: dict | None = None
    crash_seen_at: float | None = None
    terminated_at: float | None = None
    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            try:
                returncode = child.wait(timeout=POLL_S)
                break
            except subprocess.TimeoutExpired:
                pass
            crash = watch.poll()
            now = time.monotonic()
            if crash is not None and crash_seen_at is None:
                crash_seen_at = now
                ended_by = _ended_by_crash(crash)
                log.error("timewarp: %s: ending the run (report: %s)", crash.headline, crash.path)
            elif watch.collective_failure is not None and crash_seen_at is None:
                # its peers wait for a rank that cannot come: nothing to give time to
                crash_seen_at = now - CRASH_GRACE_S
                ended_by = {"reason": "collective", "cause": watch.collective_failure}
                log.error("timewarp: %s: ending the run", watch.collective_failure)
            if crash_seen_at is not None and terminated_at is None and now - crash_seen_at > CRASH_GRACE_S:
                terminated_at = now
                _signal_all(watch.run_pids(), signal.SIGTERM)
            if terminated_at is not None and now - terminated_at > TERM_GRACE_S:
                _signal_all(watch.run_pids(), signal.SIGKILL)
        crash = watch.poll()   # the command itself may be what crashed
        if crash is not None and ended_by is None:
            ended_by = _ended_by_crash(crash)
        _end_leftovers(watch)
        if watch.dead_actor_pids and ended_by is not None:
            ended_by["dead_without_exit"] = watch.dead_actor_pids
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        watch.close()
    status, sig = _exit_status(returncode)
    return status, sig, ended_by


def _ended_by_crash(crash: monitor.Crash) -> dict:
    # "ended by timewarp" heads the reports of processes the emulation itself had to end
    # (shim/src/crash.c tw_fatal): predictions unavailable, collectives that cannot match.
    reason = "emulation" if " ended by timewarp: " in crash.headline else "crash"
    return {"reason": reason, "pid": crash.pid, "cause": crash.headline, "report": str(crash.path)}


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _end_leftovers(watch: monitor.RunMonitor) -> None:
    """The command has ended: what it left running of the run gets SIGTERM, then SIGKILL."""
    left = watch.run_pids()
    if not left:
        return
    log.info("ending %d process(es) the command left running: %s", len(left), left)
    _signal_all(left, signal.SIGTERM)
    deadline = time.monotonic() + TERM_GRACE_S
    while left and time.monotonic() < deadline:
        time.sleep(POLL_S)
        watch.poll()
        left = watch.run_pids()
    _signal_all(left, signal.SIGKILL)
    for _ in range(10):
        watch.poll()   # reaps the orphans among them
        if not watch.run_pids():
            break
        time.sleep(POLL_S / 2)


def _version() -> str:
    from emulator import __version__

    return __version__
