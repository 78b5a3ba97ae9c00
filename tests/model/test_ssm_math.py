"""SSM math and losses on hand-computed cases."""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch

from model import (
    batch_targets,
    hard_matrix,
    infonce_loss,
    pad_labels,
    pairwise_logits,
    positives,
    similarity_matrix,
    ssm_loss,
)

EMB = np.array([[1.0, 0.0], [0.6, 0.8], [1.0, 0.0], [0.0, 2.0], [-1.0, 0.0]])
GROUPS = ["a", "a", "b", "a", "a"]


def test_similarity_is_cosine_within_a_group_and_zero_across():
    s = similarity_matrix(EMB, GROUPS)
    expected = np.array([[1, .6, 0, 0, 0],
                         [.6, 1, 0, .8, 0],
                         [0, 0, 1, 0, 0],  # label 2 equals label 0's vector, but another group
                         [0, .8, 0, 1, 0],  # label 3 is not unit length: cosine, not dot
                         [0, 0, 0, 0, 1]])  # a negative cosine is clipped to 0 (a BCE target)
    np.testing.assert_allclose(s, expected, atol=1e-6)
    assert s.dtype == np.float32


def test_hard_matrix_is_same_group():
    np.testing.assert_array_equal(hard_matrix(["a", "b", "a"]),
                                  [[1, 0, 1], [0, 1, 0], [1, 0, 1]])


def test_batch_target_is_the_max_over_the_image_labels():
    s = torch.from_numpy(similarity_matrix(EMB, GROUPS))
    labels = pad_labels([[0], [1, 2], []])
    assert labels.tolist() == [[0, -1], [1, 2], [-1, -1]]
    target = batch_targets(s, labels, torch.tensor([3, 2, 0]))
    np.testing.assert_allclose(target.numpy(), [[0, 0, 1], [.8, 1, .6], [0, 0, 0]], atol=1e-6)


def test_positives_are_the_image_own_labels():
    pos = positives(pad_labels([[0, 3], [2]]), torch.tensor([0, 2, 3]))
    assert pos.tolist() == [[True, False, True], [False, True, False]]


def test_ssm_loss_is_weighted_mse_plus_bce():
    logits, target = torch.tensor([[0.5, -1.0]]), torch.tensor([[1.0, 0.0]])
    out = ssm_loss(logits, target, mse_weight=1.0, bce_weight=2.0)
    # mse = (0.25 + 1) / 2; bce = (softplus(-0.5) + softplus(-1)) / 2
    assert out["mse"].item() == pytest.approx(0.625)
    assert out["bce"].item() == pytest.approx(0.3936695, abs=1e-6)
    assert out["loss"].item() == pytest.approx(0.625 + 2 * 0.3936695, abs=1e-6)


def test_infonce_with_one_text_per_image_is_open_clip_clip_loss():
    torch.manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    txt = torch.nn.functional.normalize(torch.randn(6, 8), dim=-1)
    scale = torch.tensor(14.3)
    ours = infonce_loss(pairwise_logits(img, txt, scale), torch.eye(6, dtype=torch.bool))
    theirs = open_clip.ClipLoss()(img, txt, scale)
    assert ours["loss"].item() == pytest.approx(theirs.item(), abs=1e-5)


def test_infonce_spreads_a_shared_text_over_its_images():
    # two images, one shared text: rows are trivially right; the column targets (0.5, 0.5)
    out = infonce_loss(torch.tensor([[2.0], [0.0]]), torch.tensor([[True], [True]]))
    assert out["loss"].item() == pytest.approx(0.563464, abs=1e-5)


def test_infonce_ignores_texts_no_image_has():
    # column 2 has no positive: only a negative in the rows' softmax, no column term of its own
    logits = torch.tensor([[2.0, 0.0, 1.0], [0.0, 2.0, 1.0]])
    positive = torch.tensor([[True, False, False], [False, True, False]])
    out = infonce_loss(logits, positive)
    row = -torch.log_softmax(logits, dim=1)[0, 0]
    col = -torch.log_softmax(logits[:, :2], dim=0)[0, 0]
    assert torch.isfinite(out["loss"])
    assert out["loss"].item() == pytest.approx(((row + col) / 2).item(), abs=1e-6)


def test_logits_add_the_bias():
    img, txt = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    logits = pairwise_logits(img, txt, torch.tensor(2.0), torch.tensor(-1.0))
    assert logits.tolist() == [[-1.0, 1.0]]
