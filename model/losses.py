"""Losses over (B, T) image-by-text logits, ``logits = scale * cos + bias``.

- ``ssm_loss``: MedFILIP's MSE + BCEWithLogits against soft SSM targets (weights 1:1 in the
  paper); with ``model.ssm.hard_matrix`` targets it is the hard multi-hot ablation.
- ``infonce_loss``: CLIP's symmetric cross-entropy. With one distinct text per image it is
  exactly open_clip's ``ClipLoss``; when several images share a text (or one image has several
  texts) each row/column spreads its target over its positives, so a shared label is never
  pushed apart from itself.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("ssm", "hard", "infonce")


def pairwise_logits(image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor,
                    bias: torch.Tensor | None = None) -> torch.Tensor:
    """(B, D), (T, D) L2-normalised -> (B, T) scale * cosine (+ bias)."""
    logits = scale * image @ text.T
    return logits + bias if bias is not None else logits


def ssm_loss(logits: torch.Tensor, target: torch.Tensor, mse_weight: float = 1.0,
             bce_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """MSE(logits, target) + BCEWithLogits(logits, target), both means over the B x T pairs."""
    logits, target = logits.float(), target.float()
    mse = F.mse_loss(logits, target)
    bce = F.binary_cross_entropy_with_logits(logits, target)
    return {"loss": mse_weight * mse + bce_weight * bce, "mse": mse.detach(), "bce": bce.detach()}


def infonce_loss(logits: torch.Tensor, positive: torch.Tensor) -> dict[str, torch.Tensor]:
    """Symmetric InfoNCE with (B, T) bool ``positive`` pairs. A row or column without a positive
    (a label text no image of the batch has) is a negative only: it adds no term of its own."""
    logits, p = logits.float(), positive.float()
    rows, cols = p.sum(1), p.sum(0)  # (B,), (T,) positives per image / per text
    image_to_text = -(p * F.log_softmax(logits, dim=1)).sum(1)[rows > 0] / rows[rows > 0]
    text_to_image = -(p * F.log_softmax(logits, dim=0)).sum(0)[cols > 0] / cols[cols > 0]
    return {"loss": (image_to_text.mean() + text_to_image.mean()) / 2}
