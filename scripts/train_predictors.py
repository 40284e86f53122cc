#!/usr/bin/env python3
"""Train and evaluate the predictors on real GPU measurements.

    python scripts/train_predictors.py train-efficiency [--root ../shared/data]
        the shipped cross-GPU efficiency model, predictors/models/efficiency.json, from every
        public measurement (Vidur, inference-sim, NeuSight), with its data's sha256 and licences
    python scripts/train_predictors.py evaluate [--root ../shared/data] [--out docs/accuracy.md]
        leave-one-model-out and leave-one-GPU-out per class, attention against the real FA3 and
        FlashInfer times; rewrites the generated section of docs/accuracy.md
    python scripts/train_predictors.py constants
        the per-class bandwidth fractions the roofline's constants come from
    python scripts/train_predictors.py train --gpu h100 [--data-dir data]
        a per-GPU xgb model from your own traces (data/<gpu>/, scripts/collect_gpu_traces.py)
    python scripts/train_predictors.py eval-vidur [--gpus h100 a100 a40]
        table and per-GPU xgb held out by model on Vidur's profiles
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from predictors.catalog import get_spec  # noqa: E402
from predictors.roofline import RooflinePredictor  # noqa: E402
from predictors.table import TablePredictor, default_data_dir  # noqa: E402
from predictors.traces import desc_from_row, load_rows  # noqa: E402
from predictors.xgb import XgbPredictor, default_model_dir, save, train  # noqa: E402

log = logging.getLogger("train_predictors")


def cmd_train(args: argparse.Namespace) -> int:
    spec = get_spec(args.gpu)
    rows = load_rows(Path(args.data_dir), spec.key)
    if not rows:
        log.error("no trace rows under %s/%s", args.data_dir, spec.key)
        return 1
    result = train(rows, spec, holdout_fraction=args.holdout, group_key=args.group_key, rounds=args.rounds)
    out = Path(args.out) if args.out else default_model_dir() / f"{spec.key}.xgb.json"
    save(result, out)
    held = result.held_out
    sys.stdout.write(f"{out}: {result.meta['train_rows']} train rows, held out {held.rows}: "
                     f"median |err| {held.median_abs_rel_error:.3f}, p90 {held.p90_abs_rel_error:.3f}, "
                     f"data sha256 {result.meta['data_sha256']}\n")
    return 0


@dataclass
class Scores:
    predicted: list[float]
    measured: list[float]
    answered: int = 0

    def line(self) -> tuple[str, str, str]:
        if not self.measured:
            return "-", "-", "-"
        p, m = np.array(self.predicted), np.array(self.measured)
        err = np.abs(p - m) / m
        return f"{np.median(err) * 100:.1f}%", f"{np.percentile(err, 90) * 100:.1f}%", f"{np.mean(p / m):.2f}"


def evaluate_gpu(rows: list[dict[str, object]], gpu_key: str, rounds: int,
                 threads: int = 1) -> dict[tuple[str, str], Scores]:
    """Leave-one-group-out: for each workload group (a model, or a size band of a topology),
    fit table and xgb on the other groups and predict the held-out one."""
    spec = get_spec(gpu_key)
    roofline = RooflinePredictor(spec)
    scores: dict[tuple[str, str], Scores] = {}

    def add(op: str, model: str, predicted: float, measured: float) -> None:
        entry = scores.setdefault((op, model), Scores([], []))
        entry.predicted.append(predicted)
        entry.measured.append(measured)

    groups = sorted({str(r["workload"]) for r in rows})
    for group in groups:
        test = [r for r in rows if r["workload"] == group]
        test_ops = {str(t["op"]) for t in test}
        train_rows = [r for r in rows if r["workload"] != group and str(r["op"]) in test_ops]
        descs = [desc_from_row(r) for r in test]
        table = TablePredictor(spec, train_rows, fallback=False)
        result = train(train_rows, spec, holdout_groups=[], rounds=rounds, params={"nthread": threads})
        xgb = XgbPredictor(spec, result.booster, result.meta)
        xgb_answers = xgb.predict_or_none_batch(descs)
        for row, desc, xgb_answer in zip(test, descs, xgb_answers, strict=True):
            op = str(row["op"])
            measured = float(row["duration_ns"])  # type: ignore[arg-type]
            roof = roofline.predict(desc).duration_ns
            add(op, "roofline", roof, measured)
            found = table.predict_or_none(desc)
            if found is not None:
                add(op, "table", found.duration_ns, measured)
            add(op, "xgb", xgb_answer.duration_ns if xgb_answer else roof, measured)
            auto = found or xgb_answer
            add(op, "auto", auto.duration_ns if auto else roof, measured)
        log.info("%s: held out %s (%d rows)", gpu_key, group, len(test))
    return scores


def cmd_eval_vidur(args: argparse.Namespace) -> int:
    from predictors import vidur

    root = Path(args.root) if args.root else vidur.default_root(REPO)
    if not root.is_dir():
        log.error("vidur profiles not found at %s", root)
        return 1
    out = ["| GPU | op | rows | roofline median / p90 / mean ratio | table median / p90 (answered) | "
           "xgb median / p90 / mean ratio | auto median / p90 |", "|---|---|---|---|---|---|---|"]
    for gpu_dir in args.gpus:
        rows = vidur.compute_rows(root, gpu_dir) + vidur.network_rows(root, gpu_dir)
        if args.limit_tokens:
            rows = [r for r in rows if r["kind"] != "gemm" or int(r["dims"][0]) <= args.limit_tokens]  # type: ignore[index]
        scores = evaluate_gpu(rows, vidur.GPU_KEYS[gpu_dir], args.rounds, args.threads)
        for op in sorted({op for op, _ in scores}):
            roof, table, xgb, auto = (scores.get((op, m), Scores([], [])) for m in ("roofline", "table", "xgb", "auto"))
            r_med, r_p90, r_ratio = roof.line()
            t_med, t_p90, _ = table.line()
            x_med, x_p90, x_ratio = xgb.line()
            a_med, a_p90, _ = auto.line()
            answered = f"{len(table.measured) / max(len(roof.measured), 1) * 100:.0f}%"
            out.append(f"| {gpu_dir} | {op} | {len(roof.measured)} | {r_med} / {r_p90} / {r_ratio} | "
                       f"{t_med} / {t_p90} ({answered}) | {x_med} / {x_p90} / {x_ratio} | {a_med} / {a_p90} |")
    text = "\n".join(out) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    sys.stdout.write(text)
    return 0


def _shared_root(args: argparse.Namespace) -> Path:
    from predictors import public_data

    return Path(args.root) if args.root else public_data.default_root(REPO)


def cmd_train_efficiency(args: argparse.Namespace) -> int:
    from predictors import efficiency, efficiency_training

    root = _shared_root(args)
    if not root.is_dir():
        log.error("public data not found at %s", root)
        return 1
    model, matrix = efficiency_training.train(root, args.rounds, args.threads)
    out = Path(args.out) if args.out else efficiency.default_model_path()
    efficiency.save(model, out)
    sys.stdout.write(f"{out}: {len(matrix.samples)} samples from {model.meta['rows']} rows, data sha256 "
                     f"{model.meta['data_sha256']}, model sha256 {efficiency_training.digest(out)}\n")
    return 0


def cmd_constants(args: argparse.Namespace) -> int:
    from predictors import efficiency_training
    from predictors.descriptors import KernelDesc

    root = _shared_root(args)
    items = efficiency_training.samples(efficiency_training.load_public_rows(root))
    fractions: dict[str, list[float]] = {}
    for s in items:
        if s.source != "neusight" or s.gpu == "l4" or not isinstance(s.desc, KernelDesc) or s.measured_ns < 35_000:
            continue
        spec = get_spec(s.gpu)
        fractions.setdefault(s.cls, []).append(s.desc.bytes / spec.hbm_bytes_per_s * 1e9 / s.measured_ns)
    for cls, values in sorted(fractions.items()):
        sys.stdout.write(f"{cls:12s} {len(values):4d} operators: median {np.median(values):.2f} of HBM peak "
                         f"(p10 {np.percentile(values, 10):.2f}, p90 {np.percentile(values, 90):.2f})\n")
    return 0


DESCRIBED_WORDS = {"0": "launch shape only", "1": "pointers, capped per thread", "2": "pointers, element count",
                   "3": "decoded (family)"}


def describe_row(kind: str, n: str) -> str:
    """How kernels.csv's row was described: library calls by their library, kernels by
    records.h's enum tw_described (its n column)."""
    if kind == "kernel":
        return DESCRIBED_WORDS.get(n, n)
    if kind == "attention":
        return "attention, decoded (FLOPs from lengths)"
    return f"{kind} (library call)"


