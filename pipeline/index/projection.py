"""The 2-D map of the image embeddings: UMAP (umap-learn) from ``UMAP_MIN_POINTS`` studies on,
PCA below (UMAP's neighbour graph says little about a few hundred points, and PCA is exact and
instant), or PCA when umap-learn is not installed.

The fitted projection is saved beside the map, so studies added later land on the same map
(``transform``) instead of a refit that would move every point the reviewer has learnt.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.index.files import MAP, write_npz

UMAP_MIN_POINTS = 500


@dataclass
class Projection:
    method: str  # umap | pca
    mean: np.ndarray | None = None  # PCA: (D,) centre
    components: np.ndarray | None = None  # PCA: (2, D)
    umap: object | None = None  # a fitted umap.UMAP

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """(N, D) -> (N, 2) float32 on the fitted map."""
        if len(vectors) == 0:
            return np.zeros((0, 2), np.float32)
        if self.method == "umap":
            return np.asarray(self.umap.transform(vectors), np.float32)
        return ((vectors - self.mean) @ self.components.T).astype(np.float32)


def _pca(vectors: np.ndarray) -> Projection:
    mean = vectors.mean(axis=0)
    # the top two right singular vectors of the centred data; a 1-point store has none
    _, _, vt = np.linalg.svd(vectors - mean, full_matrices=False)
    components = np.zeros((2, vectors.shape[1]), np.float32)
    components[:min(2, len(vt))] = vt[:2]
    return Projection("pca", mean.astype(np.float32), components)


def fit_map(vectors: np.ndarray, seed: int = 0) -> tuple[np.ndarray, Projection]:
    """(xy (N, 2), projection) of L2-normalised vectors."""
    vectors = np.asarray(vectors, np.float32)
    if len(vectors) == 0:
        return np.zeros((0, 2), np.float32), Projection("pca", np.zeros(vectors.shape[1]),
                                                        np.zeros((2, vectors.shape[1])))
    if len(vectors) >= UMAP_MIN_POINTS:
        try:
            import umap  # noqa: PLC0415 - optional and slow to import (numba)
        except ImportError:
            umap = None
        if umap is not None:
            model = umap.UMAP(n_components=2, n_neighbors=15, min_dist=0.1, metric="cosine",
                              random_state=seed)
            xy = np.asarray(model.fit_transform(vectors), np.float32)
            return xy, Projection("umap", umap=model)
    projection = _pca(vectors)
    return projection.transform(vectors), projection


def save_map(folder: Path, study_ids: np.ndarray, xy: np.ndarray, projection: Projection) -> None:
    write_npz(folder / f"{MAP}.npz", study_ids=np.asarray(study_ids, np.int64),
              xy=np.asarray(xy, np.float32), method=np.asarray(projection.method))
    if projection.method == "umap":
        tmp = folder / f".{MAP}-umap.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            pickle.dump(projection.umap, fh)
        os.replace(tmp, folder / f"{MAP}-umap.pkl")
    else:
        write_npz(folder / f"{MAP}-pca.npz", mean=projection.mean,
                  components=projection.components)


def load_projection(folder: Path) -> tuple[np.ndarray, np.ndarray, Projection] | None:
    """(study_ids, xy, projection) of a saved map, None when there is none."""
    path = folder / f"{MAP}.npz"
    if not path.is_file():
        return None
    with np.load(path) as z:
        ids, xy, method = z["study_ids"], z["xy"], str(z["method"])
    if method == "umap":
        # our own file, written by save_map above (never a pickle from elsewhere)
        with open(folder / f"{MAP}-umap.pkl", "rb") as fh:
            return ids, xy, Projection("umap", umap=pickle.load(fh))  # noqa: S301
    with np.load(folder / f"{MAP}-pca.npz") as z:
        return ids, xy, Projection("pca", z["mean"], z["components"])
