"""SSM math (MedFILIP §3.3, ARCHITECTURE.md "SSM"): the label similarity matrix and the soft
image-by-text targets of one batch.

Labels are indexed 0..L-1 over one label snapshot. Each label has a *group*: its category, or a
group of its own kind for negation texts ("no pleural effusion") and "no finding", so that a
negation is never similar to the finding it denies.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def similarity_matrix(embeddings: np.ndarray, groups: Sequence[str]) -> np.ndarray:
    """(L, D) sentence embeddings -> (L, L) float32: S[i, j] = cos(i, j) when labels i and j
    share a group, else 0. Cosines are clipped to [0, 1] (they are BCE targets) and the
    diagonal is exactly 1."""
    e = np.asarray(embeddings, dtype=np.float64)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    g = np.asarray(groups, dtype=object)
    same = g[:, None] == g[None, :]
    s = np.where(same, np.clip(e @ e.T, 0.0, 1.0), 0.0)
    np.fill_diagonal(s, 1.0)
    return s.astype(np.float32)


def hard_matrix(groups: Sequence[str]) -> np.ndarray:
    """(L, L) float32 multi-hot ablation: 1 when two labels share a group, else 0."""
    g = np.asarray(groups, dtype=object)
    return (g[:, None] == g[None, :]).astype(np.float32)


def pad_labels(label_lists: Sequence[Sequence[int]]) -> torch.Tensor:
    """Per-image label indices -> (B, K) long, padded with -1."""
    width = max((len(x) for x in label_lists), default=0) or 1
    out = torch.full((len(label_lists), width), -1, dtype=torch.long)
    for i, labels in enumerate(label_lists):
        out[i, :len(labels)] = torch.as_tensor(list(labels), dtype=torch.long)
    return out


def batch_targets(s: torch.Tensor, image_labels: torch.Tensor, text_labels: torch.Tensor
                  ) -> torch.Tensor:
    """target[b, t] = max over image b's labels l of S[l, text_labels[t]]: (B, T).

    ``s`` (L, L); ``image_labels`` (B, K) with -1 padding; ``text_labels`` (T,). Padding reads a
    row of zeros appended to S's columns of this batch, so no mask is needed.
    """
    columns = F.pad(s[:, text_labels], (0, 0, 0, 1))  # (L + 1, T), row L is zeros
    index = torch.where(image_labels < 0, s.shape[0], image_labels)  # (B, K)
    return columns[index].amax(dim=1)  # (B, K, T) -> (B, T)


def positives(image_labels: torch.Tensor, text_labels: torch.Tensor) -> torch.Tensor:
    """(B, T) bool: text t is one of image b's own labels (InfoNCE's positive pairs)."""
    return (image_labels[:, :, None] == text_labels[None, None, :]).any(dim=1)
