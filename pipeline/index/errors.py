"""Which curated labels to doubt: the model's zero-shot scores against the store's labels.

Per (study, category) cell the curated label folds the CheXpert way (``pipeline.evaluate``:
1 present, 0 absent or not mentioned, -1 uncertain, left out). The index's zero-shot scores
(CheXzero's prompt softmax) are calibrated per category with Platt scaling fitted on the labels
themselves (10% noise barely moves a logistic fit), so that a score means the same across
categories; a cell's *suspicion* is the calibrated probability that its label is wrong,
``p`` for a 0 and ``1 - p`` for a 1. A study's suspicion is its most suspicious cell.

The model *disagrees* with a label when its suspicion is above 0.5 (the calibrated model finds
the other answer likelier); the confusion counts use the same rule. Two lists come out of it,
each of disagreeing cells ranked by suspicion, so that a label fixed to the model's answer
leaves its list:
  * label-error candidates: cells with a curated finding of that category (a present one the
    image does not show, or an explicit "no X" the image does show);
  * possibly missed findings: cells of categories the report's findings never mention, whose
    image scores high (the extractor or the reviewer may have missed it).

cleanlab's multi-label ``find_label_issues`` (confident learning, Northcutt et al. 2021) ranks
the studies too, from the raw zero-shot scores, for comparison (``bench/label_errors.py``).
Both want out-of-sample scores: a study the run trained on (``in_sample``) has had its label
pulled towards the model, so its disagreement is weaker evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

from pipeline.evaluate import metrics as m
from pipeline.evaluate.labels import EvalLabels, LabelError, labels_from_store
from pipeline.index.files import RunIndex

TRAIN_SPLITS = ("train",)  # the split a run trains on: its studies' scores are in-sample
DISAGREE = 0.5  # suspicion above which the model's answer is the likelier one


@dataclass(frozen=True)
class Analysis:
    study_ids: np.ndarray  # (N,) studies both labelled and indexed
    splits: list[str]  # (N,)
    categories: list[str]  # (C,) categories with a positive and a negative among them
    y: np.ndarray  # (N, C) int8 curated label: 1, 0, -1 (uncertain: not scored)
    mentioned: np.ndarray  # (N, C) bool: the report has a finding of that category
    score: np.ndarray  # (N, C) raw zero-shot probability
    prob: np.ndarray  # (N, C) calibrated per category
    suspicion: np.ndarray  # (N, C) probability the label is wrong; NaN where not scored

    @property
    def in_sample(self) -> np.ndarray:
        return np.isin(self.splits, TRAIN_SPLITS)

    def study_suspicion(self) -> np.ndarray:
        """(N,) the most suspicious scored cell of each study (0 with none)."""
        s = np.where(np.isnan(self.suspicion), -np.inf, self.suspicion)
        return np.maximum(s.max(axis=1, initial=-np.inf), 0.0)


@dataclass(frozen=True)
class Suspect:
    study_id: int
    split: str
    category: str
    label: int  # the curated label now: 1 present, 0 absent / not mentioned
    mentioned: bool
    score: float  # raw zero-shot probability
    prob: float  # calibrated
    suspicion: float
    in_sample: bool


def store_labels(db_url: str, splits: list[str], include_proposed: bool = False
                 ) -> tuple[EvalLabels, list[str]]:
    """The curated labels of every given split, joined: (labels, split of each study)."""
    parts = []
    for split in splits:
        try:
            parts.append((split, labels_from_store(db_url, split, include_proposed)))
        except LabelError:
            continue  # a split without labelled studies
    if not parts:
        raise LabelError("no labelled studies with an image in the store"
                         + ("" if include_proposed else " (unreviewed extractions excluded)"))
    first = parts[0][1]
    joined = EvalLabels([s for _, p in parts for s in p.study_ids], first.categories,
                        np.concatenate([p.matrix for _, p in parts]),
                        {k: v for _, p in parts for k, v in p.findings.items()}, "store")
    return joined, [split for split, p in parts for _ in p.study_ids]


def calibrate(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """(N,) Platt-scaled probabilities of one category, fitted on its scored labels; the raw
    scores when a class is missing."""
    keep = y != m.NOT_SCORED
    if len(np.unique(y[keep])) < 2:
        return s.astype(np.float64)
    logit = np.log(np.clip(s, 1e-6, 1 - 1e-6) / np.clip(1 - s, 1e-6, 1)).reshape(-1, 1)
    fit = LogisticRegression(C=100.0).fit(logit[keep], y[keep])
    return fit.predict_proba(logit)[:, 1]


def analyse_arrays(study_ids, splits, categories, y, mentioned, score) -> Analysis:
    """The analysis of given labels and scores (the bench and the tests feed it directly)."""
    y = np.asarray(y, np.int8)
    score = np.asarray(score, np.float64)
    prob = np.column_stack([calibrate(y[:, j], score[:, j]) for j in range(y.shape[1])]) \
        if y.shape[1] else score
    suspicion = np.where(y == 1, 1 - prob, prob)
    suspicion = np.where(y == m.NOT_SCORED, np.nan, suspicion)
    return Analysis(np.asarray(study_ids, np.int64), list(splits), list(categories), y,
                    np.asarray(mentioned, bool), score, prob, suspicion)


def analyse(labels: EvalLabels, splits: list[str], index: RunIndex) -> Analysis:
    """Labels and the index's zero-shot scores, on the studies both hold."""
    rows = [i for i, s in enumerate(labels.study_ids) if s in index.row_of]
    ids = [labels.study_ids[i] for i in rows]
    zero_shot = index.zero_shot()[[index.row_of[s] for s in ids]]  # (N, C_prompts)
    col = {c: j for j, c in enumerate(index.prompts.categories)}
    y_all = labels.matrix[rows]
    cats = [c for j, c in enumerate(labels.categories) if c in col
            and (y_all[:, j] == 1).any() and (y_all[:, j] == 0).any()]
    y = np.stack([y_all[:, labels.categories.index(c)] for c in cats], axis=1) if cats else \
        np.zeros((len(ids), 0), np.int8)
    named = [{r.category for r in labels.findings[s]} for s in ids]
    mentioned = np.array([[c in n for c in cats] for n in named], bool).reshape(len(ids), -1)
    score = zero_shot[:, [col[c] for c in cats]] if cats else np.zeros((len(ids), 0))
    return analyse_arrays(ids, [splits[i] for i in rows], cats, y, mentioned, score)


