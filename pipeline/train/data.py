"""Batches: a seeded sample order per epoch, sharded over ranks, and each batch's text columns.

Nothing here keeps state between batches: the order of epoch e is a function of (seed, e) and
the texts of micro-batch m a function of (seed, m, rank), so a resumed run only needs the
position (epoch, micro-batch) to draw exactly what the uninterrupted run would have drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from model import pad_labels


@dataclass(frozen=True)
class TrainData:
    rows: np.ndarray  # (N,) pixel-cache rows of the usable examples
    labels: list[tuple[int, ...]]  # (N,) label indices of each example
    pixels: np.ndarray  # (M, px, px) uint8 memory-mapped cache (M >= N)
    texts: torch.Tensor  # (L, context) token ids of every label text, or (L, width) float
    # features of a locked HF text tower (Encoder.frozen_text_features); on the device
    matrix: torch.Tensor  # (L, L) target matrix (soft SSM or hard multi-hot), on the device


def epoch_order(n: int, seed: int, epoch: int, rank: int, world: int) -> np.ndarray:
    """This rank's example indices for one epoch (DistributedSampler-style padding, so every
    rank gets the same count)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g).numpy()
    total = -(-n // world) * world
    perm = np.concatenate([perm, perm[:total - n]])
    return perm[rank::world]


def micro_batches_per_epoch(n: int, batch_size: int, world: int) -> int:
    """Full micro-batches per rank per epoch (the last partial one is dropped)."""
    return (-(-n // world)) // batch_size


def draw_texts(labels: list[tuple[int, ...]], k: int, seed: int, micro: int,
               rank: int) -> np.ndarray:
    """The batch's text columns: up to ``k`` of each image's labels, drawn without replacement,
    their union sorted (T,)."""
    rng = np.random.default_rng([seed, micro, rank])
    drawn = set()
    for own in labels:
        drawn.update(own if len(own) <= k else rng.choice(own, size=k, replace=False).tolist())
    return np.asarray(sorted(drawn), dtype=np.int64)


def to_images(u8: np.ndarray, device: torch.device) -> torch.Tensor:
    """(B, px, px) uint8 -> (B, 3, px, px) float in [0, 1] (grayscale repeated)."""
    u8 = np.ascontiguousarray(u8) if u8.flags.writeable else np.array(u8)  # memmap slices are read-only
    x = torch.from_numpy(u8).to(device, non_blocking=True)
    return x.float().div_(255.0).unsqueeze(1).expand(-1, 3, -1, -1)


def make_batch(data: TrainData, idx: np.ndarray, text_ids: np.ndarray,
               device: torch.device) -> tuple[torch.Tensor, ...]:
    """(images (B, 3, px, px), texts (T, context | width), image labels (B, K), text labels (T,))."""
    images = to_images(data.pixels[data.rows[idx]], device)
    text_labels = torch.from_numpy(text_ids).to(device)
    image_labels = pad_labels([data.labels[i] for i in idx]).to(device)
    return images, data.texts[text_labels], image_labels, text_labels
