"""What the SSM teaches, read off a run's index (the SSM page): the label-by-label similarity of a
subset in clustered order, the image-by-text targets of one training batch, and the paper's open
question 3 (MedFILIP §5): does the text similarity the SSM is built from track the similarity
of the images those labels sit on?

Text similarity is the SSM's own: the cosine of the sentence-encoder embeddings (before S zeroes
pairs of different groups). Image similarity of two labels is the cosine of the mean image
embeddings (the run's image tower) of the studies carrying each. A pair of the same category
with high text and low image similarity is where the SSM teaches noise: it asks the model to
score both texts alike on images that do not look alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import sparse
from scipy.cluster.hierarchy import leaves_list, linkage
from scipy.spatial.distance import squareform

from model import batch_targets, pad_labels, similarity_matrix
from pipeline.index.files import RunIndex
from pipeline.train.data import draw_texts


def labels_of_studies(index: RunIndex, study_ids) -> np.ndarray:
    """Label rows carried by any of these studies, ascending."""
    hit = np.isin(index.labels.pair_study, np.asarray(list(study_ids), np.int64))
    return np.unique(index.labels.pair_label[hit])


def label_subset(index: RunIndex, category: str | None = None, study_ids=None) -> np.ndarray:
    """Label rows of one SSM group (a category, "no X", "no finding") and/or of some studies."""
    rows = np.arange(len(index.labels.texts))
    if category is not None:
        rows = rows[np.asarray(index.labels.groups)[rows] == category]
    if study_ids is not None:
        rows = np.intersect1d(rows, labels_of_studies(index, study_ids))
    return rows


def clustered_order(sim: np.ndarray) -> np.ndarray:
    """Leaf order of average-linkage clustering on 1 - similarity (similar labels adjacent)."""
    n = len(sim)
    if n < 3:
        return np.arange(n)
    dist = np.clip(1.0 - np.asarray(sim, np.float64), 0.0, None)
    dist = (dist + dist.T) / 2
    np.fill_diagonal(dist, 0.0)
    return leaves_list(linkage(squareform(dist, checks=False), method="average"))


def grouped_order(sim: np.ndarray, groups: list[str]) -> np.ndarray:
    """Clustered order of an S whose groups never touch (S = 0 across groups): each group is
    clustered on its own and the groups follow one another by name, which is the order average
    linkage reaches on the whole matrix at a fraction of its O(K^2) cost."""
    groups = np.asarray(groups, dtype=object)
    out = []
    for g in sorted(set(groups.tolist())):
        members = np.nonzero(groups == g)[0]
        out.append(members[clustered_order(sim[np.ix_(members, members)])])
    return np.concatenate(out) if out else np.zeros(0, np.int64)


@dataclass(frozen=True)
class LabelBlock:
    rows: np.ndarray  # (K,) label rows in clustered order
    texts: list[str]  # (K,)
    groups: list[str]  # (K,)
    matrix: np.ndarray  # (K, K) S of those labels, in that order


def similarity_block(index: RunIndex, rows: np.ndarray) -> LabelBlock:
    """S (model.similarity_matrix) of the given labels, clustered."""
    groups = [index.labels.groups[i] for i in rows]
    s = similarity_matrix(index.labels.sentence[rows], groups)
    order = grouped_order(s, groups)
    rows = np.asarray(rows)[order]
    return LabelBlock(rows, [index.labels.texts[i] for i in rows], [groups[i] for i in order],
                      s[np.ix_(order, order)])


@dataclass(frozen=True)
class BatchTargets:
    study_ids: np.ndarray  # (B,) the batch's images
    text_rows: np.ndarray  # (T,) label rows of its text columns
    target: np.ndarray  # (B, T) max over the image's labels of S[label, text]


def sample_batch(index: RunIndex, study_ids, size: int = 16, seed: int = 0,
                 texts_per_image: int = 1) -> BatchTargets:
    """The SSM targets of one training batch: ``size`` of the given studies (those with a label),
    their text columns drawn as the training draws them (``pipeline.train.data.draw_texts``)."""
    pair_study, pair_label = index.labels.pair_study, index.labels.pair_label
    candidates = np.unique(pair_study[np.isin(pair_study, np.asarray(list(study_ids)))])
    if len(candidates) == 0:
        return BatchTargets(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 0)))
    rng = np.random.default_rng(seed)
    batch = np.sort(rng.choice(candidates, size=min(size, len(candidates)), replace=False))
    own = [tuple(pair_label[pair_study == s].tolist()) for s in batch]
    used = np.unique(np.concatenate([np.asarray(o, np.int64) for o in own]))
    local = {int(r): i for i, r in enumerate(used)}  # S is built for the batch's labels only
    s = similarity_matrix(index.labels.sentence[used], [index.labels.groups[i] for i in used])
    local_own = [tuple(local[r] for r in o) for o in own]
    text_local = draw_texts(local_own, texts_per_image, seed, 0, 0)
    target = batch_targets(torch.from_numpy(s), pad_labels(local_own),
                           torch.from_numpy(text_local)).numpy()
    return BatchTargets(batch, used[text_local], target)


def label_image_means(index: RunIndex, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K, D) mean image embedding of each label's indexed studies, (K,) how many."""
    rows = np.asarray(rows, np.int64)
    pos = np.full(len(index.labels.texts), -1, np.int64)
    pos[rows] = np.arange(len(rows))
    if len(index.study_ids) == 0:
        return np.zeros((len(rows), index.vectors.shape[1]), np.float32), np.zeros(len(rows), int)
    k = pos[index.labels.pair_label]  # (M,) position of each membership's label, -1 if not asked
    order = np.argsort(index.study_ids, kind="stable")
    sorted_ids = index.study_ids[order]
    at = np.minimum(np.searchsorted(sorted_ids, index.labels.pair_study), len(order) - 1)
    keep = (k >= 0) & (sorted_ids[at] == index.labels.pair_study)  # and its study is indexed
    member = sparse.csr_matrix((np.ones(keep.sum(), np.float32), (k[keep], order[at[keep]])),
                               shape=(len(rows), len(index.study_ids)))
    counts = np.asarray(member.sum(axis=1)).ravel().astype(np.int64)
    means = np.asarray(member @ index.vectors, np.float32) / np.maximum(counts, 1)[:, None]
    return means, counts


