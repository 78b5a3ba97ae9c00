"""Is a run's index current? Stale when the run's checkpoint is not the one it embedded with,
or when the store's label snapshot is not the one its label part was built from; studies
ingested since are "new" (an update adds them without a rebuild), not stale.

The label snapshot is the training's own (``pipeline.ssm.build_snapshot`` and its sha256) with
the run's label options over every split of the store, held-out categories included, so that
every curated label is in the index whatever the run trained on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from db import queries
from db.engine import session_scope
from pipeline.index.files import IMAGES, Manifest, index_dir, read_manifest
from pipeline.ssm import LabelError, LabelSnapshot, build_snapshot
from pipeline.train.checkpoint import latest_checkpoint
from pipeline.train.config import build as build_config
from pipeline.train.loop import label_options


@dataclass(frozen=True)
class IndexStatus:
    exists: bool
    reasons: tuple[str, ...]  # why it is stale (empty: current)
    new_studies: int  # studies with an image that the index does not hold yet
    manifest: Manifest | None

    @property
    def stale(self) -> bool:
        return bool(self.reasons)

    def describe(self) -> str:
        """One line for the CLI and the app."""
        if not self.exists:
            return "no index yet"
        state = "stale: " + "; ".join(self.reasons) if self.stale else "up to date"
        new = f"; {self.new_studies} new studies to add" if self.new_studies else ""
        return f"index {state}{new}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=64)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    return _sha256(Path(path))


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered while its size and mtime stay (the app asks every run)."""
    st = Path(path).stat()
    return _sha256_of(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def label_snapshot(db_url: str, config: dict) -> LabelSnapshot | None:
    """The store's label snapshot as the index sees it (module docstring); None when the store
    holds no usable label."""
    cfg = build_config(config, "config.json")
    with session_scope(db_url) as session:
        splits = tuple(queries.list_splits(session=session))
        opts = replace(label_options(cfg), holdout=(), allow_missing_knowledge=True,
                       splits=splits)
        try:
            return build_snapshot(session, opts) if splits else None
        except LabelError:
            return None


def snapshot_sha256(snapshot: LabelSnapshot | None) -> str:
    return snapshot.sha256 if snapshot is not None else ""


def index_status(run_dir: Path, db_url: str, config: dict | None = None) -> IndexStatus:
    """The index's state against the run's newest checkpoint and the store now."""
    manifest = read_manifest(index_dir(run_dir))
    if manifest is None:
        return IndexStatus(False, (), 0, None)
    reasons = []
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        reasons.append("the run has no checkpoint any more")
    elif file_sha256(ckpt) != manifest.checkpoint_sha256:
        reasons.append(f"the run's checkpoint changed ({manifest.checkpoint} -> "
                       f"{ckpt.relative_to(run_dir)})")
    if config is None:
        config = json.loads((Path(run_dir) / "config.json").read_text())
    current = snapshot_sha256(label_snapshot(db_url, config))
    if current != manifest.snapshot_sha256:
        reasons.append(f"the curated labels changed (snapshot {manifest.snapshot_sha256[:12]}"
                       f" -> {current[:12] or 'none'})")
    with np.load(index_dir(run_dir) / f"{IMAGES}.npz") as z:
        held = set(z["study_ids"].tolist()) | set(manifest.unreadable)
    with session_scope(db_url) as session:
        new = [s for s in queries.list_image_study_ids(session=session) if s not in held]
    return IndexStatus(True, tuple(reasons), len(new), manifest)
