"""A run's index on disk, ``runs/NAME/index/`` (ARCHITECTURE.md, "Runs on disk"):

    manifest.json   what it was built from (checkpoint and label-snapshot hashes), the index
                    choice of each part, counts, the 2-D map's method
    images.faiss    FAISS index of one vector per study (ids: Study.id), + images.json (its spec)
    images.npz      study_ids (N,), vectors (N, D) float32 (the same vectors, for means and maps)
    labels.faiss    FAISS index of the distinct label texts (ids: row numbers), + labels.json
    labels.npz      texts (L,), groups (L,), vectors (L, D) from the run's text tower,
                    sentence (L, Ds) from the SSM's sentence encoder, and which study carries
                    which label: pair_study (M,), pair_label (M,)
    prompts.npz     categories (C,), positive / negative (C, D): zero-shot prompt embeddings
    map.npz         study_ids (N,), xy (N, 2), method; map-pca.npz or map-umap.pkl projects new
                    studies onto the same map

Everything is written to a temporary name and renamed, so a killed build leaves the previous
index whole. Vectors are L2-normalised: inner product is cosine.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import faiss
import numpy as np

from pipeline.evaluate.metrics import prompt_softmax
from pipeline.index.vectors import IndexSpec, load_index, save_index, search

INDEX_DIR = "index"
MANIFEST = "manifest.json"
IMAGES, LABELS, PROMPTS, MAP = "images", "labels", "prompts", "map"


def index_dir(run_dir: Path) -> Path:
    return Path(run_dir) / INDEX_DIR


@dataclass(frozen=True)
class Manifest:
    run: str  # the run directory's name (the TrainingRun's name)
    training_run_id: int | None
    checkpoint: str  # the checkpoint file embedded with, relative to the run dir
    checkpoint_sha256: str
    snapshot_sha256: str  # label snapshot (all splits, the run's label options) at build/update
    built_at: str  # ISO time of the last full build
    updated_at: str | None  # ISO time of the last incremental add
    images: dict  # IndexSpec of images.faiss, as a dict
    labels: dict  # IndexSpec of labels.faiss
    map_method: str  # umap | pca | none
    sentence_encoder: str  # the SSM encoder of labels.npz "sentence"
    unreadable: list[int] = field(default_factory=list)  # studies whose image could not be read
    counts: dict = field(default_factory=dict)  # studies, labels, added by the last update

    @property
    def image_spec(self) -> IndexSpec:
        return IndexSpec(**self.images)


@dataclass(frozen=True)
class LabelSet:
    texts: list[str]  # (L,) distinct label texts (pipeline.ssm)
    groups: list[str]  # (L,) SSM group of each: its category, "no <category>", "no finding"
    vectors: np.ndarray  # (L, D) the run's text tower, L2-normalised
    sentence: np.ndarray  # (L, Ds) the SSM's sentence encoder, L2-normalised
    pair_study: np.ndarray  # (M,) study id of each (study, label) membership
    pair_label: np.ndarray  # (M,) label row of each membership


@dataclass(frozen=True)
class Prompts:
    categories: list[str]  # (C,)
    positive: np.ndarray  # (C, D) "{category}. {explanation}"
    negative: np.ndarray  # (C, D) "no {category}"


@dataclass
class RunIndex:
    """A loaded index: search by study or vector, zero-shot scores, the 2-D map."""

    path: Path
    manifest: Manifest
    images: faiss.Index
    study_ids: np.ndarray  # (N,) rows of ``vectors``
    vectors: np.ndarray  # (N, D)
    labels: LabelSet
    label_index: faiss.Index  # over labels.vectors, ids = label rows
    prompts: Prompts
    map_xy: np.ndarray | None  # (N, 2) in the rows of study_ids, None without a map

    @cached_property
    def row_of(self) -> dict[int, int]:
        return {int(s): i for i, s in enumerate(self.study_ids)}

    def search_vector(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(study id, cosine) of the k nearest studies, best first."""
        scores, ids = search(self.images, vector, k)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def neighbours(self, study_id: int, k: int) -> list[tuple[int, float]]:
        """The k nearest other studies of a stored one (KeyError if it is not indexed)."""
        hits = self.search_vector(self.vectors[self.row_of[study_id]], k + 1)
        return [(s, c) for s, c in hits if s != study_id][:k]

    def nearest_labels(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        """(label text, cosine) of the k label texts nearest to an image (or text) vector."""
        scores, ids = search(self.label_index, vector, k)
        return [(self.labels.texts[i], float(s)) for i, s in zip(ids[0], scores[0], strict=True)
                if i >= 0]

    def zero_shot(self) -> np.ndarray:
        """(N, C) zero-shot probability of each category, CheXzero's softmax over the
        positive and negative prompts (``pipeline.evaluate.metrics.prompt_softmax``)."""
        return prompt_softmax(self.vectors @ self.prompts.positive.T,
                              self.vectors @ self.prompts.negative.T)


# --- writing ---------------------------------------------------------------------------------


def _replace(tmp: Path, path: Path) -> None:
    os.replace(tmp, path)


def write_npz(path: Path, **arrays) -> None:
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    _replace(tmp, path)


def write_index(index: faiss.Index, spec: IndexSpec, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.faiss")
    save_index(index, spec, tmp)
    _replace(tmp, path)
    _replace(tmp.with_suffix(".json"), path.with_suffix(".json"))


def write_manifest(folder: Path, manifest: Manifest) -> None:
    """Written last: a manifest names a complete index."""
    tmp = folder / f".{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(asdict(manifest), indent=2, sort_keys=True) + "\n")
    _replace(tmp, folder / MANIFEST)


def write_labels(folder: Path, labels: LabelSet) -> None:
    write_npz(folder / f"{LABELS}.npz", texts=np.asarray(labels.texts, dtype=str),
              groups=np.asarray(labels.groups, dtype=str), vectors=labels.vectors,
              sentence=labels.sentence, pair_study=labels.pair_study,
              pair_label=labels.pair_label)


def write_prompts(folder: Path, prompts: Prompts) -> None:
    write_npz(folder / f"{PROMPTS}.npz", categories=np.asarray(prompts.categories, dtype=str),
              positive=prompts.positive, negative=prompts.negative)


# --- reading ---------------------------------------------------------------------------------


def read_manifest(folder: Path) -> Manifest | None:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    return Manifest(**json.loads(path.read_text()))


def read_images(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """(study_ids (N,), vectors (N, D))."""
    with np.load(folder / f"{IMAGES}.npz") as z:
        return z["study_ids"].astype(np.int64), z["vectors"].astype(np.float32)


def read_labels(folder: Path) -> LabelSet:
    with np.load(folder / f"{LABELS}.npz") as z:
        return LabelSet(z["texts"].tolist(), z["groups"].tolist(), z["vectors"], z["sentence"],
                        z["pair_study"].astype(np.int64), z["pair_label"].astype(np.int64))


def read_prompts(folder: Path) -> Prompts:
    with np.load(folder / f"{PROMPTS}.npz") as z:
        return Prompts(z["categories"].tolist(), z["positive"], z["negative"])


def read_map(folder: Path, study_ids: np.ndarray) -> np.ndarray | None:
    """The map's points in the order of ``study_ids`` (NaN for a study the map lacks)."""
    path = folder / f"{MAP}.npz"
    if not path.is_file():
        return None
    with np.load(path) as z:
        at = {int(s): xy for s, xy in zip(z["study_ids"], z["xy"], strict=True)}
    return np.asarray([at.get(int(s), (np.nan, np.nan)) for s in study_ids], np.float32)


def load_run_index(run_dir: Path) -> RunIndex:
    """The index of a run (FileNotFoundError without one: run ``python -m pipeline.index``)."""
    folder = index_dir(run_dir)
    manifest = read_manifest(folder)
    if manifest is None:
        raise FileNotFoundError(f"{run_dir}: no index (python -m pipeline.index --run {run_dir})")
    images, _ = load_index(folder / f"{IMAGES}.faiss")
    study_ids, vectors = read_images(folder)
    label_index, _ = load_index(folder / f"{LABELS}.faiss")
    return RunIndex(folder, manifest, images, study_ids, vectors, read_labels(folder),
                    label_index, read_prompts(folder), read_map(folder, study_ids))
