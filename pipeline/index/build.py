"""Build or update a run's index: every stored study's image and every distinct label text,
embedded with the run's checkpoint (``pipeline.train.inference``), into ``runs/NAME/index``.

A full build happens the first time, when the run's checkpoint changed, or on request. Otherwise
the index is updated in place: studies ingested since are embedded and added to the FAISS index
(no rebuild, no re-embedding of the others) and projected onto the saved 2-D map; label texts
new to the store's snapshot are embedded and the small label index is rewritten.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from tqdm import tqdm

from db import queries
from db.engine import init_db, session_scope
from pipeline import vocab
from pipeline.evaluate.prompts import category_prompts
from pipeline.index.files import (
    IMAGES,
    LABELS,
    LabelSet,
    Manifest,
    Prompts,
    index_dir,
    read_images,
    read_labels,
    write_index,
    write_labels,
    write_manifest,
    write_npz,
    write_prompts,
)
from pipeline.index.projection import UMAP_MIN_POINTS, fit_map, load_projection, save_map
from pipeline.index.status import IndexStatus, file_sha256, index_status, label_snapshot
from pipeline.index.vectors import EXACT_LIMIT, IndexSpec, add_vectors, build_index, load_index
from pipeline.settings import get_settings
from pipeline.ssm import LabelError, LabelSnapshot, build_snapshot, label_embeddings
from pipeline.ssm.labels import explanations
from pipeline.train.config import build as build_config
from pipeline.train.inference import LoadedRun, embed_studies, embed_texts, load_run
from pipeline.train.loop import label_options

log = logging.getLogger("pipeline.index")


@dataclass(frozen=True)
class IndexConfig:
    run_dir: Path  # runs/NAME as python -m pipeline.train wrote it
    db_url: str  # the store whose studies are indexed
    data_dir: Path | None = None  # pixel files and data/cache; None: the run's own, else settings
    device: str = "cpu"  # where the model embeds (cpu | cuda)
    batch_size: int = 64  # images per embedding batch
    rebuild: bool = False  # embed everything anew even when the checkpoint is unchanged
    refit_map: bool = False  # refit the 2-D map instead of projecting new studies onto it
    exact_limit: int = EXACT_LIMIT  # vectors below which the index is exact (flat)
    progress: bool = True  # tqdm bars on stderr
    seed: int = 0  # IVF training sample and UMAP


@dataclass(frozen=True)
class IndexResult:
    path: Path
    rebuilt: bool  # a full build (else an incremental update)
    added: int  # studies embedded by this call
    studies: int  # studies the index holds
    labels: int  # label texts
    spec: IndexSpec  # the image index's type and tuning
    map_method: str
    unreadable: int  # studies whose image could not be read (left out, not retried)
    before: IndexStatus


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _training_order(run: LoadedRun, db_url: str) -> list[int]:
    """The run's training studies in its own order: embedding them first, in that order, hits
    the pixel cache file the training wrote (its key hashes the image list in order)."""
    cfg = build_config(run.config, "config.json")
    with session_scope(db_url) as session:
        try:
            snapshot = build_snapshot(session, label_options(cfg))
        except LabelError:
            return []
    return [e.study_id for e in snapshot.examples]


def _embed(run: LoadedRun, cfg: IndexConfig, data_dir: Path, study_ids: list[int]
           ) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(ids, vectors, unreadable ids) of the studies with a readable image."""
    wanted = set(study_ids)
    first = _training_order(run, cfg.db_url) if study_ids else []
    first = first if first and set(first) <= wanted else []
    rest = [s for s in study_ids if s not in set(first)]
    ids, parts = [], []
    for group in (first, rest):
        if group:
            parts.append(embed_studies(run, cfg.db_url, group, batch_size=cfg.batch_size,
                                       progress=cfg.progress, data_dir=data_dir))
            ids += group
    if not ids:
        return np.zeros(0, np.int64), np.zeros((0, run.encoder.embed_dim), np.float32), []
    vectors, ids = np.concatenate(parts), np.asarray(ids, np.int64)
    ok = np.linalg.norm(vectors, axis=1) > 0  # embed_studies zeroes an unreadable image
    order = np.argsort(ids[ok], kind="stable")
    return ids[ok][order], vectors[ok][order], sorted(ids[~ok].tolist())


