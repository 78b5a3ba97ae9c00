"""Does the curated store become a model that learns? The whole path in one command.

In a temporary folder: a demo corpus with one category held out of train/val -> ``python -m db
upgrade`` -> ``pipeline.ingest folder`` -> ``pipeline.knowledge sync`` -> ``pipeline.extract
--extractor rules`` -> ``pipeline.train --include-proposed`` for each loss (ssm, then hard
multi-hot, then InfoNCE) -> ``pipeline.evaluate --truth truth.jsonl`` on the test split. Every
stage runs as its own CLI, as a user would run it.

The mean zero-shot AUC is over the seen categories with >= 20 test positives (issue 8's bar:
>= 0.85 with <= 5 minutes of training per run on a 2-core CPU). Last line::

    mean_zero_shot_auc=<x> unseen_auc=<y> unseen_abnormal_auc=<z> unseen_vs_nearest=<d> \
        hard_label_auc=<h> infonce_auc=<i>

(the first four from the SSM run; unseen_* for the held-out category).

Measured on the shared 2-core CPU (seed 0, pneumothorax held out, 4,000 studies at 128 px, 1,018
test studies; other helpers' jobs running, 8-48 images/s): with these defaults (tiny-rn at 64 px,
AdamW lr 2e-3 cosine over 6 epochs, negatives used) mean_zero_shot_auc=0.735 unseen_auc=0.667
unseen_abnormal_auc=0.578 unseen_vs_nearest=0.099 hard_label_auc=0.708 infonce_auc=0.704 (the
InfoNCE run reached 3.4 epochs); issue 8's bar of 0.85 is not met. SSM-only runs: small-rn at 128
px, lr 5e-4, 0.7 epochs: 0.602; tiny-rn at 64 px, lr 5e-4 (flat), 2.3 epochs: 0.646; lr 2e-3
over 3 epochs: 0.678.

    .venv/bin/python bench/learns.py --minutes 5
    .venv/bin/python bench/learns.py --seed 1 --holdout-category pleural_effusion --minutes 5 \\
        --model small-rn --image-size 128 --keep /tmp/learns
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOSSES = ("ssm", "hard", "infonce")
SALT = "bench-learns-salt"  # ingest and evaluate must agree; any value does


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/learns.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0, help="corpus and training seed (default 0)")
    p.add_argument("--holdout-category", default="pneumothorax",
                   help="category kept out of train/val (default pneumothorax)")
    p.add_argument("--minutes", type=float, default=5.0,
                   help="training minutes per run (default 5)")
    p.add_argument("--n", type=int, default=4000, help="demo studies (default 4000)")
    p.add_argument("--size", type=int, default=128, help="demo image side in px (default 128)")
    # defaults: the best we measured on the shared 2-core CPU (see the module docstring)
    p.add_argument("--model", default="tiny-rn", help="architecture (default tiny-rn)")
    p.add_argument("--image-size", type=int, default=64,
                   help="training input side in px (default 64)")
    p.add_argument("--epochs", type=int, default=6,
                   help="epochs of the cosine schedule; --minutes may stop it earlier (default 6)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default 2e-3)")
    p.add_argument("--negatives", choices=("drop", "use"), default="use",
                   help="absent findings as 'no {category}' texts (default use)")
    p.add_argument("--losses", default=",".join(LOSSES),
                   help="comma-separated losses to run, in order (default ssm,hard,infonce)")
    p.add_argument("--train-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for every pipeline.train run (repeatable), "
                        "e.g. --train-arg=--negatives=use")
    p.add_argument("--keep", type=Path, default=None,
                   help="work in this folder and keep it (default: a temporary one)")
    return p.parse_args(argv)


def stage(name: str, args: list[str], env: dict) -> float:
    """Run ``python -m <args>``; on failure print its output and stop. Returns seconds."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - t0
    tail = proc.stdout.strip().splitlines()[-1:] if proc.stdout.strip() else [""]
    print(f"[{seconds:6.0f} s] {name}: {tail[0][:160]}", flush=True)
    if proc.returncode != 0:
        print(proc.stdout[-4000:], file=sys.stderr)
        raise SystemExit(f"{name} failed (exit {proc.returncode})")
    return seconds


