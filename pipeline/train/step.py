"""One forward + loss, shared by the training loop and bench/train_step.py."""

from __future__ import annotations

import contextlib

import torch

from model import batch_targets, infonce_loss, pairwise_logits, positives, ssm_loss


def autocast(device: torch.device, amp: bool):
    """bf16 autocast on CUDA when asked; nothing on CPU (bf16 matmuls are slow there)."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def forward_loss(model, batch: tuple[torch.Tensor, ...], matrix: torch.Tensor, loss: str,
                 mse_weight: float = 1.0, bce_weight: float = 1.0,
                 amp: bool = False) -> dict[str, torch.Tensor]:
    """``batch`` from ``data.make_batch``; ``matrix`` (L, L) the SSM (or multi-hot) targets."""
    images, texts, image_labels, text_labels = batch
    with autocast(images.device, amp):
        image, text, scale, bias = model(images, texts)  # (B, D), (T, D), (), () | None
        logits = pairwise_logits(image, text, scale, bias)  # (B, T)
    if loss == "infonce":
        out = infonce_loss(logits, positives(image_labels, text_labels))
    else:
        out = ssm_loss(logits, batch_targets(matrix, image_labels, text_labels),
                       mse_weight, bce_weight)
    out["scale"] = scale.detach()
    return out
