"""One emulated run, in four steps: prepare (spec, clock page, shim, coordinator, environment),
start (the command), supervise (crashes, dead peers, a serving run's client) and collect
(run.json, the outputs)."""

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
from emulator.run_dir import RunDirLock, claim
from emulator.serving_client import ClientSpec, ServingClient
from predictors import catalog
from shim import abi

log = logging.getLogger(__name__)

POLL_S = 0.1          # supervision period: dead peers and crashes are seen this fast
CRASH_GRACE_S = 2.0   # after a crash report, time for the program to notice and exit by itself
TERM_GRACE_S = 1.5    # after SIGTERM, before SIGKILL

__all__ = ["ClientSpec", "RunResult", "run_command", "write_clock_page"]


@dataclass
class RunResult:
    exit_status: int
    run_dir: Path
    summary: dict = field(default_factory=dict)


@dataclass
class Prepared:
    """What a run needs before its command starts."""

    spec: catalog.GpuSpec
    run_dir: Path
    gpus: int
    predictor: str
    allow_degraded: bool
    coordinator: object            # coordinator.launch's handle (stop())
    env: dict[str, str]
    set_by_emulate: dict[str, str]  # variables emulate added to the caller's environment
    governor: subprocess.Popen     # the clock's governor (shim/tools/governor.c)
    cpu_speed: float
    host_cores: int
    run_lock: RunDirLock            # held until the outputs are written (emulator/run_dir.py)


@dataclass
class Outcome:
    exit_status: int
    exit_signal: int | None = None
    ended_by: dict | None = None
    client: dict | None = None     # a serving run's client and server (run.json)


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


def exit_status(returncode: int) -> tuple[int, int | None]:
    """Shell-style status (128 + signal for a signalled child) and the signal."""
    if returncode < 0:
        return 128 - returncode, -returncode
    return returncode, None


def prepare(*, gpu: str, gpus: int, predictor: str, out: Path | None, predictor_options: dict | None,
            log_level: int | None, allow_degraded: bool, cpu_speed: float = 1.0,
            host_cores: int | None = None, force: bool = False) -> Prepared:
    """Run directory, spec, clock page, shim, coordinator and the program's environment.
    Raises catalog.UnknownGpuError for an unknown GPU name, run_dir.RunDirError for a
    directory the run may not use."""
    spec = catalog.get_spec(gpu)
    run_dir, run_lock = claim(out, spec.key, force=force)
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
    base = dict(os.environ)
    env = environment.program_environment(
        base, shim_library=shim_library, run_dir=run_dir.resolve(), coordinator=coordinator.address,
        spec_path=spec_path.resolve(), gpus=gpus, log_level=log_level, allow_degraded=allow_degraded)
    set_by_emulate = {k: v for k, v in env.items()
                      if k not in base and not k.startswith("TIMEWARP_") and k not in environment.PATH_VARIABLES}
    return Prepared(spec, run_dir, gpus, predictor, allow_degraded, coordinator, env, set_by_emulate, governor,
                    cpu_speed, host_cores, run_lock)


def _start_governor(run_dir: Path) -> subprocess.Popen:
    """The clock's governor (shim/tools/governor.c): a program outside the shim that dilates the
    clock's rate by the CPU the run's threads get, for the whole run."""
    from shim import build

    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    with open(run_dir / "governor.log", "w") as log_file:
        return subprocess.Popen([str(build.governor_path()), str(run_dir)], env=env, stdin=subprocess.DEVNULL,
                                stderr=log_file)


def start(prepared: Prepared, cmd: list[str]) -> subprocess.Popen | int:
    """The command as a child of this process (the subreaper of its orphans), or the shell status
    when it cannot be started (127 not found, 126 not executable)."""
    monitor.become_subreaper()
    try:
        return subprocess.Popen(cmd, env=prepared.env)
    except FileNotFoundError:
        log.error("%s: command not found", cmd[0])
        return 127
    except PermissionError:
        log.error("%s: permission denied", cmd[0])
        return 126


def collect(prepared: Prepared, cmd: list[str], outcome: Outcome, *, wall_time_s: float, started_at: str,
            write_outputs: bool) -> RunResult:
    """run.json, the trace files cut to their records, and the outputs."""
    run_dir = prepared.run_dir
    run_info = {
        "command": list(cmd),
        "exit_status": outcome.exit_status if outcome.exit_signal is None else None,
        "exit_signal": outcome.exit_signal,
        "shell_status": outcome.exit_status,
        "wall_time_s": wall_time_s,
        "gpu": {"key": prepared.spec.key, "name": prepared.spec.name, "count": prepared.gpus},
        "predictor": prepared.predictor,
        "allow_degraded": prepared.allow_degraded,
        "environment_set": prepared.set_by_emulate,
        "cpu_speed": prepared.cpu_speed,
        "host_cores": prepared.host_cores,
        "timewarp_version": _version(),
        "started_at": started_at,
        "ended_by": outcome.ended_by,
        "client": outcome.client,
    }
    (run_dir / "run.json").write_text(json.dumps(run_info, indent=2))
    from emulator.outputs.records import trim_trace_files

    trim_trace_files(run_dir)
    summary: dict = {}
    if write_outputs:
        from emulator.outputs import write_outputs as render

        summary = render(run_dir)
    return RunResult(outcome.exit_status, run_dir, summary)


