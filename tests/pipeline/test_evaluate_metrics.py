"""Evaluation metrics on hand-computed cases (pipeline/evaluate/metrics.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score

from pipeline.evaluate import metrics as m


def test_auc_counts_pairs_and_skips_unscored():
    # positives 0.35, 0.8 vs negatives 0.1, 0.4: 3 of 4 pairs ranked right
    assert m.auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    # an uncertain (-1) item counts neither way, whatever its score
    assert m.auc([0, 0, 1, 1, -1], [0.1, 0.4, 0.35, 0.8, 0.0]) == pytest.approx(0.75)
    assert m.auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)  # a tie is half a pair
    assert m.auc([1, 1, -1], [0.2, 0.3, 0.1]) is None  # one class: undefined, not NaN
    assert m.count_classes([1, 0, -1, 1, 0, 0]) == (2, 3, 1)


def test_max_f1_point_by_hand():
    # thresholds: 0.9 -> F1 2/3; 0.8 -> 1/2; 0.7 -> TP2 FP1 FN0: F1 0.8, accuracy 4/5; lower worse
    p = m.max_f1_point([1, 0, 1, 0, 0], [0.9, 0.8, 0.7, 0.2, 0.1])
    assert p.threshold == pytest.approx(0.7)
    assert (p.f1, p.accuracy, p.precision, p.recall) == pytest.approx((0.8, 0.8, 2 / 3, 1.0))


def test_max_f1_point_treats_tied_scores_as_one_threshold():
    # at 0.5 both the positive and the negative are predicted positive: TP2 FP1 -> F1 0.8,
    # never the TP2 FP0 (F1 1.0) a per-item sweep would claim
    p = m.max_f1_point([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1])
    assert (p.threshold, p.f1, p.accuracy) == pytest.approx((0.5, 0.8, 0.75))


def test_max_f1_point_breaks_f1_ties_by_accuracy():
    # thresholds 6 and 3 both give F1 2/3; accuracy 5/6 at 6 beats 4/6 at 3 (MedFILIP's rule)
    p = m.max_f1_point([1, 0, 0, 1, 0, 0], [6, 5, 4, 3, 2, 1])
    assert (p.threshold, p.f1, p.accuracy) == pytest.approx((6, 2 / 3, 5 / 6))
    assert m.max_f1_point([0, 0, -1], [0.1, 0.2, 0.3]) is None


def test_max_f1_point_matches_a_brute_force_grid():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = np.round(y * 0.3 + rng.random(200), 2)  # rounded: many ties
    best = max(f1_score(y, s >= t) for t in np.unique(s))
    assert m.max_f1_point(y, s).f1 == pytest.approx(best)


def test_prompt_softmax_is_chexzero_share_of_the_positive():
    assert m.prompt_softmax(0.5, 0.5) == pytest.approx(0.5)
    assert m.prompt_softmax(1.0, 0.0) == pytest.approx(math.e / (math.e + 1))
    out = m.prompt_softmax(np.array([[0.2, 0.9]]), np.array([[0.4, 0.1]]))
    assert out.shape == (1, 2) and out[0, 0] < 0.5 < out[0, 1]


def test_multilabel_auc_macro_and_micro():
    Y = np.array([[1, 0, 0], [0, 1, 0], [1, -1, 0], [0, 0, 0]])
    S = np.array([[0.9, 0.3, 0.5], [0.2, 0.6, 0.5], [0.4, 0.0, 0.5], [0.5, 0.1, 0.5]])
    out = m.multilabel_auc(Y, S)
    # column 0: 3/4; column 1: 1; column 2 has no positive and is left out
    assert out["macro"] == pytest.approx(0.875) and out["n_categories"] == 2
    # pooled: positives .9 .6 .4 vs negatives .2 .5 (col 0), .3 .1 (col 1), four .5s (col 2):
    # .9 and .6 beat all 8; .4 beats .2 .3 .1 -> (8 + 8 + 3) / 24
    assert out["micro"] == pytest.approx(19 / 24)


def test_recall_at_k_by_hand():
    sim = np.array([[0.9, 0.1, 0.5], [0.2, 0.8, 0.3], [0.1, 0.2, 0.3]])
    rel = np.array([[0, 0, 1], [0, 1, 0], [0, 0, 0]], bool)
    # query 0 finds its item at rank 2, query 1 at rank 1, query 2 has none and is left out
    assert m.recall_at_k(sim, rel, ks=(1, 2)) == {"R@1": 0.5, "R@2": 1.0}
    assert m.recall_at_k(sim, np.zeros_like(rel), ks=(1,)) == {"R@1": None}


def test_retrieval_both_directions():
    img = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    txt = np.array([[1.0, 0.0], [0.0, 1.0]])
    rel = np.array([[1, 0], [0, 1], [0, 1]], bool)
    out = m.retrieval(img, txt, rel, ks=(1,))
    # image 2 (0.6, 0.8) is nearest text 1: all three images hit at rank 1
    assert out["image_to_text"] == {"R@1": 1.0}
    # text 1's best image is image 1 (cos 1.0): relevant; text 0's is image 0: relevant
    assert out["text_to_image"] == {"R@1": 1.0}
    assert (out["n_image_queries"], out["n_text_queries"]) == (3, 2)
    rel2 = np.array([[0, 1], [1, 0], [0, 0]], bool)  # every top hit wrong
    out2 = m.retrieval(img, txt, rel2, ks=(1, 2))
    assert out2["image_to_text"] == {"R@1": 0.0, "R@2": 1.0}
    assert out2["n_image_queries"] == 2


def test_roc_points_run_corner_to_corner_and_thin_out():
    pts = m.roc_points([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert pts == {"fpr": [0.0, 0.0, 0.5, 0.5, 1.0], "tpr": [0.0, 0.5, 0.5, 1.0, 1.0]}
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 5000)
    big = m.roc_points(y, y * 0.5 + rng.random(5000), max_points=51)
    assert len(big["fpr"]) <= 51 and big["fpr"][0] == 0.0 and big["tpr"][-1] == 1.0
    assert np.all(np.diff(big["fpr"]) >= 0)
    assert m.roc_points([1, 1], [0.1, 0.2]) is None


def test_nearest_by_cosine():
    i, cos = m.nearest_by_cosine(np.array([1.0, 0.0]), np.array([[0, 1], [2, 2], [-1, 0]]))
    assert i == 1 and cos == pytest.approx(math.sqrt(0.5))


def test_unseen_figures_by_hand():
    y = np.array([1, 1, 0, 0, 0, 0])
    other = np.array([False, False, True, True, False, False])  # images 2, 3 show other findings
    score = np.array([0.9, 0.6, 0.7, 0.5, 0.1, 0.2])
    nearest = np.array([0.8, 0.3, 0.9, 0.2, 0.1, 0.1])
    out = m.unseen_figures(y, score, other, nearest)
    # vs all negatives: .9 beats 4, .6 beats 3 -> 7/8; vs abnormal negatives (.7, .5): 3/4
    assert out["auc"] == pytest.approx(7 / 8) and out["auc_abnormal"] == pytest.approx(3 / 4)
    # nearest prompt: .8 beats 3, .3 beats 3 -> 6/8; abnormal: .8 > .2, .3 > .2 -> 2/4
    assert out["nearest_auc"] == pytest.approx(6 / 8)
    assert out["nearest_auc_abnormal"] == pytest.approx(2 / 4)
    assert out["vs_nearest"] == pytest.approx(1 / 8)
    assert out["vs_nearest_abnormal"] == pytest.approx(1 / 4)
    assert (out["n_pos"], out["n_neg_abnormal"]) == (2, 2)
    # positives with other findings stay positive; uncertain stays unscored
    assert list(m.abnormal_only(np.array([1, 0, 0, -1]), np.array([1, 1, 0, 1], bool))) == [1, 0, -1, -1]
