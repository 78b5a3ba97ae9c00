"""Evaluate a training run zero-shot: per-category AUC / F1 / accuracy, multi-label AUC,
retrieval R@1/5/10 and the figures of categories held out of training.

    python -m pipeline.evaluate --run runs/demo --db sqlite:///data/medfilip.db
    python -m pipeline.evaluate --run runs/demo --split test --truth data/demo/truth.jsonl

Labels: the split's curated findings (accepted / edited / added; ``--include-proposed`` adds
the extractor's unreviewed ones), or a demo ``truth.jsonl``. Results go to
``runs/NAME/metrics.json`` and to the run's TrainingRun row (metrics_json["evaluation"]); the
Runs page of the app draws them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from db.models import Split
from pipeline.settings import get_settings


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pipeline.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True,
                   help="the run directory python -m pipeline.train wrote (runs/NAME)")
    p.add_argument("--db", default=None, help="database URL (default: settings' DATABASE_URL)")
    p.add_argument("--split", choices=[s.value for s in Split], default="test",
                   help="split to score (default: test)")
    p.add_argument("--truth", type=Path, default=None,
                   help="demo truth.jsonl to score against instead of the store's findings")
    p.add_argument("--include-proposed", action="store_true",
                   help="store labels: also the extractor's unreviewed (proposed) findings")
    p.add_argument("--min-positives", type=int, default=20,
                   help="positives a seen category needs to count in the mean (default: 20)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where the model runs (default: cpu)")
    p.add_argument("--batch-size", type=int, default=64, help="images per batch (default: 64)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p.parse_args(argv)


def _fmt(v: float | None) -> str:
    return "    —" if v is None else f"{v:5.3f}"


def summary_lines(report: dict) -> list[str]:
    lines = [f"{report['n_studies']} {report['split']} studies ({report['labels']})",
             f"{'category':28s} {'seen':>6s} {'n+':>5s}   AUC    F1   acc"]
    for cat, r in report["categories"].items():
        lines.append(f"{cat:28s} {'yes' if r['seen'] else 'UNSEEN':>6s} {r['n_pos']:5d} "
                     f"{_fmt(r['auc'])} {_fmt(r['f1'])} {_fmt(r['accuracy'])}")
    for cat, u in report["unseen"].items():
        lines.append(f"unseen {cat}: AUC {_fmt(u['auc'])} vs all, {_fmt(u['auc_abnormal'])} vs "
                     f"abnormal only; nearest seen prompt {u['nearest_seen']} "
                     f"{_fmt(u['nearest_auc'])} (difference {_fmt(u['vs_nearest'])})")
    mean, ml, rt = report["mean"], report["multi_label"], report["retrieval"]
    lines.append(f"mean AUC {_fmt(mean['auc_seen'])} over {mean['n_seen']} seen categories with "
                 f">= {mean['min_positives']} positives; multi-label AUC macro "
                 f"{_fmt(ml['macro'])} micro {_fmt(ml['micro'])}")
    lines.append("retrieval image->text " + " ".join(
        f"{k} {_fmt(v)}" for k, v in rt["image_to_text"].items()) + "; text->image " + " ".join(
        f"{k} {_fmt(v)}" for k, v in rt["text_to_image"].items()))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # imported here so that --help answers without loading torch and the model code
    from pipeline.evaluate.labels import LabelError
    from pipeline.evaluate.run import EvalConfig, RunError, evaluate_run

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = get_settings(database_url=args.db)
    cfg = EvalConfig(run_dir=args.run, database_url=settings.database_url,
                     salt=settings.pseudonym_salt.get_secret_value(), split=args.split,
                     truth=args.truth, include_proposed=args.include_proposed,
                     min_positives=args.min_positives, device=args.device,
                     batch_size=args.batch_size, progress=not args.no_progress)
    try:
        report = evaluate_run(cfg)
    except (RunError, LabelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(summary_lines(report)))
    print(f"wrote {args.run / 'metrics.json'}"
          + (f" and TrainingRun {report['stored_on_run']}" if report["stored_on_run"] else ""))
    return 0