def cmd_audit(args: argparse.Namespace) -> int:
    """The kernels with the most predicted time over some runs: how each was described and
    which model answered (a markdown table)."""
    import csv

    from emulator.outputs.demangle import short_name

    totals: dict[str, dict[str, object]] = {}
    for run_dir in args.runs:
        with (Path(run_dir) / "kernels.csv").open() as f:
            for r in csv.DictReader(f):
                if r["kind"] in ("memcpy", "memset", "event_record", "event_wait", "host_func", "none"):
                    continue
                entry = totals.setdefault(r["name"], {"us": 0.0, "count": 0, "how": set(), "models": set(),
                                                      "runs": set(), "kind": r["kind"], "bytes": []})
                entry["us"] += float(r["duration_us"])  # type: ignore[operator]
                entry["count"] += 1  # type: ignore[operator]
                entry["how"].add(describe_row(r["kind"], r["n"]))  # type: ignore[union-attr]
                entry["models"].add(r["model"])  # type: ignore[union-attr]
                entry["runs"].add(Path(run_dir).name)  # type: ignore[union-attr]
                entry["bytes"].append(int(r["bytes"]))  # type: ignore[union-attr]
    top = sorted(totals.items(), key=lambda kv: -float(kv[1]["us"]))[:args.top]  # type: ignore[arg-type]
    lines = ["| # | kernel | runs | launches | predicted µs | median bytes | how described | model |",
             "|---|---|---|---|---|---|---|---|"]
    for i, (name, e) in enumerate(top, 1):
        label = short_name(name, 70).replace("|", "\\|")
        lines.append(f"| {i} | `{label}` | {', '.join(sorted(e['runs']))} | {e['count']} | {e['us']:.1f} | "  # type: ignore[arg-type]
                     f"{int(np.median(e['bytes']))} | {'; '.join(sorted(e['how']))} | "  # type: ignore[arg-type]
                     f"{', '.join(sorted(e['models']))} |")  # type: ignore[arg-type]
    if args.out:
        import datetime

        replace_block(Path(args.out), "audit", ["", f"Generated {datetime.date.today().isoformat()} by "
                                                f"`python scripts/train_predictors.py audit` over the runs "
                                                f"{', '.join(Path(r).name for r in args.runs)}.", "", *lines, ""])
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


