"""The SSM views on a hand-built index: clustered order, batch targets as model/ssm.py defines
them, mean image embeddings per label, and text-vs-image similarity (open question 3)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.index import ssmview
from pipeline.index.files import LabelSet, Manifest, Prompts, RunIndex
from pipeline.index.vectors import build_index


def _unit(x):
    x = np.asarray(x, np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _index(sentence, groups, pairs, vectors, study_ids) -> RunIndex:
    vectors = _unit(vectors)
    sentence = _unit(sentence)
    pair = np.asarray(pairs, np.int64)
    labels = LabelSet([f"t{i}" for i in range(len(groups))], list(groups), sentence, sentence,
                      pair[:, 0], pair[:, 1])
    images, spec = build_index(vectors, np.asarray(study_ids))
    label_index, _ = build_index(sentence)
    manifest = Manifest("r", None, "c", "0", "", "", None, spec.__dict__, spec.__dict__, "pca",
                        "x")
    return RunIndex(None, manifest, images, np.asarray(study_ids), vectors, labels, label_index,
                    Prompts([], np.zeros((0, 2)), np.zeros((0, 2))), None)


def test_grouped_order_keeps_groups_together_and_neighbours_adjacent():
    sentence = [[1, 0, 0], [0, 1, 0], [0.99, 0.1, 0], [0, 0.98, 0.1], [0, 0, 1]]
    groups = ["a", "a", "a", "a", "b"]
    ix = _index(sentence, groups, [(1, 0)], [[1, 0]], [1])
    block = ssmview.similarity_block(ix, np.arange(5))
    assert block.groups == ["a", "a", "a", "a", "b"]
    order = block.rows.tolist()
    assert abs(order.index(0) - order.index(2)) == 1 and abs(order.index(1) - order.index(3)) == 1
    assert np.allclose(np.diag(block.matrix), 1) and block.matrix[4, :4].max() == 0


def test_batch_targets_are_the_max_of_s_over_the_images_labels():
    sentence = [[1, 0], [0.8, 0.6], [0, 1], [0.6, 0.8]]
    groups = ["a", "a", "b", "b"]
    pairs = [(10, 0), (11, 1), (11, 2), (12, 3)]
    ix = _index(sentence, groups, pairs, np.eye(3), [10, 11, 12])
    batch = ssmview.sample_batch(ix, [10, 11, 12], size=3, seed=0, texts_per_image=2)
    assert batch.study_ids.tolist() == [10, 11, 12]
    assert batch.text_rows.tolist() == [0, 1, 2, 3]  # every image's labels drawn (2 per image)
    s = np.array([[1, 0.8, 0, 0], [0.8, 1, 0, 0], [0, 0, 1, 0.8], [0, 0, 0.8, 1]])
    want = np.stack([s[0], np.maximum(s[1], s[2]), s[3]])
    assert np.allclose(batch.target, want, atol=1e-6)


def test_mean_image_embeddings_per_label():
    ix = _index([[1, 0], [0, 1]], ["a", "a"], [(1, 0), (2, 0), (2, 1), (9, 1)],
                [[1, 0], [0, 1]], [1, 2])
    means, counts = ssmview.label_image_means(ix, np.array([0, 1]))
    assert counts.tolist() == [2, 1]  # study 9 is not indexed
    assert np.allclose(means, [[0.5, 0.5], [0, 1]])


def test_text_tracks_image_similarity_and_the_worst_pair():
    # four labels of one group on one study each; image vectors follow the texts except
    # label 3, whose text is nearly label 0's while its image sits far away
    sentence = [[1, 0, 0], [0.7, 0.7, 0], [0, 1, 0], [0.98, 0.05, 0.1]]
    images = [[1, 0, 0], [0.7, 0.7, 0], [0, 1, 0], [0, 0, 1]]
    pairs = [(i, i) for i in range(4)]
    ix = _index(sentence, ["a"] * 4, pairs, images, [0, 1, 2, 3])
    table = ssmview.text_vs_image(ix, np.arange(4))
    assert len(table.text) == 6 and table.same_group.all()
    worst = ssmview.worst_pairs(table, 1)[0]
    assert {int(table.left[worst]), int(table.right[worst])} == {0, 3}
    figures = ssmview.spearman_table(table)
    assert figures["same_group"]["pairs"] == 6 and figures["per_group"]["a"]["pairs"] == 6
    three = ssmview.spearman_table(ssmview.text_vs_image(ix, np.arange(3)))
    assert three["all"]["spearman"] == pytest.approx(1.0)  # without label 3 the ranks agree


def test_label_subsets():
    ix = _index([[1, 0], [0, 1], [1, 1]], ["a", "b", "a"], [(5, 0), (6, 1), (6, 2)],
                [[1, 0], [0, 1]], [5, 6])
    assert ssmview.label_subset(ix, category="a").tolist() == [0, 2]
    assert ssmview.label_subset(ix, study_ids=[6]).tolist() == [1, 2]
    assert ssmview.label_subset(ix, category="a", study_ids=[6]).tolist() == [2]
