"""The `emulate` command line.

    emulate [--gpu KEY] [--gpus N] [--predictor NAME] [--out DIR] -- CMD ...
    emulate [options] --client 'CLIENT CMD' --client-port PORT -- SERVER CMD ...
    emulate report DIR
    emulate validate --real TRACE [--gpu KEY] -- CMD ...
    emulate gpus
    emulate status DIR
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

import predictors
from emulator.serving_client import ClientSpec
from predictors import catalog

PREDICTORS = ("auto", "roofline", "table", "xgb")


def _run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emulate", description="Run a CUDA program on a host without a GPU, in virtual time.",
        epilog="subcommands: `emulate report DIR`, `emulate validate --real TRACE -- CMD`, `emulate gpus`")
    parser.add_argument("--gpu", default="h100", help="GPU kind from the catalog (see `emulate gpus`)")
    parser.add_argument("--gpus", type=int, default=1, help="number of GPUs the program sees")
    parser.add_argument("--predictor", default="auto", choices=PREDICTORS)
    parser.add_argument("--predictor-option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", type=Path, help="run directory (default runs/<time>-<gpu>); refused if it holds files")
    parser.add_argument("--force", action="store_true",
                        help="use --out even if it holds files (a previous run's are replaced); never a live run's")
    parser.add_argument("--log-level", type=int, choices=range(4), help="shim log level 0..3")
    parser.add_argument("--quiet", action="store_true", help="no summary on stderr")
    parser.add_argument("--cpu-speed", type=float, default=1.0, metavar="FACTOR",
                        help="the emulated host's CPU time per unit of this host's (0.5: its CPU is twice as fast; "
                             "see `emulate calibrate-cpu`)")
    parser.add_argument("--host-cores", type=int, metavar="N",
                        help="threads the emulated host runs at once (default: the GPU server's cores)")
    parser.add_argument("--allow-degraded", action="store_true",
                        help="if predictions become unavailable, go on with the spec's per-launch floor (the "
                             "summary says so) instead of ending the run")
    serving = parser.add_argument_group(
        "serving", "CMD is a server; a client runs beside it in the same run and clock (docs/serving.md)")
    serving.add_argument("--client", metavar="'CMD ARGS'",
                         help="client command line, started once the server is ready; when it exits the server is "
                              "stopped and emulate exits with the client's status")
    serving.add_argument("--client-port", type=int, metavar="PORT", help="the server's port (required with --client)")
    serving.add_argument("--client-ready-path", default="/health", metavar="PATH",
                         help="ready when `GET PATH` answers 200 (default /health; '' = when the port accepts)")
    serving.add_argument("--client-ready-timeout", type=float, default=1800.0, metavar="SECONDS",
                         help="wall seconds the server has to become ready (default 1800)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    return parser


def _client_spec(args: argparse.Namespace) -> ClientSpec | None:
    """The --client options as a ClientSpec; raises ValueError with the user's mistake."""
    if args.client is None:
        if args.client_port is not None:
            raise ValueError("--client-port needs --client")
        return None
    command = shlex.split(args.client)
    if not command:
        raise ValueError("--client needs a command line")
    if args.client_port is None or not 0 < args.client_port < 65536:
        raise ValueError("--client needs --client-port PORT (1-65535): the port the server listens on")
    return ClientSpec(command, args.client_port, args.client_ready_path or None, args.client_ready_timeout)


def _options(pairs: list[str]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"emulate: --predictor-option wants KEY=VALUE, got {pair!r}")
        options[key] = value
    return options


