"""Evaluation metrics: pure functions over numpy arrays, no I/O, unit-tested on hand-computed cases.

Conventions
  * ``y``: (N,) labels, 1 positive, 0 negative, and -1 "not scored" (an uncertain finding, which
    counts neither way); every function drops the -1 entries first.
  * ``s``: (N,) scores, higher = more likely positive.
  * A figure that is undefined (one class only, no query with a relevant item) is ``None``, so it
    serialises to JSON ``null`` instead of a NaN that breaks readers.

Zero-shot scoring follows CheXzero (Tiu et al. 2022): each category has a positive and a negative
prompt, and an image's score is the softmax of its two cosines, i.e.
``exp(cos_pos) / (exp(cos_pos) + exp(cos_neg))``. F1 and accuracy come from a threshold sweep
that keeps the threshold of maximum F1 and, among ties, the best accuracy there, as MedFILIP's
``train.py`` ``eval()`` does (it sweeps a 0.001 grid; we sweep every distinct score, which
reaches every operating point that grid can and no rounding).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

NOT_SCORED = -1
RECALL_KS = (1, 5, 10)
ROC_MAX_POINTS = 101  # points kept per ROC curve in metrics.json (the page draws them)


def _scored(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y, s = np.asarray(y).ravel(), np.asarray(s, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels {y.shape} and scores {s.shape} differ in shape")
    keep = y != NOT_SCORED
    return y[keep].astype(np.int64), s[keep]


def count_classes(y: np.ndarray) -> tuple[int, int, int]:
    """(positives, negatives, not scored)."""
    y = np.asarray(y).ravel()
    return int((y == 1).sum()), int((y == 0).sum()), int((y == NOT_SCORED).sum())


def auc(y: np.ndarray, s: np.ndarray) -> float | None:
    """ROC AUC, ties counted half (Mann-Whitney); None unless both classes occur."""
    y, s = _scored(y, s)
    if y.size == 0 or y.min() == y.max():
        return None
    return float(roc_auc_score(y, s))


def roc_points(y: np.ndarray, s: np.ndarray, max_points: int = ROC_MAX_POINTS
               ) -> dict[str, list[float]] | None:
    """{"fpr": [...], "tpr": [...]} from (0, 0) to (1, 1), thinned to ``max_points`` evenly
    spaced vertices (the first and last kept); None unless both classes occur."""
    y, s = _scored(y, s)
    if y.size == 0 or y.min() == y.max():
        return None
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=True)
    if len(fpr) > max_points:
        idx = np.unique(np.linspace(0, len(fpr) - 1, max_points).round().astype(int))
        fpr, tpr = fpr[idx], tpr[idx]
    return {"fpr": [round(float(v), 4) for v in fpr], "tpr": [round(float(v), 4) for v in tpr]}


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float  # predict positive when score >= threshold
    f1: float
    accuracy: float
    precision: float
    recall: float


def max_f1_point(y: np.ndarray, s: np.ndarray) -> OperatingPoint | None:
    """The threshold of maximum F1 (ties: highest accuracy, then highest threshold), swept over
    every distinct score; None without a positive or without any scored item."""
    y, s = _scored(y, s)
    n_pos = int(y.sum())
    if y.size == 0 or n_pos == 0:
        return None
    order = np.argsort(-s, kind="stable")
    ys, ss = y[order], s[order]
    last = np.r_[np.nonzero(np.diff(ss))[0], ss.size - 1]  # last index of each distinct score
    tp = np.cumsum(ys)[last]  # predicted positive = everything down to that score
    fp = (last + 1) - tp
    fn, tn = n_pos - tp, (y.size - n_pos) - fp
    f1 = 2 * tp / (2 * tp + fp + fn)
    acc = (tp + tn) / y.size
    best = np.lexsort((ss[last], acc, f1))[-1]  # last key is primary
    return OperatingPoint(threshold=float(ss[last][best]), f1=float(f1[best]),
                          accuracy=float(acc[best]), precision=float(tp[best] / (tp[best] + fp[best])),
                          recall=float(tp[best] / n_pos))


def prompt_softmax(cos_pos: np.ndarray, cos_neg: np.ndarray) -> np.ndarray:
    """CheXzero's score: softmax over (positive, negative) prompt cosines, the positive's share.
    Shapes broadcast, e.g. (N, C) image-by-category cosines."""
    cos_pos, cos_neg = np.asarray(cos_pos, np.float64), np.asarray(cos_neg, np.float64)
    return 1.0 / (1.0 + np.exp(cos_neg - cos_pos))


def multilabel_auc(Y: np.ndarray, S: np.ndarray) -> dict[str, float | int | None]:
    """Multi-label AUC over an (N, C) label matrix (1 / 0 / -1) and score matrix.

    ``macro``: mean of the per-category AUCs over the categories with both classes.
    ``micro``: one AUC over every scored (image, category) pair pooled, which also asks whether
    scores are comparable across categories (a model can rank within each category and still
    fail it).
    """
    Y, S = np.asarray(Y), np.asarray(S, np.float64)
    if Y.shape != S.shape or Y.ndim != 2:
        raise ValueError(f"labels {Y.shape} and scores {S.shape} must be equal (N, C) shapes")
    per = [auc(Y[:, c], S[:, c]) for c in range(Y.shape[1])]
    per = [a for a in per if a is not None]
    return {"macro": float(np.mean(per)) if per else None, "micro": auc(Y.ravel(), S.ravel()),
            "n_categories": len(per)}


def recall_at_k(sim: np.ndarray, relevant: np.ndarray, ks: tuple[int, ...] = RECALL_KS
                ) -> dict[str, float | None]:
    """Retrieval recall: the share of queries with at least one relevant item among their top K.

    ``sim``: (Q, G) query-by-gallery similarity; ``relevant``: (Q, G) bool. Queries with no
    relevant item are left out. Ties in similarity are broken by gallery order (stable sort),
    so the figure does not depend on the platform.
    """
    sim, relevant = np.asarray(sim, np.float64), np.asarray(relevant, bool)
    if sim.shape != relevant.shape or sim.ndim != 2:
        raise ValueError(f"similarity {sim.shape} and relevance {relevant.shape} must be (Q, G)")
    queries = relevant.any(axis=1)
    sim, relevant = sim[queries], relevant[queries]
    out: dict[str, float | None] = {}
    if not len(sim):
        return {f"R@{k}": None for k in ks}
    ranked = np.argsort(-sim, axis=1, kind="stable")
    hits = np.take_along_axis(relevant, ranked, axis=1)  # (Q, G) relevance in rank order
    first = np.where(hits.any(axis=1), hits.argmax(axis=1), sim.shape[1])  # 0-based rank
    for k in ks:
        out[f"R@{k}"] = float((first < k).mean())
    return out


def retrieval(image_emb: np.ndarray, text_emb: np.ndarray, relevant: np.ndarray,
              ks: tuple[int, ...] = RECALL_KS) -> dict:
    """Image->text and text->image R@K for L2-normalised (N, D) image and (T, D) text
    embeddings; ``relevant``: (N, T) bool, image i carries text t."""
    sim = np.asarray(image_emb) @ np.asarray(text_emb).T  # (N, T) cosines
    relevant = np.asarray(relevant, bool)
    return {"image_to_text": recall_at_k(sim, relevant, ks),
            "text_to_image": recall_at_k(sim.T, relevant.T, ks),
            "n_image_queries": int(relevant.any(axis=1).sum()),
            "n_text_queries": int(relevant.any(axis=0).sum())}


def nearest_by_cosine(query: np.ndarray, candidates: np.ndarray) -> tuple[int, float]:
    """(index, cosine) of the candidate row nearest to ``query``; rows need not be normalised."""
    q = np.asarray(query, np.float64)
    c = np.asarray(candidates, np.float64)
    cos = (c @ q) / (np.linalg.norm(c, axis=1) * np.linalg.norm(q) + 1e-12)
    i = int(np.argmax(cos))
    return i, float(cos[i])


def abnormal_only(y: np.ndarray, other_positive: np.ndarray) -> np.ndarray:
    """Labels for the "against abnormal images only" task: the positives stay, and a negative
    stays only when the image shows another finding (``other_positive``: (N,) bool); the rest
    become NOT_SCORED."""
    y = np.asarray(y).copy()
    y[(y == 0) & ~np.asarray(other_positive, bool)] = NOT_SCORED
    return y


def unseen_figures(y: np.ndarray, score: np.ndarray, other_positive: np.ndarray,
                   nearest_score: np.ndarray) -> dict[str, float | int | None]:
    """The three figures of a category held out of training (issue 8: an AUC above 0.5 can come
    from "abnormal vs normal" alone):

    ``auc``: its prompt's AUC against every other test image;
    ``auc_abnormal``: the same against images with other findings only;
    ``vs_nearest`` / ``vs_nearest_abnormal``: that AUC minus the AUC the nearest seen category's
    prompt (``nearest_score``) reaches on the same labels, i.e. what the unseen prompt adds
    over a neighbour the model did learn.
    """
    y_abn = abnormal_only(y, other_positive)
    a, a_abn = auc(y, score), auc(y_abn, score)
    near, near_abn = auc(y, nearest_score), auc(y_abn, nearest_score)
    return {"auc": a, "auc_abnormal": a_abn, "nearest_auc": near, "nearest_auc_abnormal": near_abn,
            "vs_nearest": None if a is None or near is None else a - near,
            "vs_nearest_abnormal": None if a_abn is None or near_abn is None else a_abn - near_abn,
            "n_pos": count_classes(y)[0], "n_neg_abnormal": count_classes(y_abn)[1]}
