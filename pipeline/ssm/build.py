"""The stage's one entry point: label snapshot -> cached embeddings -> S (ARCHITECTURE.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from db.engine import session_scope
from model import hard_matrix, similarity_matrix
from pipeline.ssm.embed import DEFAULT_ENCODER, label_embeddings
from pipeline.ssm.snapshot import LabelOptions, LabelSnapshot, build_snapshot


@dataclass(frozen=True)
class SSM:
    snapshot: LabelSnapshot
    embeddings: np.ndarray  # (L, D) float32 sentence embeddings of snapshot.texts
    matrix: np.ndarray  # (L, L) float32 soft label similarity
    hard: np.ndarray  # (L, L) float32 multi-hot ablation (same group)
    encoder: str
    from_cache: bool  # embeddings read from data/cache rather than computed


def build_ssm(db_url: str, options: LabelOptions | None = None,
              encoder: str = DEFAULT_ENCODER, cache_dir: Path | None = None) -> SSM:
    """Read the labels (LabelError if they cannot train), embed them once, build S."""
    with session_scope(db_url) as session:
        snapshot = build_snapshot(session, options or LabelOptions())
    return ssm_from_snapshot(snapshot, encoder, cache_dir)


def ssm_from_snapshot(snapshot: LabelSnapshot, encoder: str = DEFAULT_ENCODER,
                      cache_dir: Path | None = None) -> SSM:
    """Embed a snapshot's label texts (through the on-disk cache) and build S."""
    vectors, cached = label_embeddings(snapshot.texts, encoder, cache_dir)
    return SSM(snapshot, vectors, similarity_matrix(vectors, snapshot.groups),
               hard_matrix(snapshot.groups), encoder, cached)


def save_npz(ssm: SSM, path: Path) -> None:
    """Everything needed to inspect S: texts, groups, embeddings, S, and each example's labels."""
    snap = ssm.snapshot
    width = max((len(e.labels) for e in snap.examples), default=1)
    labels = np.full((len(snap.examples), width), -1, dtype=np.int32)
    for i, e in enumerate(snap.examples):
        labels[i, :len(e.labels)] = e.labels
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, texts=np.asarray(snap.texts, dtype=str),
                        groups=np.asarray(snap.groups, dtype=str), embeddings=ssm.embeddings,
                        ssm=ssm.matrix, study_ids=np.asarray([e.study_id for e in snap.examples]),
                        example_labels=labels, snapshot_sha256=np.asarray(snap.sha256),
                        encoder=np.asarray(ssm.encoder))