E2E_WORKLOAD = REPO / "tests" / "e2e" / "workloads" / "neusight_model.py"
E2E_FAST_MODELS = ("bert_large", "gpt2_large", "opt_13")  # the rest (2.7B parameters) are slow


def iteration_gpu_ms(run_dir: Path, stdout: str) -> list[float]:
    """GPU time of each timed iteration: the predicted durations of the ops issued inside it
    (RESULT issue_begin_ns/issue_end_ns, virtual host times), whatever the host's own speed."""
    import re

    from emulator.outputs import load_run
    from emulator.outputs.ops import NON_KERNEL_KINDS, run_ops

    ops = run_ops(load_run(run_dir))
    work = ops[~ops["kind"].isin(NON_KERNEL_KINDS - {"memcpy", "memset"})]
    out = []
    for begin, end in re.findall(r"issue_begin_ns=(\d+) issue_end_ns=(\d+)", stdout):
        inside = work[(work["issue_ns"] >= int(begin)) & (work["issue_ns"] <= int(end))]
        out.append(float((inside["end_ns"] - inside["begin_ns"]).sum()) / 1e6)
    return out


def cmd_e2e(args: argparse.Namespace) -> int:
    """NeuSight's end-to-end labels against the same models run under emulate."""
    import re
    import subprocess

    from predictors import public_data

    root = _shared_root(args)
    models = set(args.models or E2E_FAST_MODELS)
    labels = [lab for lab in public_data.neusight_e2e_labels(root)
              if lab["gpu"] in args.gpus and not lab["fusion"] and lab["model"] in models and lab["mode"] in args.modes]
    if args.smallest:  # the smallest batch of each GPU, model and mode
        smallest: dict[tuple[object, ...], dict[str, object]] = {}
        for lab in labels:
            key = (lab["gpu"], lab["model"], lab["mode"])
            if key not in smallest or int(lab["batch"]) < int(smallest[key]["batch"]):  # type: ignore[call-overload]
                smallest[key] = lab
        labels = list(smallest.values())
    work = Path(args.work)
    held_out_models: dict[str, Path] = {}
    if args.held_out:
        from predictors import efficiency, efficiency_training

        for model_name in sorted({str(lab["model"]) for lab in labels}):
            path = work / f"without-{model_name}.efficiency.json"
            if not path.exists():  # NeuSight's operator traces of this model left out of the fit
                trained, _ = efficiency_training.train(root, without_workload=model_name)
                efficiency.save(trained, path)
            held_out_models[model_name] = path
    lines = ["| GPU | model | mode | seq x batch | real ms (NeuSight) | emulated ms (GPU time) | error | "
             "emulated ms (CUDA events) |", "|---|---|---|---|---|---|---|---|"]
    errors = []
    for lab in labels:
        run_dir = work / f"{lab['gpu']}-{lab['model']}-{lab['mode']}-{lab['seq']}-{lab['batch']}"
        options = ["--predictor-option", f"model_path={held_out_models[str(lab['model'])]}"] \
            if held_out_models else []
        cmd = [sys.executable, "-m", "emulator", "--gpu", str(lab["gpu"]), "--predictor", args.predictor, *options,
               "--out", str(run_dir), "--force", "--quiet", "--", args.python, str(E2E_WORKLOAD), str(lab["model"]),
               str(lab["mode"]), str(lab["seq"]), str(lab["batch"]), "--iterations", str(args.iterations)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, cwd=REPO)
        if proc.returncode != 0:
            log.error("%s: exit %d: %s", run_dir.name, proc.returncode, proc.stderr[-2000:])
            lines.append(f"| {lab['gpu']} | {lab['model']} | {lab['mode']} | {lab['seq']}x{lab['batch']} | "
                         f"{lab['e2e_ms']:.1f} | failed (exit {proc.returncode}) | - | - |")
            continue
        gpu_ms = iteration_gpu_ms(run_dir, proc.stdout)
        emulated = float(np.mean(sorted(gpu_ms[1:] or gpu_ms)[:5]))
        events = re.search(r"e2e_ms=([\d.]+)", proc.stdout)
        error = (emulated - float(lab["e2e_ms"])) / float(lab["e2e_ms"])  # type: ignore[arg-type]
        errors.append(abs(error))
        lines.append(f"| {lab['gpu']} | {lab['model']} | {lab['mode']} | {lab['seq']}x{lab['batch']} | "
                     f"{lab['e2e_ms']:.1f} | {emulated:.1f} | {error * 100:+.1f}% | "
                     f"{float(events.group(1)) if events else float('nan'):.1f} |")
        log.info("%s", lines[-1])
    if errors:
        lines.append("")
        lines.append(f"Mean |error| over {len(errors)} runs: {np.mean(errors) * 100:.1f}% "
                     f"(median {np.median(errors) * 100:.1f}%, max {np.max(errors) * 100:.1f}%).")
    if args.out:
        import datetime

        command = "python scripts/train_predictors.py e2e " + " ".join(sys.argv[2:])
        replace_block(Path(args.out), "e2e", ["", f"Generated {datetime.date.today().isoformat()} by `{command}`.",
                                              "", *lines, ""])
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def replace_block(path: Path, name: str, lines: list[str]) -> None:
    """Replace (or append) the block between `<!-- generated: NAME begin/end -->` in a file."""
    begin, end = f"<!-- generated: {name} begin -->", f"<!-- generated: {name} end -->"
    block = "\n".join([begin, *lines, end])
    current = path.read_text() if path.exists() else ""
    if begin in current and end in current:
        head, rest = current.split(begin, 1)
        current = head + block + rest.split(end, 1)[1]
    else:
        current = current.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(current)