def _text_vectors(run: LoadedRun, texts: list[str], progress: bool, batch: int = 256
                  ) -> np.ndarray:
    out = [np.zeros((0, run.encoder.embed_dim), np.float32)]
    for start in tqdm(range(0, len(texts), batch), desc="embed label texts", unit="batch",
                      disable=not progress or not texts):
        out.append(embed_texts(run, texts[start:start + batch]))
    return np.concatenate(out)


def _labels(run: LoadedRun, snapshot: LabelSnapshot | None, previous: LabelSet | None,
            cache_dir: Path, progress: bool) -> LabelSet:
    """The snapshot's distinct label texts; texts the previous index embedded are reused."""
    texts = snapshot.texts if snapshot is not None else []
    known = {t: i for i, t in enumerate(previous.texts)} if previous is not None else {}
    new = [t for t in texts if t not in known]
    fresh = dict(zip(new, _text_vectors(run, new, progress), strict=True))
    dim = run.encoder.embed_dim
    vectors = np.asarray([previous.vectors[known[t]] if t in known else fresh[t] for t in texts],
                         np.float32).reshape(len(texts), dim)
    encoder = run.config.get("sentence_encoder", "minilm")
    sentence = (label_embeddings(texts, encoder, cache_dir)[0] if texts
                else np.zeros((0, 1), np.float32))
    pairs = [(e.study_id, li) for e in (snapshot.examples if snapshot else ()) for li in e.labels]
    pair = np.asarray(pairs, np.int64).reshape(-1, 2)
    return LabelSet(list(texts), list(snapshot.groups) if snapshot else [], vectors,
                    np.asarray(sentence, np.float32), pair[:, 0], pair[:, 1])


def _prompts(run: LoadedRun, db_url: str) -> Prompts:
    with session_scope(db_url) as session:
        prompts = category_prompts(list(vocab.category_ids()), explanations(session))
    return Prompts([p.category for p in prompts], embed_texts(run, [p.positive for p in prompts]),
                   embed_texts(run, [p.negative for p in prompts]))


def _map(folder: Path, ids: np.ndarray, vectors: np.ndarray, new: np.ndarray, refit: bool,
         seed: int) -> str:
    """Refit the 2-D map, or project the ``new`` rows onto the saved one; its method."""
    saved = None if refit else load_projection(folder)
    outgrown = (saved is not None and saved[2].method == "pca" and len(saved[0]) < UMAP_MIN_POINTS
                <= len(ids))
    if saved is None or outgrown:
        xy, projection = fit_map(vectors, seed)
        save_map(folder, ids, xy, projection)
        return projection.method
    old_ids, old_xy, projection = saved
    keep = np.isin(old_ids, ids)
    save_map(folder, np.concatenate([old_ids[keep], ids[new]]),
             np.concatenate([old_xy[keep], projection.transform(vectors[new])]), projection)
    return projection.method


def _record(cfg: IndexConfig, run: LoadedRun, folder: Path, manifest: Manifest,
            label_spec: IndexSpec, rebuilt: bool) -> None:
    common = {"training_run_id": run.training_run_id, "path": str(folder.resolve()),
              "checkpoint_sha256": manifest.checkpoint_sha256,
              "snapshot_sha256": manifest.snapshot_sha256, "rebuilt": rebuilt}
    with session_scope(cfg.db_url) as session:
        queries.record_embedding_index(session=session, kind="image", dim=manifest.images["dim"],
                                       count=manifest.counts["studies"], spec=manifest.images,
                                       **common)
        queries.record_embedding_index(session=session, kind="label", dim=label_spec.dim,
                                       count=label_spec.count, spec=asdict(label_spec), **common)