def run_command(cmd: list[str], *, gpu: str = "h100", gpus: int = 1, predictor: str = "auto",
                out: Path | None = None, predictor_options: dict | None = None, log_level: int | None = None,
                write_outputs: bool = True, allow_degraded: bool = False, cpu_speed: float = 1.0,
                host_cores: int | None = None, client: ClientSpec | None = None, force: bool = False) -> RunResult:
    """Run CMD emulated on `gpus` GPUs of kind `gpu`; returns its status and run directory.

    With `client`, CMD is a server: the client command starts, in the same run and clock, once
    the server's port accepts (and answers its ready path); when the client exits the server is
    stopped (SIGTERM) and the run's status is the client's.

    Raises catalog.UnknownGpuError for an unknown GPU name, run_dir.RunDirError for an --out the
    run may not use (one holding files, without force; one a live run holds).
    """
    prepared = prepare(gpu=gpu, gpus=gpus, predictor=predictor, out=out, predictor_options=predictor_options,
                       log_level=log_level, allow_degraded=allow_degraded, cpu_speed=cpu_speed, host_cores=host_cores,
                       force=force)
    started_at = _dt.datetime.now(_dt.timezone.utc).isoformat()
    wall_start = time.monotonic()
    try:
        child = start(prepared, cmd)
        if isinstance(child, int):
            outcome = Outcome(child)
        else:
            outcome = Supervisor(prepared, child, client).run()
    finally:
        wall_time_s = time.monotonic() - wall_start
        prepared.coordinator.stop()  # type: ignore[attr-defined]
        prepared.governor.terminate()
        prepared.governor.wait()
    try:
        return collect(prepared, cmd, outcome, wall_time_s=wall_time_s, started_at=started_at,
                       write_outputs=write_outputs)
    finally:
        prepared.run_lock.release()


class Supervisor:
    """Waits for the command while watching the run (emulator/monitor.py): SIGINT/SIGTERM to
    emulate go to the program; a crash of any process of the run ends it within
    CRASH_GRACE_S + TERM_GRACE_S (the program may first notice and exit by itself); a serving
    run's client is started and ended (emulator/serving_client.py); when the command ends,
    processes of the run it left behind are ended too."""

    def __init__(self, prepared: Prepared, child: subprocess.Popen, client: ClientSpec | None) -> None:
        self.child = child
        self.watch = monitor.RunMonitor(prepared.run_dir, child.pid)
        self.client = ServingClient(client, prepared.env, self.watch) if client is not None else None
        self.ended_by: dict | None = None
        self.crash_seen_at: float | None = None
        self.terminated_at: float | None = None

    def _forward(self, signum: int, _frame: object) -> None:
        self.child.send_signal(signum)
        if self.client is not None:
            self.client.forward(signum)

    def run(self) -> Outcome:
        previous = {sig: signal.signal(sig, self._forward) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            returncode = self._wait()
            crash = self.watch.poll()   # the command itself may be what crashed
            if crash is not None and self.ended_by is None:
                self.ended_by = _ended_by_crash(crash)
            if self.ended_by is None:
                self.ended_by = _ended_by_deadlock(self.watch.run_dir)
            status, sig = exit_status(returncode)
            client_info = None
            if self.client is not None:
                status, sig, client_info = self.client.finish(status, sig)
                self.ended_by = self.ended_by or self.client.ended_by
            _end_leftovers(self.watch)
            if self.watch.dead_actor_pids and self.ended_by is not None:
                self.ended_by["dead_without_exit"] = self.watch.dead_actor_pids
        finally:
            for sig_number, handler in previous.items():
                signal.signal(sig_number, handler)
            self.watch.close()
        return Outcome(status, sig, self.ended_by, client_info)

    def _wait(self) -> int:
        """The command's return code, after supervising it to its end."""
        while True:
            try:
                return self.child.wait(timeout=POLL_S)
            except subprocess.TimeoutExpired:
                pass
            crash = self.watch.poll()
            now = time.monotonic()
            if crash is not None and self.crash_seen_at is None:
                self.crash_seen_at = now
                self.ended_by = _ended_by_crash(crash)
                log.error("timewarp: %s: ending the run (report: %s)", crash.headline, crash.path)
            elif self.watch.collective_failure is not None and self.crash_seen_at is None:
                # its peers wait for a rank that cannot come: nothing to give time to
                self.crash_seen_at = now - CRASH_GRACE_S
                self.ended_by = {"reason": "collective", "cause": self.watch.collective_failure}
                log.error("timewarp: %s: ending the run", self.watch.collective_failure)
            if self.crash_seen_at is not None and self.terminated_at is None and now - self.crash_seen_at > CRASH_GRACE_S:
                self.terminated_at = now
                _signal_all(self.watch.run_pids(), signal.SIGTERM)
            if self.terminated_at is not None and now - self.terminated_at > TERM_GRACE_S:
                _signal_all(self.watch.run_pids(), signal.SIGKILL)
            if self.client is not None and self.crash_seen_at is None:
                self.client.step(self.child)


def _ended_by_crash(crash: monitor.Crash) -> dict:
    # "ended by timewarp" heads the reports of processes the emulation itself had to end
    # (shim/src/crash.c tw_fatal): predictions unavailable, collectives that cannot match.
    reason = "emulation" if " ended by timewarp: " in crash.headline else "crash"
    return {"reason": reason, "pid": crash.pid, "cause": crash.headline, "report": str(crash.path)}


def _ended_by_deadlock(run_dir: Path) -> dict | None:
    """The shim's deadlock detector (actors.c) wrote its report and ended the run."""
    report = run_dir / "deadlock.txt"
    if not report.exists():
        return None
    headline = report.read_text(errors="replace").partition("\n")[0].removeprefix("timewarp: ")
    return {"reason": "deadlock", "cause": headline, "report": str(report)}


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
