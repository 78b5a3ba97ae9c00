"""Kappa as scikit-learn computes it, bootstrap intervals, the per-category fold, and figures
from real double reviews (the adjudicator is never a rater)."""

from __future__ import annotations

import random

import pytest
from sklearn.metrics import cohen_kappa_score
from sqlmodel import Session

from db import queries
from db.engine import get_engine, session_scope
from pipeline import agreement
from tests.factories import make_reviewed_corpus


@pytest.mark.parametrize("seed", range(20))
def test_kappa_equals_sklearn_on_random_labels(seed):
    rng = random.Random(seed)
    labels = [1, 0, -1, "blank"][: rng.randint(2, 4)]
    n = rng.randint(5, 300)
    a = [rng.choice(labels) for _ in range(n)]
    # B agrees with A with some probability, else answers at random
    b = [x if rng.random() < rng.random() else rng.choice(labels) for x in a]
    ours = agreement.cohen_kappa(list(zip(a, b, strict=True)))
    theirs = cohen_kappa_score([str(x) for x in a], [str(x) for x in b])
    if ours is None:
        assert len(set(a) | set(b)) == 1
    else:
        assert ours == pytest.approx(theirs, abs=1e-12)


def test_bootstrap_interval_brackets_the_estimate_and_narrows_with_n():
    rng = random.Random(1)

    def groups(n):
        out = []
        for _ in range(n):
            x = rng.choice([0, 1])
            out.append([(x, x if rng.random() < 0.8 else 1 - x)])
        return out

    small, large = groups(40), groups(800)
    widths = []
    for g in (small, large):
        k = agreement.cohen_kappa([i for grp in g for i in grp])
        low, high = agreement.bootstrap_ci(g, rounds=400)
        assert low <= k <= high
        widths.append(high - low)
    assert widths[1] < widths[0]


def test_below_ten_pairs_is_too_few_to_read():
    pairs = [({"edema": 1}, {"edema": 1}), ({"edema": 0}, {"edema": 1})] * 4
    overall, edema = agreement.category_kappas(pairs)
    assert (overall.n, overall.readable, overall.low) == (8, False, None)
    assert edema.category == "edema" and not edema.readable


def test_figures_from_double_reviews(db_url):
    with session_scope(db_url) as s:
        make_reviewed_corpus(s, n=40, double_every=2, disagree_every=4)
    with Session(get_engine(db_url)) as s:
        pairs = queries.double_review_pairs(session=s)
    assert len(pairs) == 20  # only double reviews, whatever their settlement
    figures, attrs = agreement.double_review_figures(pairs)
    by = {f.category: f for f in figures}
    assert by["overall"].n == 20 and by["overall"].readable
    # the cardiomegaly answers differ (B rejected it) on 10 of the 20: kappa 0 (A says 1 always)
    assert by["cardiomegaly"].percent == pytest.approx(0.5)
    assert by["pleural_effusion"].percent == 1.0
    assert attrs["presence"] == (pytest.approx(50 / 60), 60)
    assert attrs["severity"][1] == 50