def attention_table(root: Path) -> list[str]:
    """inference-sim's H100 attention times against the roofline and the shipped model, plus the
    host-timing overhead (public_data.HOST_OVERHEAD_NS)."""
    from predictors import get_predictor, public_data
    from predictors.efficiency_training import Errors

    spec = get_spec("h100")
    roofline, auto = RooflinePredictor(spec), get_predictor("auto", spec)
    errors: dict[str, Errors] = {}
    for row in public_data.inference_sim_rows(root):
        op = str(row["op"])
        measured = float(row["duration_ns"])  # type: ignore[arg-type]
        overhead = float(row.get("overhead_ns") or 0.0)  # type: ignore[arg-type]
        if not op.startswith("attention") or measured < 4 * overhead:
            continue
        desc = desc_from_row(row)
        errors.setdefault(op, Errors()).add(roofline.predict(desc).duration_ns + overhead,
                                            auto.predict(desc).duration_ns + overhead, measured)
    lines = ["| op | rows | roofline median / p90 | auto (shipped model) median / p90 |", "|---|---|---|---|"]
    for op, e in sorted(errors.items()):
        lines.append(f"| {op} | {len(e.learned)} | {Errors.stat(e.roofline)} | {Errors.stat(e.learned)} |")
    return lines


def _error_table(errors: dict, first: str) -> list[str]:
    from predictors.efficiency_training import Errors

    lines = [f"| {first} | class | samples | roofline median / p90 | learned median / p90 | learned mean ratio |",
             "|---|---|---|---|---|---|"]
    for (group, cls), e in sorted(errors.items()):
        ratio = f"{np.mean(e.ratio):.2f}" if e.ratio else "-"
        lines.append(f"| {group} | {cls} | {len(e.learned)} | {Errors.stat(e.roofline)} | {Errors.stat(e.learned)} "
                     f"| {ratio} |")
    return lines