def _print_brief(summary: dict, run_dir: Path) -> None:
    if not summary:
        return
    kernels = summary.get("kernels", {})
    print(
        f"timewarp: {summary.get('gpu', {}).get('name', '?')}: virtual {summary.get('virtual_time_s', 0):.6f} s, "
        f"wall {summary.get('wall_time_s', 0):.3f} s, {kernels.get('count', 0)} kernels; outputs in {run_dir}",
        file=sys.stderr)
    for degraded in summary.get("degraded") or []:
        print(f"timewarp: DEGRADED: pid {degraded['pid']}: {degraded['cause']}; its later GPU times are the "
              f"per-launch floor, not predictions", file=sys.stderr)
    for unmet in summary.get("collectives_not_met") or []:
        print(f"timewarp: pid {unmet['pid']}: {unmet['kernel']} reached no peer's memory: timed alone, not met "
              f"across ranks", file=sys.stderr)
    for what in summary.get("unreadable") or []:
        print(f"timewarp: WARNING: skipped {what}", file=sys.stderr)
    ended_by = summary.get("ended_by") or {}
    if ended_by.get("cause"):
        print(f"timewarp: the run was ended early: {ended_by['cause']}", file=sys.stderr)
    underdescribed = summary.get("underdescribed") or []
    if underdescribed:
        names = ", ".join(f"{u['name'][:60]} x{u['count']}" for u in underdescribed[:5])
        print(f"timewarp: WARNING: {len(underdescribed)} kernel(s) were predicted without their bytes (reaching "
              f"over 1 MB, or rejected by their family's decoder): {names} (summary.json: underdescribed)",
              file=sys.stderr)
    unimplemented = summary.get("unimplemented") or []
    if unimplemented:
        names = ", ".join(f"{u['name']} x{u['count']}" for u in unimplemented[:10])
        print(f"timewarp: unimplemented calls: {names}", file=sys.stderr)


def run_main(argv: list[str]) -> int:
    args = _run_parser().parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("emulate: no command given (emulate [options] -- CMD ...)", file=sys.stderr)
        return 2
    if args.gpus < 1:
        print("emulate: --gpus must be at least 1", file=sys.stderr)
        return 2
    if not 0.01 <= args.cpu_speed <= 100:
        print("emulate: --cpu-speed must be between 0.01 and 100", file=sys.stderr)
        return 2
    if args.host_cores is not None and args.host_cores < 1:
        print("emulate: --host-cores must be at least 1", file=sys.stderr)
        return 2
    try:
        client = _client_spec(args)
    except ValueError as err:
        print(f"emulate: {err}", file=sys.stderr)
        return 2
    from coordinator.launch import CoordinatorStartError
    from emulator.run import run_command
    from emulator.run_dir import RunDirError
    from shim.build import ShimBuildError

    try:
        predictors.check_available(args.predictor, catalog.get_spec(args.gpu), **_options(args.predictor_option))
    except (catalog.UnknownGpuError, predictors.PredictorUnavailable) as err:
        print(f"emulate: {err}", file=sys.stderr)
        return 2
    try:
        result = run_command(command, gpu=args.gpu, gpus=args.gpus, predictor=args.predictor, out=args.out,
                             predictor_options=_options(args.predictor_option), log_level=args.log_level,
                             allow_degraded=args.allow_degraded, cpu_speed=args.cpu_speed,
                             host_cores=args.host_cores, client=client, force=args.force)
    except (catalog.UnknownGpuError, RunDirError, ShimBuildError) as err:
        print(f"emulate: {err}", file=sys.stderr)
        return 2
    except CoordinatorStartError as err:   # not the user's error, but no traceback either
        print(f"emulate: {err}", file=sys.stderr)
        return 1
    if not args.quiet:
        _print_brief(result.summary, result.run_dir)
    return result.exit_status


def gpus_main(argv: list[str]) -> int:
    for spec in catalog.list_specs():
        print(f"{spec.key:12s} {spec.name}  ({spec.memory_bytes / 2**30:.0f} GiB, {spec.sm_count} SMs, "
              f"sm_{spec.cc_major}{spec.cc_minor})")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="emulate: %(message)s")
    if argv[:1] == ["report"]:
        from emulator import report

        return report.main(argv[1:])
    if argv[:1] == ["validate"]:
        from emulator import validate

        return validate.main(argv[1:])
    if argv[:1] == ["gpus"]:
        return gpus_main(argv[1:])
    if argv[:1] == ["status"]:
        from emulator import status

        return status.main(argv[1:])
    return run_main(argv)
