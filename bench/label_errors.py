"""The loop the product exists for, with the demo truth as the oracle: corrupt curated labels,
train, let the error analysis rank the studies, fix the top suspects, train again.

In a temporary folder (``bench/learns.py``'s stage runner; every stage runs as its own CLI):

 1. a demo corpus -> ``db upgrade`` -> ``ingest`` -> ``knowledge sync`` -> ``extract --extractor
    rules``; then a bench reviewer accepts every finding of the train split and corrects each
    report to the truth (edit / reject / add through ``db.queries``' review functions, audited
    like a person's), so the curated labels start clean. The store is copied: the *clean* store.
 2. ``--rate`` of the labelled train studies get one corrupted label each, drawn among: flip a
    finding's presence, drop (reject) a present finding, add a spurious present finding. Each
    changes one (study, category) label.
 3. train on the noisy store, ``pipeline.index`` the run, rank the train studies by our
    suspicion (``pipeline.index.errors``), by cleanlab's multi-label ``find_label_issues``, and at
    random; precision@K against the corrupted studies, K = how many were corrupted. The scores
    are the run's own (in-sample, as the app has them for the train split): the run saw the
    noisy labels it is asked to doubt, which only makes the task harder.
 4. as a reviewer, fix the top-K of our ranking from the truth and train again (*fixed*); train
    on the clean store too. Mean zero-shot AUC of each run against the truth, on the test split.

Last line::

    precision_at_k=<x> cleanlab_precision_at_k=<y> random_precision_at_k=<r> auc_noisy=<a> \
        auc_fixed=<b> auc_clean=<c>

    .venv/bin/python bench/label_errors.py
    .venv/bin/python bench/label_errors.py --seed 1 --rate 0.2 --n 3000 --minutes 4 --keep /tmp/le
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.learns import SALT, stage  # noqa: E402
from db import queries  # noqa: E402
from db.engine import session_scope  # noqa: E402
from db.models import FindingStatus, ReviewerRole  # noqa: E402
from pipeline.evaluate.labels import EvalLabels, labels_from_truth  # noqa: E402
from pipeline.index import errors  # noqa: E402
from pipeline.index.files import load_run_index  # noqa: E402

PRESENCE = {1: "present", -1: "uncertain", 0: "absent"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/label_errors.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0, help="corpus, corruption and training seed")
    p.add_argument("--rate", type=float, default=0.1,
                   help="share of labelled train studies given one wrong label (default 0.1)")
    p.add_argument("--n", type=int, default=2000, help="demo studies (default 2000)")
    p.add_argument("--size", type=int, default=128, help="demo image side in px (default 128)")
    p.add_argument("--model", default="small-rn", help="architecture (default small-rn)")
    p.add_argument("--minutes", type=float, default=2.0,
                   help="training minutes per run (default 2); three runs")
    p.add_argument("--epochs", type=int, default=30,
                   help="epoch cap; --minutes normally stops training first (default 30)")
    p.add_argument("--min-positives", type=int, default=10,
                   help="test positives a category needs to count in the mean AUC (default 10)")
    p.add_argument("--train-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for every pipeline.train run (repeatable)")
    p.add_argument("--keep", type=Path, default=None,
                   help="work in this folder and keep it (default: a temporary one)")
    return p.parse_args(argv)


# --- the store and its truth -------------------------------------------------------------------


def prepare(work: Path, args: argparse.Namespace, env: dict) -> str:
    db = f"sqlite:///{work / 'store.db'}"
    demo = work / "demo"
    stage("demo corpus", ["pipeline.demo", "--out", str(demo), "--n", str(args.n), "--seed",
                          str(args.seed), "--size", str(args.size), "--quiet"], env)
    stage("db upgrade", ["db", "upgrade", "--db", db], env)
    stage("ingest", ["pipeline.ingest", "--db", db, "--data-dir", str(work / "data"),
                     "--no-progress", "folder", str(demo)], env)
    stage("knowledge sync", ["pipeline.knowledge", "sync", "--db", db], env)
    stage("extract (rules)", ["pipeline.extract", "--db", db, "--extractor", "rules"], env)
    return db


def copy_store(work: Path, name: str) -> str:
    """A copy of store.db through SQLite's backup API: copying the file while this process
    holds it open would drop this process's locks on it (SQLite's POSIX-lock caveat)."""
    src, dst = sqlite3.connect(work / "store.db"), sqlite3.connect(work / f"{name}.db")
    with dst:
        src.backup(dst)
    src.close()
    dst.close()
    return f"sqlite:///{work / f'{name}.db'}"


def _fold(rows) -> dict[str, int]:
    """category -> 1 / -1 / 0, the CheXpert fold (present beats uncertain beats absent)."""
    out: dict[str, int] = {}
    for r in rows:
        value = {"present": 1, "uncertain": -1}.get(str(r.presence), 0)
        if value == 1 or (value == -1 and out.get(r.category) != 1):
            out[r.category] = value
        else:
            out.setdefault(r.category, 0)
    return out


def _quote(text: str) -> str:
    """A verbatim slice of the report, the evidence a bench edit or addition cites."""
    return text.split("\n", 1)[0][:40]


def set_labels(session, reviewer, report_id: int, want: dict[str, int], rows_of: dict) -> int:
    """Make the report's curated findings fold to ``want`` (category -> 1 present, -1 uncertain,
    0 an explicit "no X"; a category left out: not mentioned); returns the writes.
    ``rows_of``: category -> a truth row whose severity / side / region an addition takes."""
    view = queries.get_review_report(session=session, report_id=report_id)
    live = [f for f in view.findings if f.status != FindingStatus.rejected]
    have = _fold(live)
    writes = 0
    for cat in sorted(set(want) | set(have)):
        target, current = want.get(cat), have.get(cat)
        if target == current or (target is None and current == 0):
            continue  # equal, or an extra "no X" where the truth is silent: both fold to 0
        found = [f for f in live if f.category == cat]
        for f in found:  # what disagrees goes: every present / uncertain one
            if str(f.presence) != "absent":
                queries.decide_finding(f.id, "reject", version=f.version, reviewer=reviewer,
                                       session=session)
                writes += 1
        has_absent = any(str(f.presence) == "absent" for f in found)
        if target is None or (target == 0 and has_absent):
            continue
        row = rows_of.get(cat)
        fields = {"category": cat, "presence": PRESENCE[target],
                  "severity": getattr(row, "severity", None), "side": getattr(row, "side", None),
                  "region": getattr(row, "region", None), "evidence_text": _quote(view.report.text)}
        result = queries.add_finding(report_id, fields, reviewer=reviewer, session=session)
        assert result.ok, result.message
        writes += 1
    return writes


def curate_to_truth(db: str, truth: EvalLabels, study_ids: list[int], reviewer_name: str) -> int:
    """Accept every finding of these studies, then correct each report to the truth."""
    writes = 0
    with session_scope(db) as s:
        reviewer = queries.add_reviewer(reviewer_name, ReviewerRole.adjudicator, session=s)
        cards = queries.list_study_cards(study_ids, session=s)
        for sid in study_ids:
            rid = cards[sid].report_id
            writes += queries.accept_all_remaining(rid, reviewer=reviewer, session=s)
            rows = truth.findings[sid]
            writes += set_labels(s, reviewer, rid, _fold(rows),
                                 {r.category: r for r in rows if r.presence != "absent"})
    return writes


# --- corruption ------------------------------------------------------------------------------


def corrupt(db: str, study_ids: list[int], categories: list[str], rate: float,
            rng: np.random.Generator) -> dict[int, tuple[str, str]]:
    """One wrong label for ``rate`` of the studies: study -> (category, kind)."""
    chosen = rng.choice(study_ids, size=max(1, round(rate * len(study_ids))), replace=False)
    done: dict[int, tuple[str, str]] = {}
    with session_scope(db) as s:
        reviewer = queries.add_reviewer("Bench Corruptor", ReviewerRole.adjudicator, session=s)
        cards = queries.list_study_cards([int(x) for x in chosen], session=s)
        for sid in sorted(int(x) for x in chosen):
            rid = cards[sid].report_id
            view = queries.get_review_report(session=s, report_id=rid)
            live = [f for f in view.findings if f.status != FindingStatus.rejected]
            have = _fold(live)
            present = [c for c in categories if have.get(c) == 1]
            absent = [c for c in categories if c in have and have[c] == 0]
            unnamed = [c for c in categories if c not in have]
            kinds = [k for k, pool in (("flip", present + absent), ("drop", present),
                                       ("add", unnamed)) if pool]
            kind = str(rng.choice(kinds))
            pool = {"flip": present + absent, "drop": present, "add": unnamed}[kind]
            cat = str(rng.choice(pool))
            want = dict(have)
            want[cat] = 0 if have.get(cat) == 1 else 1  # flip: present <-> an explicit "no X"
            if kind == "drop":
                del want[cat]  # the present finding goes: not mentioned any more
            set_labels(s, reviewer, rid, want, {})
            done[sid] = (cat, kind)
    return done


# --- runs ------------------------------------------------------------------------------------


def train_and_evaluate(name: str, db: str, work: Path, args, env: dict) -> tuple[Path, float]:
    run = work / "runs" / name
    stage(f"train ({name})", ["pipeline.train", "--db", db, "--out", str(run), "--model",
                              args.model, "--epochs", str(args.epochs), "--max-minutes",
                              str(args.minutes), "--seed", str(args.seed), "--device", "cpu",
                              "--negatives", "use", "--no-progress", *args.train_arg], env)
    stage(f"evaluate ({name})", ["pipeline.evaluate", "--run", str(run), "--db", db, "--truth",
                                 str(work / "demo" / "truth.jsonl"), "--min-positives",
                                 str(args.min_positives), "--no-progress"], env)
    report = json.loads((run / "metrics.json").read_text())
    return run, report["mean"]["auc_seen"]


def precision_at_k(ranked_ids, corrupted: set[int], k: int) -> float:
    return len(set(int(s) for s in ranked_ids[:k]) & corrupted) / k


def rankings(db: str, run: Path, study_ids: list[int], seed: int) -> dict[str, np.ndarray]:
    """Study ids of the given studies in each ranking's order."""
    labels, splits = errors.store_labels(db, ["train"])
    a = errors.analyse(labels, splits, load_run_index(run))
    keep = np.isin(a.study_ids, study_ids)
    ours = a.study_ids[[i for i in errors.rank_studies(a) if keep[i]]]
    cleanlab_order, flagged = errors.rank_studies_cleanlab(a)
    print(f"cleanlab flags {flagged} of {len(a.study_ids)} studies", flush=True)
    rng = np.random.default_rng(seed + 1)
    return {"ours": ours, "cleanlab": a.study_ids[[i for i in cleanlab_order if keep[i]]],
            "random": rng.permutation(a.study_ids[keep])}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tmp = None if args.keep else tempfile.TemporaryDirectory(prefix="label-errors-")
    work = Path(args.keep or tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MEDFILIP_SALT": SALT, "MEDFILIP_DATA_DIR": str(work / "data"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(
               os.pathsep)}
    env.pop("DATABASE_URL", None)
    os.environ.update({"MEDFILIP_SALT": SALT, "MEDFILIP_DATA_DIR": str(work / "data")})
    try:
        db = prepare(work, args, env)
        truth = labels_from_truth(work / "demo" / "truth.jsonl", db, "train", SALT)
        writes = curate_to_truth(db, truth, truth.study_ids, "Bench Curator")
        with session_scope(db) as s:
            labelled = queries.list_labelled_studies("train", session=s)
        cats = [c for c in truth.categories if (truth.column(c) == 1).sum() >= 5]
        print(f"curated {len(truth.study_ids)} train studies to the truth ({writes} writes); "
              f"{len(labelled)} labelled; {len(cats)} categories", flush=True)
        clean_db = copy_store(work, "clean")
        rng = np.random.default_rng(args.seed)
        corrupted = corrupt(db, labelled, cats, args.rate, rng)
        kinds = {k: sum(v[1] == k for v in corrupted.values()) for k in ("flip", "drop", "add")}
        print(f"corrupted {len(corrupted)} studies: {kinds}", flush=True)
        (work / "corrupted.json").write_text(json.dumps(
            [{"study_id": k, "category": c, "kind": kind} for k, (c, kind) in corrupted.items()]))
        noisy_run, auc_noisy = train_and_evaluate("noisy", db, work, args, env)
        stage("index (noisy)", ["pipeline.index", "--run", str(noisy_run), "--db", db,
                                "--no-progress"], env)
        order = rankings(db, noisy_run, labelled, args.seed)
        k = len(corrupted)
        prec = {name: precision_at_k(ids, set(corrupted), k) for name, ids in order.items()}
        print(f"precision@{k}: " + " ".join(f"{n} {v:.3f}" for n, v in prec.items()), flush=True)
        fixed_db = copy_store(work, "fixed")
        fixed = curate_to_truth(fixed_db, truth, [int(s) for s in order["ours"][:k]],
                                "Bench Fixer")
        print(f"fixed the top {k} suspects from the truth ({fixed} writes)", flush=True)
        _, auc_fixed = train_and_evaluate("fixed", fixed_db, work, args, env)
        _, auc_clean = train_and_evaluate("clean", clean_db, work, args, env)
    finally:
        if tmp is not None:
            tmp.cleanup()
    print(f"precision_at_k={prec['ours']:.3f} cleanlab_precision_at_k={prec['cleanlab']:.3f} "
          f"random_precision_at_k={prec['random']:.3f} auc_noisy={auc_noisy:.3f} "
          f"auc_fixed={auc_fixed:.3f} auc_clean={auc_clean:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