@dataclass(frozen=True)
class PairTable:
    """Every pair (i < j) of a label subset whose labels each sit on an indexed study."""

    left: np.ndarray  # (P,) label rows
    right: np.ndarray  # (P,)
    text: np.ndarray  # (P,) sentence-encoder cosine
    image: np.ndarray  # (P,) cosine of the mean image embeddings
    same_group: np.ndarray  # (P,) bool: the SSM links them (S > 0 only within a group)
    group: np.ndarray  # (P,) int: the left label's group, an index into ``group_names``
    group_names: list[str]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def text_vs_image(index: RunIndex, rows: np.ndarray) -> PairTable:
    """Every pair of the given labels that both sit on an indexed study."""
    means, counts = label_image_means(index, rows)
    rows = np.asarray(rows)[counts > 0]
    means = _unit(means[counts > 0].astype(np.float64))
    sentence = _unit(index.labels.sentence[rows].astype(np.float64))
    i, j = np.triu_indices(len(rows), k=1)
    names = sorted({index.labels.groups[r] for r in rows})
    code = {g: c for c, g in enumerate(names)}
    groups = np.asarray([code[index.labels.groups[r]] for r in rows], np.int64)
    # (K, K) products then the upper triangle: K = 1,000 labels is 500k pairs, a few MB
    text, image = (sentence @ sentence.T)[i, j], (means @ means.T)[i, j]
    return PairTable(rows[i], rows[j], text, image, groups[i] == groups[j], groups[i], names)


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 (cosines are continuous: ties are too rare to average)."""
    out = np.empty(len(x), np.float64)
    out[np.argsort(x, kind="stable")] = np.arange(len(x))
    return out


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rho: the Pearson correlation of the ranks."""
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(np.corrcoef(_ranks(a), _ranks(b))[0, 1])


def spearman_table(pairs: PairTable) -> dict:
    """Spearman of text vs image similarity: over the same-category pairs of each category,
    over all same-category pairs, and over every pair."""
    per = {}
    same = pairs.same_group
    for code in np.unique(pairs.group[same]):
        sel = same & (pairs.group == code)
        per[pairs.group_names[code]] = {"pairs": int(sel.sum()),
                                        "spearman": _spearman(pairs.text[sel], pairs.image[sel])}
    return {"per_group": per,
            "same_group": {"pairs": int(same.sum()),
                           "spearman": _spearman(pairs.text[same], pairs.image[same])},
            "all": {"pairs": len(pairs.text), "spearman": _spearman(pairs.text, pairs.image)}}


def _percentile(x: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(x, kind="stable"), kind="stable") / max(len(x) - 1, 1)


def worst_pairs(pairs: PairTable, k: int = 20) -> list[int]:
    """Same-group pair positions whose text similarity ranks far above their image similarity
    (rank percentiles: the two cosines live on different scales), worst first."""
    same = np.nonzero(pairs.same_group)[0]
    if len(same) == 0:
        return []
    gap = _percentile(pairs.text[same]) - _percentile(pairs.image[same])
    return same[np.argsort(-gap, kind="stable")[:k]].tolist()
