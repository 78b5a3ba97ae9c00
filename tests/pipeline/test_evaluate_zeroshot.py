"""The zero-shot report assembled from hand-made embeddings (pipeline/evaluate/zeroshot.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from db.queries import LabelRow
from pipeline.evaluate.labels import EvalLabels, fold
from pipeline.evaluate.zeroshot import (
    retrieval_report,
    retrieval_texts,
    scored_categories,
    zero_shot_report,
)

E = np.eye(4)
CATS = ("a", "b", "u", "never")


def _unit(v):
    return v / np.linalg.norm(v)


@pytest.fixture
def case():
    """Six images: a, b, u (held out), normal, a + b, normal with an uncertain b.
    Prompts: a = e0, b = e1, u = 0.6 e1 + 0.8 e2 (its nearest seen prompt is b); every negative
    prompt is e3, where the normal images lie."""
    def row(sid, cat, presence="present", severity=None):
        return LabelRow(sid, cat, presence, severity, None, None, "accepted")

    rows = [row(0, "a", severity="mild"), row(1, "b"), row(2, "u"), row(4, "a"), row(4, "b"),
            row(5, "b", "uncertain"), row(3, "a", "absent")]
    ids = list(range(6))
    labels = EvalLabels(ids, CATS, fold(rows, ids, CATS),
                        {i: [r for r in rows if r.study_id == i] for i in ids}, "store")
    img = np.stack([E[0], E[1], E[2], E[3], _unit(E[0] + E[1]), E[3]])
    pos = np.stack([E[0], E[1], 0.6 * E[1] + 0.8 * E[2]])
    neg = np.stack([E[3]] * 3)
    return labels, img, pos, neg


def test_scored_categories_need_both_classes(case):
    labels, *_ = case
    assert scored_categories(labels) == ["a", "b", "u"]


def test_report_per_category_and_unseen(case):
    labels, img, pos, neg = case
    r = zero_shot_report(labels, img, ["a", "b", "u"], pos, neg, seen={"a", "b"}, min_positives=2)
    a, b = r["categories"]["a"], r["categories"]["b"]
    assert (a["n_pos"], a["n_neg"], a["n_uncertain"], a["seen"]) == (2, 4, 0, True)
    assert (b["n_pos"], b["n_uncertain"]) == (2, 1)
    assert a["auc"] == 1.0 and a["f1"] == 1.0 and a["accuracy"] == 1.0
    assert a["roc"]["fpr"][0] == 0.0 and a["roc"]["tpr"][-1] == 1.0
    assert r["categories"]["u"]["seen"] is False
    u = r["unseen"]["u"]
    assert u["nearest_seen"] == "b" and u["nearest_cosine"] == pytest.approx(0.6)
    assert u["auc"] == 1.0 and u["auc_abnormal"] == 1.0
    # b's prompt on u's labels: u's image scores 0.5 (both cosines 0); negatives: image 0 ties
    # (0.5), images 1 and 4 beat it, images 3 and 5 (on the negative prompt) lose -> 2.5 / 5
    assert u["nearest_auc"] == pytest.approx(0.5) and u["vs_nearest"] == pytest.approx(0.5)
    # abnormal-only negatives: images 0, 1, 4 and 5 (an uncertain b is a finding shown)
    assert u["n_neg_abnormal"] == 4
    assert u["nearest_auc_abnormal"] == pytest.approx(1.5 / 4)
    assert u["vs_nearest_abnormal"] == pytest.approx(1 - 1.5 / 4)
    mean = r["mean"]
    assert mean["n_seen"] == 2 and mean["auc_seen"] == pytest.approx((1.0 + b["auc"]) / 2)
    assert mean["auc_unseen"] == 1.0
    assert r["multi_label"]["n_categories"] == 3
    json.dumps(r)  # serialisable as it is written to metrics.json
    r3 = zero_shot_report(labels, img, ["a", "b", "u"], pos, neg, seen={"a", "b"}, min_positives=3)
    assert r3["mean"]["n_seen"] == 0 and r3["mean"]["auc_seen"] is None


def test_retrieval_texts_and_report(case):
    labels, img, *_ = case
    texts, rel = retrieval_texts(labels, lambda r: f"{r.severity or ''} {r.category}".strip())
    assert texts == ["a", "b", "mild a", "u"]  # present findings only; uncertain b left out
    assert rel.sum(axis=1).tolist() == [1, 1, 1, 0, 2, 0]
    txt = np.stack([E[0], E[1], E[0], E[2]])
    out = retrieval_report(img, txt, rel)
    assert out["n_texts"] == 4 and out["n_image_queries"] == 4
    assert out["image_to_text"]["R@5"] == 1.0