def cmd_evaluate(args: argparse.Namespace) -> int:
    import datetime

    from predictors import efficiency_training as et

    root = _shared_root(args)
    matrix = et.build_matrix(et.samples(et.load_public_rows(root)))
    by_model = et.summarise(et.held_out(matrix, et.model_fold, args.rounds, args.threads), "all") \
        if "model" in args.protocols else {}
    by_gpu = et.summarise(et.held_out(matrix, et.gpu_group, args.rounds, args.threads), "group") \
        if "gpu" in args.protocols else {}
    today = datetime.date.today().isoformat()
    text = ["", f"Generated {today} by `python scripts/train_predictors.py evaluate --out docs/accuracy.md` "
            f"({len(matrix.samples)} samples, {args.rounds} rounds per fit).", "",
            "### Attention against real H100 times (inference-sim, host-timed: + 18 µs)", "",
            "The roofline's attention constants were fitted on these prefill rows (roofline.py), and the shipped",
            "model was trained on all of them: this table is in-sample; the held-out tables below are not.", "",
            *attention_table(root), "",
            "### Held out by model (models in 5 folds: each predicted by a fit without it)", "",
            *_error_table(by_model, "GPUs"), "",
            "### Held out by GPU (each GPU predicted by a fit on the others only)", "",
            *_error_table(by_gpu, "held-out GPU"), ""]
    if args.out:
        replace_block(Path(args.out), "evaluate", text)
    sys.stdout.write("\n".join(text) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p_train = sub.add_parser("train", help="train predictors/models/<gpu>.xgb.json from data/<gpu>/")
    p_train.add_argument("--gpu", required=True)
    p_train.add_argument("--data-dir", default=str(default_data_dir()))
    p_train.add_argument("--out")
    p_train.add_argument("--holdout", type=float, default=0.2)
    p_train.add_argument("--group-key", default="workload")
    p_train.add_argument("--rounds", type=int, default=300)
    p_train.set_defaults(func=cmd_train)
    p_eval = sub.add_parser("eval-vidur", help="held-out-by-model accuracy on Vidur's profiles")
    p_eval.add_argument("--root")
    p_eval.add_argument("--gpus", nargs="+", default=["h100", "a100", "a40"])
    p_eval.add_argument("--rounds", type=int, default=200)
    p_eval.add_argument("--threads", type=int, default=2)
    p_eval.add_argument("--limit-tokens", type=int, default=0)
    p_eval.add_argument("--out")
    p_eval.set_defaults(func=cmd_eval_vidur)
    p_eff = sub.add_parser("train-efficiency", help="the shipped cross-GPU model from ../shared/data")
    p_eff.add_argument("--root")
    p_eff.add_argument("--out")
    p_eff.add_argument("--rounds", type=int, default=400)
    p_eff.add_argument("--threads", type=int, default=2)
    p_eff.set_defaults(func=cmd_train_efficiency)
    p_const = sub.add_parser("constants", help="per-class bandwidth fractions measured on NeuSight's operators")
    p_const.add_argument("--root")
    p_const.set_defaults(func=cmd_constants)
    p_evaluate = sub.add_parser("evaluate", help="held out by model and by GPU, per class")
    p_evaluate.add_argument("--root")
    p_evaluate.add_argument("--rounds", type=int, default=200)
    p_evaluate.add_argument("--threads", type=int, default=2)
    p_evaluate.add_argument("--out", help="a markdown file whose generated section is replaced")
    p_evaluate.add_argument("--protocols", nargs="+", default=["model", "gpu"], choices=["model", "gpu"])
    p_evaluate.set_defaults(func=cmd_evaluate)
    p_audit = sub.add_parser("audit", help="top kernels of runs: how described, which model answered")
    p_audit.add_argument("runs", nargs="+", help="run directories written by emulate")
    p_audit.add_argument("--top", type=int, default=50)
    p_audit.add_argument("--out", help="a markdown file whose generated audit block is replaced")
    p_audit.set_defaults(func=cmd_audit)
    p_e2e = sub.add_parser("e2e", help="NeuSight's end-to-end labels vs the same models under emulate")
    p_e2e.add_argument("--root")
    p_e2e.add_argument("--python", default=os.environ.get("TIMEWARP_VLLM_PYTHON", sys.executable),
                       help="an interpreter with CUDA torch and transformers")
    p_e2e.add_argument("--gpus", nargs="+", default=["a100-pcie-40g", "a100-pcie-80g", "l4", "v100"])
    p_e2e.add_argument("--models", nargs="*", help=f"default: {' '.join(E2E_FAST_MODELS)}")
    p_e2e.add_argument("--modes", nargs="+", default=["inf", "train"])
    p_e2e.add_argument("--predictor", default="auto")
    p_e2e.add_argument("--iterations", type=int, default=3)
    p_e2e.add_argument("--timeout", type=int, default=3600)
    p_e2e.add_argument("--work", default="/tmp/timewarp-e2e")
    p_e2e.add_argument("--out", help="a markdown file whose generated e2e block is replaced")
    p_e2e.add_argument("--smallest", action="store_true", help="only the smallest batch per GPU, model and mode")
    p_e2e.add_argument("--held-out", action="store_true",
                       help="predict each model with an efficiency model fitted without its operator traces")
    p_e2e.set_defaults(func=cmd_e2e)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