def suspects(a: Analysis, kind: str = "label", category: str | None = None,
             out_of_sample_only: bool = False, limit: int | None = None,
             disagree_only: bool = True) -> list[Suspect]:
    """Cells ranked by suspicion. ``kind``: "label" (a curated finding of that category is
    doubted), "missed" (no finding of it, the image scores high), or "all"; with
    ``disagree_only`` only the cells the model disagrees with."""
    keep = ~np.isnan(a.suspicion)
    if disagree_only:
        keep &= np.nan_to_num(a.suspicion) > DISAGREE
    if kind == "label":
        keep &= a.mentioned
    elif kind == "missed":
        keep &= ~a.mentioned & (a.y == 0)
    if category is not None:
        keep &= np.asarray([c == category for c in a.categories])[None, :]
    if out_of_sample_only:
        keep &= ~a.in_sample[:, None]
    rows, cols = np.nonzero(keep)
    order = np.argsort(-a.suspicion[rows, cols], kind="stable")[:limit]
    ins = a.in_sample
    return [Suspect(int(a.study_ids[i]), a.splits[i], a.categories[j], int(a.y[i, j]),
                    bool(a.mentioned[i, j]), float(a.score[i, j]), float(a.prob[i, j]),
                    float(a.suspicion[i, j]), bool(ins[i]))
            for i, j in zip(rows[order], cols[order], strict=True)]


def rank_studies(a: Analysis) -> np.ndarray:
    """Study rows, most suspicious first (our ranking)."""
    return np.argsort(-a.study_suspicion(), kind="stable")


def cleanlab_labels(a: Analysis) -> list[list[int]]:
    """Each study's present categories as cleanlab wants them (uncertain counts as absent)."""
    return [np.nonzero(row == 1)[0].tolist() for row in a.y]


def rank_studies_cleanlab(a: Analysis, use_calibrated: bool = False) -> tuple[np.ndarray, int]:
    """(study rows ranked by cleanlab, how many it flags): the studies its multi-label
    ``find_label_issues`` flags come first in its own order (self-confidence), then the rest
    by its label quality score."""
    from cleanlab.multilabel_classification import filter as cl_filter  # noqa: PLC0415
    from cleanlab.multilabel_classification import rank as cl_rank  # noqa: PLC0415

    labels, probs = cleanlab_labels(a), a.prob if use_calibrated else a.score
    flagged = np.asarray(cl_filter.find_label_issues(
        labels, probs, return_indices_ranked_by="self_confidence", n_jobs=1), np.int64)
    quality = cl_rank.get_label_quality_scores(labels, probs)
    rest = np.setdiff1d(np.argsort(quality, kind="stable"), flagged, assume_unique=True)
    rest = rest[np.argsort(quality[rest], kind="stable")]
    return np.concatenate([flagged, rest]), len(flagged)


def cleanlab_cell_flags_of(y: np.ndarray, score: np.ndarray) -> np.ndarray:
    """(N, C) bool: cells cleanlab's per-class confident learning flags, from (N, C) labels
    (1 present; 0 and -1 not) and raw scores."""
    from cleanlab.multilabel_classification import filter as cl_filter  # noqa: PLC0415

    if y.shape[1] == 0 or len(y) == 0:
        return np.zeros(y.shape, bool)
    labels = [np.nonzero(row == 1)[0].tolist() for row in y]
    # n_jobs=1: its default forks a worker pool, which hangs inside a threaded server
    flags = np.asarray(cl_filter.find_multilabel_issues_per_class(labels, score, n_jobs=1), bool)
    return flags if flags.shape == y.shape else flags.T  # (N, K); older releases: K masks


def cleanlab_cell_flags(a: Analysis) -> np.ndarray:
    return cleanlab_cell_flags_of(a.y, a.score)


def category_table(a: Analysis, out_of_sample_only: bool = False) -> list[dict]:
    """Per category: positives, AUC of the raw score against the curated labels, and the
    confusion counts of the model's answer (calibrated probability >= 0.5) against them."""
    out = []
    rows = ~a.in_sample if out_of_sample_only else np.ones(len(a.study_ids), bool)
    for j, c in enumerate(a.categories):
        y, s, p = a.y[rows, j], a.score[rows, j], a.prob[rows, j]
        keep = y != m.NOT_SCORED
        yy, pp = y[keep] == 1, p[keep] >= DISAGREE
        out.append({"category": c, "n_pos": int(yy.sum()), "n_neg": int((~yy).sum()),
                    "auc": m.auc(y, s), "tp": int((yy & pp).sum()), "fp": int((~yy & pp).sum()),
                    "fn": int((yy & ~pp).sum()), "tn": int((~yy & ~pp).sum())})
    return out
