"""The rendered findings are visible in the pixels.

For each rendered category, phantoms showing only that finding (attributes drawn as in the corpus:
every severity, side and zone) are told apart from normal phantoms by a logistic regression on
generic image features, scored on held-out phantoms (3-fold out-of-fold predictions). Anatomy,
positioning, exposure and noise vary in both groups exactly as in the corpus, so the classifier
must see the finding itself. Target: AUC >= 0.9 for every category.

The features are generic, not one per finding: a 16 x 16 grid of block statistics (mean,
fine/coarse band-pass extremes, line-opening and line-closing top-hats for compact bright and dark
spots, left-right asymmetry, darkest value), z-scored against the training fold and pooled (max, top-4, min,
bottom-4, mean) so that a lesion anywhere counts, plus the coarse 8 x 8 maps themselves.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline

from pipeline.demo.casemix import RENDERED, make_finding, sample_view
from pipeline.demo.lesions import render

SIZE = 128  # px; the demo default is 256, findings must already show at half that
N_POSITIVE = 100  # phantoms per category
N_NORMAL = 200
GRID = 16  # blocks per side
N_MAPS = 11


def _line_footprints(length: int) -> list[np.ndarray]:
    """Line structuring elements at 0, 45, 90, 135 degrees."""
    out, c = [], length // 2
    for a in np.linspace(0, np.pi, 4, endpoint=False):
        fp = np.zeros((length, length), bool)
        t = np.linspace(-c, c, 3 * length)
        fp[np.round(c + t * np.sin(a)).astype(int), np.round(c + t * np.cos(a)).astype(int)] = True
        out.append(fp)
    return out


LINES = _line_footprints(SIZE // 12 + 1)


def _blocks(a: np.ndarray, fn) -> np.ndarray:
    k = a.shape[0] // GRID
    return fn(fn(a.reshape(GRID, k, GRID, k), axis=3), axis=1)


def block_maps(img: np.ndarray) -> np.ndarray:
    """(N_MAPS * GRID * GRID,) block statistics of one image."""
    lo, mid, hi = np.percentile(img, [10, 50, 90])
    img = (img - mid) / (hi - lo)  # exposure-independent
    g1, g2, g3 = (ndimage.gaussian_filter(img, s) for s in (1, 2, 3))
    fine, coarse = img - g1, g1 - g3
    bright = g1 - np.max([ndimage.grey_opening(g1, footprint=f) for f in LINES], 0)
    dark = np.min([ndimage.grey_closing(g1, footprint=f) for f in LINES], 0) - g1
    asym = g2 - g2[:, ::-1]
    maps = [_blocks(asym, np.mean), _blocks(np.abs(asym), np.max), _blocks(img, np.mean),
            _blocks(fine, np.max), _blocks(-fine, np.max), _blocks(np.abs(coarse), np.mean),
            _blocks(coarse, np.max), _blocks(-coarse, np.max), _blocks(bright, np.max),
            _blocks(dark, np.max), _blocks(g2, np.min)]
    return np.stack(maps).ravel()


class PooledAnomaly(BaseEstimator, TransformerMixin):
    """Block maps z-scored on the training fold, pooled over position, plus coarse maps."""

    def fit(self, X, y=None):
        self.mu_, self.sd_ = X.mean(0), X.std(0) + 1e-3
        coarse = self._coarse(X)
        self.cmu_, self.csd_ = coarse.mean(0), coarse.std(0) + 1e-3
        pooled = self._pool(X)
        self.pmu_, self.psd_ = pooled.mean(0), pooled.std(0) + 1e-6
        return self

    def _pool(self, X):
        z = np.sort(((X - self.mu_) / self.sd_).reshape(len(X), N_MAPS, -1), axis=2)
        raw = np.sort(X.reshape(len(X), N_MAPS, -1), axis=2)
        return np.concatenate([z[:, :, -1], z[:, :, -4:].mean(2), z[:, :, 0], z[:, :, :4].mean(2),
                               z.mean(2), raw[:, :, -1], raw[:, :, -4:].mean(2)], 1)

    @staticmethod
    def _coarse(X):
        g = GRID // 2
        return X.reshape(len(X), N_MAPS, g, 2, g, 2).mean((3, 5)).reshape(len(X), -1)

    def transform(self, X):
        pooled = (self._pool(X) - self.pmu_) / self.psd_
        return np.concatenate([3 * pooled, (self._coarse(X) - self.cmu_) / self.csd_], 1)


def _features(findings, seed: list[int]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return block_maps(render(findings, sample_view(rng, findings), SIZE, rng))


@pytest.fixture(scope="module")
def normals() -> np.ndarray:
    return np.stack([_features([], [99, i]) for i in range(N_NORMAL)])


def category_auc(category: str, normals: np.ndarray) -> float:
    ci = RENDERED.index(category)
    pos = [_features([make_finding(category, np.random.default_rng([7, ci, j]))], [98, ci, j])
           for j in range(N_POSITIVE)]
    X = np.concatenate([normals, np.stack(pos)])
    y = np.r_[np.zeros(len(normals)), np.ones(N_POSITIVE)]
    clf = make_pipeline(PooledAnomaly(), LogisticRegression(C=0.05, max_iter=500))
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    score = cross_val_predict(clf, X, y, cv=cv, method="decision_function")
    return float(roc_auc_score(y, score))


@pytest.mark.slow
def test_every_rendered_category_is_visible(normals):
    aucs = {c: category_auc(c, normals) for c in RENDERED}
    print("\n" + "\n".join(f"{c:28s} AUC {a:.3f}" for c, a in aucs.items()))
    low = {c: round(a, 3) for c, a in aucs.items() if a < 0.9}
    assert not low, f"categories not separable from normal (AUC < 0.9): {low}"
