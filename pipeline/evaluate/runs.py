"""A training run as the Runs page shows it: its TrainingRun row, config, the training log of
``runs/NAME/metrics.jsonl`` and the evaluation report. Plain reads, no Streamlit.

The evaluation comes from the row (``metrics_json["evaluation"]``) when this store has one, else
from ``runs/NAME/metrics.json``: a run evaluated against another store still shows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from db.models import TrainingRun

METRICS_LOG = "metrics.jsonl"
METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class RunView:
    id: int
    name: str
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    snapshot_sha256: str
    checkpoint_path: str | None
    config: dict
    training: dict  # the row's metrics JSON without "evaluation" (final_loss, steps, ...)
    evaluation: dict | None
    run_dir: Path | None  # where its files are, when found
    history: list[dict] = field(default_factory=list)  # metrics.jsonl, one dict per logged step


def _json(text: str | None) -> dict:
    try:
        value = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def locate_run_dir(name: str, config: dict, checkpoint_path: str | None, roots: list[Path]
                   ) -> Path | None:
    """The run's directory: the config's output path, the checkpoint's run folder, else
    ``<root>/runs/NAME`` or ``<root>/NAME`` under each root."""
    candidates = [config.get(k) for k in ("out", "run_dir", "output_dir")]
    if checkpoint_path:
        ckpt = Path(checkpoint_path)
        candidates.append(ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent)
    for root in roots:
        candidates += [root / "runs" / name, root / name]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    return None


def read_history(run_dir: Path | None) -> list[dict]:
    """The logged steps of a run; unreadable lines (a run killed mid-write) are skipped."""
    path = run_dir / METRICS_LOG if run_dir else None
    if path is None or not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "step" in row:
            out.append(row)
    return out


def read_evaluation(run_dir: Path | None) -> dict | None:
    path = run_dir / METRICS_FILE if run_dir else None
    if path is None or not path.is_file():
        return None
    return _json(path.read_text(encoding="utf-8", errors="replace")) or None


def run_view(row: TrainingRun, roots: list[Path]) -> RunView:
    config = _json(row.config_json)
    metrics = _json(row.metrics_json)
    evaluation = metrics.pop("evaluation", None)
    run_dir = locate_run_dir(row.name, config, row.checkpoint_path, roots)
    return RunView(row.id, row.name, row.status, row.started_at, row.finished_at,
                   row.snapshot_sha256, row.checkpoint_path, config, metrics,
                   evaluation or read_evaluation(run_dir), run_dir, read_history(run_dir))


def auc_rows(view: RunView) -> list[dict]:
    """One row per evaluated category: run, category, AUC, positives, seen|unseen."""
    cats = (view.evaluation or {}).get("categories", {})
    return [{"run": view.name, "category": c, "auc": r.get("auc"), "n_pos": r.get("n_pos"),
             "kind": "seen" if r.get("seen") else "unseen", "f1": r.get("f1"),
             "accuracy": r.get("accuracy")}
            for c, r in cats.items() if r.get("auc") is not None]


def roc_rows(view: RunView, categories: list[str] | None = None) -> list[dict]:
    """Long-form ROC vertices (category, fpr, tpr) of the run's evaluated categories."""
    cats = (view.evaluation or {}).get("categories", {})
    out = []
    for c, r in cats.items():
        roc = r.get("roc") or {}
        if categories is not None and c not in categories:
            continue
        label = f"{c} ({r.get('auc'):.2f})" if r.get("auc") is not None else c
        out += [{"category": label, "fpr": f, "tpr": t}
                for f, t in zip(roc.get("fpr", []), roc.get("tpr", []), strict=False)]
    return out


def summary_row(view: RunView) -> dict:
    """The runs table's line of a run."""
    ev = view.evaluation or {}
    cfg = view.config
    return {"id": view.id, "name": view.name, "status": view.status,
            "started": view.started_at, "model": cfg.get("model"),
            "loss": cfg.get("loss"), "image_size": cfg.get("image_size"),
            "steps": view.training.get("steps"), "final_loss": view.training.get("final_loss"),
            "mean_auc": (ev.get("mean") or {}).get("auc_seen"),
            "unseen_auc": (ev.get("mean") or {}).get("auc_unseen"),
            "snapshot": (view.snapshot_sha256 or "")[:12]}