def prepare(work: Path, args: argparse.Namespace, env: dict) -> str:
    """The store every run trains from; a --keep folder prepared with the same corpus
    arguments is reused (the training runs can then be repeated alone)."""
    db = f"sqlite:///{work / 'store.db'}"
    demo = work / "demo"
    corpus = {"n": args.n, "seed": args.seed, "size": args.size, "holdout": args.holdout_category}
    marker = work / "prepared.json"
    if marker.is_file() and json.loads(marker.read_text()) == corpus:
        print(f"reusing the store prepared in {work}", flush=True)
        return db
    stage("demo corpus", ["pipeline.demo", "--out", str(demo), "--n", str(args.n),
                          "--seed", str(args.seed), "--size", str(args.size),
                          "--holdout-category", args.holdout_category, "--quiet"], env)
    stage("db upgrade", ["db", "upgrade", "--db", db], env)
    stage("ingest", ["pipeline.ingest", "--db", db, "--data-dir", str(work / "data"),
                     "--no-progress", "folder", str(demo)], env)
    stage("knowledge sync", ["pipeline.knowledge", "sync", "--db", db], env)
    stage("extract (rules)", ["pipeline.extract", "--db", db, "--extractor", "rules"], env)
    marker.write_text(json.dumps(corpus))
    return db


def train_and_evaluate(loss: str, work: Path, db: str, args: argparse.Namespace,
                       env: dict) -> dict:
    run = work / "runs" / f"{loss}-s{args.seed}"
    for i in range(2, 1000):  # a reused --keep folder: every run gets a fresh directory
        if not run.exists():
            break
        run = work / "runs" / f"{loss}-s{args.seed}-{i}"
    train = ["pipeline.train", "--db", db, "--out", str(run), "--include-proposed",
             "--loss", loss, "--model", args.model, "--epochs", str(args.epochs),
             "--max-minutes", str(args.minutes), "--seed", str(args.seed), "--device", "cpu",
             "--lr", str(args.lr), "--negatives", args.negatives]
    if args.image_size:
        train += ["--image-size", str(args.image_size)]
    stage(f"train ({loss})", train + list(args.train_arg), env)
    stage(f"evaluate ({loss})", ["pipeline.evaluate", "--run", str(run), "--db", db,
                                 "--truth", str(work / "demo" / "truth.jsonl"),
                                 "--no-progress"], env)
    return json.loads((run / "metrics.json").read_text())


def print_report(loss: str, report: dict) -> None:
    print(f"\n{loss}: {report['n_studies']} test studies")
    print(f"  {'category':28s} {'seen':>6s} {'n+':>4s}  AUC    AUC(pos prompt)  F1")
    for cat, r in report["categories"].items():
        print(f"  {cat:28s} {'yes' if r['seen'] else 'UNSEEN':>6s} {r['n_pos']:4d}  "
              f"{_f(r['auc'])}  {_f(r['auc_positive_prompt'])}            {_f(r['f1'])}")
    mean, ml, rt = report["mean"], report["multi_label"], report["retrieval"]
    print(f"  mean AUC {_f(mean['auc_seen'])} over {mean['n_seen']} seen categories "
          f"(n+ >= {mean['min_positives']}); multi-label macro {_f(ml['macro'])} micro "
          f"{_f(ml['micro'])}; R@10 i->t {_f(rt['image_to_text']['R@10'])} "
          f"t->i {_f(rt['text_to_image']['R@10'])}")
    for cat, u in report["unseen"].items():
        print(f"  unseen {cat}: {_f(u['auc'])} vs all, {_f(u['auc_abnormal'])} vs abnormal; "
              f"nearest seen {u['nearest_seen']} {_f(u['nearest_auc'])} -> "
              f"difference {_f(u['vs_nearest'])}")


def _f(v: float | None) -> str:
    return "  nan" if v is None else f"{v:.3f}"


def final_line(reports: dict[str, dict], holdout: str) -> str:
    def mean_auc(loss):
        return reports[loss]["mean"]["auc_seen"] if loss in reports else None

    ssm = reports.get("ssm", {})
    unseen = ssm.get("unseen", {}).get(holdout, {})
    return (f"mean_zero_shot_auc={_f(mean_auc('ssm')).strip()} "
            f"unseen_auc={_f(unseen.get('auc')).strip()} "
            f"unseen_abnormal_auc={_f(unseen.get('auc_abnormal')).strip()} "
            f"unseen_vs_nearest={_f(unseen.get('vs_nearest')).strip()} "
            f"hard_label_auc={_f(mean_auc('hard')).strip()} "
            f"infonce_auc={_f(mean_auc('infonce')).strip()}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    losses = [x.strip() for x in args.losses.split(",") if x.strip()]
    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="learns-")
    work = Path(args.keep or tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MEDFILIP_SALT": SALT, "MEDFILIP_DATA_DIR": str(work / "data"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(
               os.pathsep)}
    env.pop("DATABASE_URL", None)
    try:
        db = prepare(work, args, env)
        reports = {loss: train_and_evaluate(loss, work, db, args, env) for loss in losses}
    finally:
        if tmp is not None:
            tmp.cleanup()
    for loss, report in reports.items():
        print_report(loss, report)
    print(final_line(reports, args.holdout_category))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
