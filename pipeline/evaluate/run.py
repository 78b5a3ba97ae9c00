"""Evaluate a training run: embed the split's studies and prompts with the run's model, score
them (``pipeline.evaluate.zeroshot``), write ``runs/NAME/metrics.json`` and store the same report
on the run's TrainingRun row under "evaluation".

Which categories are "seen": those with a present finding among the training labels of the
store (the train split, the run's own status rule), less any category the run's config holds
out. A category of the test split that training never saw as a positive is "unseen" and gets the
held-out figures (ARCHITECTURE.md's caution: check it against abnormal images and against the
nearest seen category's prompt).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from db import queries
from db.engine import init_db, session_scope
from pipeline.evaluate.labels import EvalLabels, LabelError, labels_from_store, labels_from_truth
from pipeline.evaluate.prompts import category_prompts, finding_text
from pipeline.evaluate.runs import METRICS_FILE
from pipeline.evaluate.zeroshot import (
    retrieval_report,
    retrieval_texts,
    scored_categories,
    zero_shot_report,
)
from pipeline.ssm.labels import explanations as approved_explanations
from pipeline.train.inference import embed_studies, embed_texts, load_run

log = logging.getLogger("pipeline.evaluate")

TRAIN_SPLIT = "train"


class RunError(ValueError):
    """A run directory that cannot be evaluated: the message is the CLI's one line."""


@dataclass(frozen=True)
class EvalConfig:
    run_dir: Path  # runs/NAME as python -m pipeline.train wrote it
    database_url: str  # the store the run trained from
    salt: str = field(repr=False)  # pseudonym salt, to match --truth study ids (never printed)
    split: str = "test"  # the split to score
    truth: Path | None = None  # demo truth.jsonl instead of the store's curated findings
    include_proposed: bool = False  # store labels: also the extractor's unreviewed findings
    min_positives: int = 20  # a seen category counts in the mean with at least this many
    device: str = "cpu"  # cpu | cuda
    batch_size: int = 64  # images per embedding batch
    progress: bool = True  # tqdm bar on stderr


def check_run_dir(run_dir: Path) -> None:
    if not run_dir.is_dir():
        raise RunError(f"--run {run_dir}: no such run directory")
    if not (run_dir / "config.json").is_file():
        raise RunError(f"--run {run_dir}: not a training run (no config.json)")


def seen_categories(config: dict, db_url: str) -> set[str]:
    include = bool(config.get("include_proposed", False))
    with session_scope(db_url) as session:
        positives = queries.count_positive_findings(TRAIN_SPLIT, session=session,
                                                    include_proposed=include)
    holdout = set(config.get("holdout") or ())
    return {c for c, n in positives.items() if n > 0} - holdout


def _labels(cfg: EvalConfig) -> EvalLabels:
    if cfg.truth is not None:
        return labels_from_truth(cfg.truth, cfg.database_url, cfg.split, cfg.salt)
    return labels_from_store(cfg.database_url, cfg.split, cfg.include_proposed)


def evaluate_run(cfg: EvalConfig) -> dict:
    """The evaluation report of one run (see ``pipeline.evaluate.zeroshot`` for its keys)."""
    check_run_dir(cfg.run_dir)
    init_db(cfg.database_url)
    labels = _labels(cfg)
    cats = scored_categories(labels)
    if not cats:
        raise LabelError(f"no category has both a positive and a negative among the "
                         f"{len(labels.study_ids)} labelled {cfg.split} studies")
    run = load_run(cfg.run_dir, device=cfg.device)
    seen = seen_categories(run.config, cfg.database_url)
    with session_scope(cfg.database_url) as session:
        explanations = approved_explanations(session)
    prompts = category_prompts(cats, explanations)
    image_emb = embed_studies(run, cfg.database_url, labels.study_ids,
                              batch_size=cfg.batch_size, progress=cfg.progress)
    pos_emb = embed_texts(run, [p.positive for p in prompts])
    neg_emb = embed_texts(run, [p.negative for p in prompts])
    report = zero_shot_report(labels, image_emb, cats, pos_emb, neg_emb, seen,
                              cfg.min_positives)
    texts, relevant = retrieval_texts(labels, lambda r: finding_text(r, explanations))
    text_emb = embed_texts(run, texts) if texts else image_emb[:0]
    report["retrieval"] = retrieval_report(image_emb, text_emb, relevant)
    header = {"run": cfg.run_dir.name, "split": cfg.split, "labels": labels.source,
              "include_proposed": cfg.include_proposed, "n_studies": len(labels.study_ids),
              "unmatched_truth_studies": labels.unmatched,
              "evaluated_at": datetime.now(UTC).isoformat(timespec="seconds"),
              "seen": sorted(seen & set(cats)), "unseen": sorted(set(cats) - seen),
              "prompts": {p.category: {"positive": p.positive, "negative": p.negative,
                                       "knowledge": p.knowledge} for p in prompts}}
    report = {**header, **report}
    (cfg.run_dir / METRICS_FILE).write_text(json.dumps(report, indent=1) + "\n",
                                            encoding="utf-8")
    report["stored_on_run"] = _store(run.training_run_id, cfg, report)
    return report


def _store(run_id: int | None, cfg: EvalConfig, report: dict) -> int | None:
    """Merge the report into the run's TrainingRun row; the row's id, or None without one."""
    with session_scope(cfg.database_url) as session:
        row = (queries.get_training_run(session=session, run_id=run_id) if run_id is not None
               else None) or queries.get_training_run(session=session, name=cfg.run_dir.name)
        if row is None:
            log.warning("no TrainingRun row for %s in this store: metrics.json only",
                        cfg.run_dir.name)
            return None
        queries.set_run_evaluation(row.id, report, session=session)
        return row.id
