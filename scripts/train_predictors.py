#!/usr/bin/env python3
"""Train the xgb predictor per GPU from data/<gpu>/ traces, and evaluate the predictors on
Vidur's measured profiles with a held-out split by model.

    python scripts/train_predictors.py train --gpu h100 [--data-dir data] [--out predictors/models/h100.xgb.json]
    python scripts/train_predictors.py eval-vidur [--root ../shared/data/vidur-profiles] [--gpus h100 a100 a40]
"""

from __future__ import annotations

import argparse
import logging
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