@dataclass(frozen=True)
class _ImagePart:
    ids: np.ndarray  # (N,) study ids, rows of vectors
    vectors: np.ndarray  # (N, D)
    new: np.ndarray  # (N,) bool: embedded by this call
    unreadable: list[int]
    spec: IndexSpec


def _images(cfg: IndexConfig, run: LoadedRun, data_dir: Path, old: Manifest | None,
            full: bool, folder: Path) -> _ImagePart:
    """Embed every study (full) or the ones the index lacks, and write the image index."""
    with session_scope(cfg.db_url) as session:
        all_ids = queries.list_image_study_ids(session=session)
    if full:
        ids, vectors, unreadable = _embed(run, cfg, data_dir, all_ids)
        index, spec = build_index(vectors, ids, exact_limit=cfg.exact_limit, seed=cfg.seed)
        new = np.ones(len(ids), bool)
    else:
        index, spec = load_index(folder / f"{IMAGES}.faiss")
        old_ids, old_vectors = read_images(folder)
        held = set(old_ids.tolist()) | set(old.unreadable)
        add_ids, add_vecs, unread = _embed(run, cfg, data_dir,
                                           [s for s in all_ids if s not in held])
        add_vectors(index, add_vecs, add_ids)  # in place: no rebuild, nothing re-embedded
        ids, vectors = np.concatenate([old_ids, add_ids]), np.concatenate([old_vectors, add_vecs])
        new = np.arange(len(ids)) >= len(old_ids)
        unreadable = sorted(set(old.unreadable) | set(unread))
    write_index(index, spec, folder / f"{IMAGES}.faiss")
    write_npz(folder / f"{IMAGES}.npz", study_ids=ids, vectors=vectors)
    return _ImagePart(ids, vectors, new, unreadable, spec)


def build_run_index(cfg: IndexConfig) -> IndexResult:
    """Build the run's index, or bring it up to date (module docstring)."""
    init_db(cfg.db_url)
    before = index_status(cfg.run_dir, cfg.db_url)
    run = load_run(cfg.run_dir, device=cfg.device)
    data_dir = Path(cfg.data_dir or run.data_dir or get_settings().data_dir)
    ckpt_sha = file_sha256(run.checkpoint)
    old = before.manifest
    full = cfg.rebuild or old is None or old.checkpoint_sha256 != ckpt_sha
    folder = index_dir(cfg.run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    img = _images(cfg, run, data_dir, old, full, folder)
    snapshot = label_snapshot(cfg.db_url, run.config)
    labels = _labels(run, snapshot, None if full else read_labels(folder),
                     data_dir / "cache", cfg.progress)
    label_index, label_spec = build_index(labels.vectors, exact_limit=cfg.exact_limit)
    write_index(label_index, label_spec, folder / f"{LABELS}.faiss")
    write_labels(folder, labels)
    write_prompts(folder, _prompts(run, cfg.db_url))
    method = _map(folder, img.ids, img.vectors, img.new, full or cfg.refit_map, cfg.seed)
    now, added = _now(), int(img.new.sum())
    manifest = Manifest(
        run=Path(cfg.run_dir).name, training_run_id=run.training_run_id,
        checkpoint=str(run.checkpoint.relative_to(cfg.run_dir)), checkpoint_sha256=ckpt_sha,
        snapshot_sha256=snapshot.sha256 if snapshot else "",
        built_at=now if full else old.built_at, updated_at=None if full else now,
        images=asdict(img.spec), labels=asdict(label_spec), map_method=method,
        sentence_encoder=run.config.get("sentence_encoder", "minilm"),
        unreadable=img.unreadable,
        counts={"studies": len(img.ids), "labels": len(labels.texts), "added": added,
                "unreadable": len(img.unreadable)})
    write_manifest(folder, manifest)
    _record(cfg, run, folder, manifest, label_spec, full)
    return IndexResult(folder, full, added, len(img.ids), len(labels.texts), img.spec, method,
                       len(img.unreadable), before)
