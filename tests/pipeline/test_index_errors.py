"""The label-error ranking on hand-made labels and scores: flipped labels rank first, the lists
split label doubts from missed findings, confusion counts and cleanlab's ranking."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.index import errors


def _case(n=200, flips=(3, 50, 120, 177), seed=0):
    """Two categories whose scores separate the true labels well; ``flips`` studies have
    their category-0 label flipped (the errors to find)."""
    rng = np.random.default_rng(seed)
    truth = (rng.random((n, 2)) < 0.3).astype(np.int8)
    score = np.clip(0.3 + 0.4 * truth + rng.normal(0, 0.08, (n, 2)), 0.01, 0.99)
    y = truth.copy()
    y[list(flips), 0] = 1 - y[list(flips), 0]
    mentioned = y == 1
    splits = ["test" if i % 4 == 0 else "train" for i in range(n)]
    return errors.analyse_arrays(np.arange(100, 100 + n), splits, ["a", "b"], y, mentioned,
                                 score), truth


def test_calibration_is_monotone_and_falls_back_without_both_classes():
    y = np.array([0, 0, 0, 1, 1, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.55, 0.6, 0.9])
    p = errors.calibrate(y, s)
    assert np.all(np.diff(p) > 0) and p.min() > 0 and p.max() < 1
    assert np.array_equal(errors.calibrate(np.zeros(3, int), s[:3]), s[:3])
    # an uncertain label (-1) takes no part in the fit but gets a probability
    assert errors.calibrate(np.array([0, -1, 1, 0, 1]), s[:5]).shape == (5,)


def test_flipped_labels_rank_first():
    a, _ = _case()
    top = errors.rank_studies(a)[:4]
    assert sorted(a.study_ids[top].tolist()) == [103, 150, 220, 277]
    cells = errors.suspects(a, "all", disagree_only=False, limit=4)
    assert {(s.study_id, s.category) for s in cells} == {(103, "a"), (150, "a"), (220, "a"),
                                                          (277, "a")}
    assert all(s.suspicion > errors.DISAGREE for s in cells)


def test_label_doubts_and_missed_findings_are_separate_lists():
    a, truth = _case()
    for s in errors.suspects(a, "label"):
        assert s.mentioned and s.label == 1 and s.suspicion > 0.5
    missed = errors.suspects(a, "missed")
    assert missed and all(not s.mentioned and s.label == 0 for s in missed)
    # a flipped-to-0 present finding is "not mentioned" here: it is a missed finding
    dropped = [i for i in (3, 50, 120, 177) if truth[i, 0] == 1]
    assert {100 + i for i in dropped} <= {s.study_id for s in missed if s.category == "a"}
    ranked = [s.suspicion for s in missed]
    assert ranked == sorted(ranked, reverse=True)


def test_filters_by_category_and_sample():
    a, _ = _case()
    assert {s.category for s in errors.suspects(a, "all", "b", disagree_only=False)} == {"b"}
    oos = errors.suspects(a, "all", out_of_sample_only=True, disagree_only=False)
    assert oos and all(s.split == "test" and not s.in_sample for s in oos)
    assert a.in_sample.sum() == 150


def test_uncertain_cells_are_never_suspects():
    a = errors.analyse_arrays([1, 2, 3, 4], ["test"] * 4, ["a"], [[1], [-1], [0], [1]],
                              [[True], [True], [False], [True]], [[0.9], [0.1], [0.2], [0.8]])
    assert np.isnan(a.suspicion[1, 0])
    assert 2 not in {s.study_id for s in errors.suspects(a, "all", disagree_only=False)}


def test_category_table_counts_the_models_answer():
    # calibrated p >= 0.5 is the model's "present": with these scores the fit puts the cut
    # between 0.45 and 0.55, so study 3 (label 0, score 0.7) is a false positive
    y = np.array([[1], [1], [0], [0], [0], [1], [0], [0]])
    s = np.array([[0.9], [0.8], [0.7], [0.1], [0.2], [0.3], [0.15], [0.25]])
    a = errors.analyse_arrays(range(8), ["test"] * 8, ["a"], y, y == 1, s)
    (row,) = errors.category_table(a)
    assert (row["n_pos"], row["n_neg"]) == (3, 5)
    assert row["tp"] + row["fn"] == 3 and row["fp"] + row["tn"] == 5
    assert row["auc"] == pytest.approx((5 + 5 + 4) / 15)  # the 0.3 positive beats 4 of 5


def test_cleanlab_ranks_every_study_and_flags_the_flips():
    a, _ = _case()
    order, flagged = errors.rank_studies_cleanlab(a)
    assert sorted(order.tolist()) == list(range(len(a.study_ids)))
    assert flagged >= 1
    assert {3, 50, 120, 177} & set(order[:8].tolist())
    flags = errors.cleanlab_cell_flags(a)
    assert flags.shape == a.y.shape and flags[[3, 50, 120, 177], 0].any()
