"""Does SSM cost anything? Our training step against open_clip's own ClipLoss step, on CPU.

Both steps train the same open_clip model on the same batch of images, with the same optimizer:

- ours (``pipeline.train.step.forward_loss``): the batch's text columns are the distinct label
  texts drawn for its images (one per image, as MedFILIP draws them), the targets the max over
  each image's labels of the SSM, the loss MSE + BCEWithLogits;
- open_clip's: one caption per image (the same drawn texts, duplicates kept), the model's own
  forward and ``open_clip.ClipLoss``, as open_clip_train's ``train_one_epoch`` does it.

Label texts are the IKI dictionary's real ones (realistic token counts); the SSM comes from random
embeddings. The step kinds alternate step by step so machine load hits them alike; the ratios
are medians of side-by-side step-time ratios. ``ratio_same_texts`` repeats our step with open_clip's B texts,
to separate the SSM's own cost from the saving of encoding each distinct text once.

    .venv/bin/python bench/train_step.py
    .venv/bin/python bench/train_step.py --model small-rn --image-size 128 --batch-size 64
    python3 bench/train_step.py --model RN50 --image-size 448 --device cuda --amp   # bench/gpu_train.sh
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import open_clip
import torch

from model import build_model, pad_labels, similarity_matrix
from pipeline.ssm.labels import label_text
from pipeline.train.data import draw_texts, to_images
from pipeline.train.step import autocast, forward_loss
from pipeline.vocab import load_iki


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/train_step.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="tiny-rn", help="open_clip architecture (default tiny-rn)")
    p.add_argument("--image-size", type=int, default=64, help="input side (default 64)")
    p.add_argument("--batch-size", type=int, default=32, help="images per step (default 32)")
    p.add_argument("--steps", type=int, default=30, help="timed rounds, one step of each kind "
                   "per round (default 30)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="default cpu")
    p.add_argument("--amp", action="store_true", help="bf16 autocast on CUDA for both steps")
    return p.parse_args(argv)


def label_vocabulary() -> tuple[list[str], list[str]]:
    """(texts, groups): a label text per IKI category and severity, as pipeline.ssm builds them."""
    texts, groups = [], []
    for category, entries in load_iki().items():
        for severity in (None, "mild", "moderate", "severe"):
            texts.append(label_text(category, severity, None, None, entries.get("")))
            groups.append(category)
    return texts, groups


def make_batch(texts, groups, batch_size: int, px: int, seed: int):
    rng = np.random.default_rng(seed)
    labels = [tuple(sorted(rng.choice(len(texts), size=rng.integers(1, 4), replace=False)))
              for _ in range(batch_size)]
    pixels = rng.integers(0, 256, size=(batch_size, px, px), dtype=np.uint8)
    s = similarity_matrix(rng.normal(size=(len(texts), 32)), groups)
    return labels, pixels, torch.from_numpy(s)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    encoder = build_model(args.model, image_size=args.image_size, device=args.device).train()
    opt = torch.optim.AdamW([p for p in encoder.parameters() if p.requires_grad], lr=1e-4)
    texts, groups = label_vocabulary()
    tokens = encoder.tokenize(texts).to(device)  # (L, context), once, as the training loop does
    labels, pixels, s = make_batch(texts, groups, args.batch_size, encoder.image_size, 0)
    s = s.to(device)
    images = to_images(pixels, device)
    drawn = [int(draw_texts([own], 1, 0, i, 0)[0]) for i, own in enumerate(labels)]  # (B,)
    image_labels = pad_labels(labels).to(device)
    clip_loss = open_clip.ClipLoss()

    def ours(text_ids: np.ndarray) -> None:
        ids = torch.from_numpy(text_ids).to(device)
        out = forward_loss(encoder, (images, tokens[ids], image_labels, ids), s, "ssm",
                           amp=args.amp)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()

    def theirs() -> None:
        # open_clip's forward takes normalised pixels; ours normalises inside encode_image
        with autocast(device, args.amp):
            image_f, text_f, scale = encoder.clip((images - encoder.mean) / encoder.std,
                                                  tokens[torch.tensor(drawn, device=device)])
            loss = clip_loss(image_f, text_f, scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    distinct = np.unique(drawn)
    kinds = {"ours": lambda: ours(distinct), "open_clip": theirs,
             "ours_same_texts": lambda: ours(np.asarray(drawn))}
    seconds: dict[str, list[float]] = {k: [] for k in kinds}
    for step in kinds.values():  # warm-up: allocator, oneDNN kernels
        step()
    for _ in range(args.steps):  # the kinds alternate step by step, so load hits them alike
        for name, step in kinds.items():
            sync()
            t0 = time.perf_counter()
            step()
            sync()
            seconds[name].append(time.perf_counter() - t0)
    rate = {k: args.batch_size / statistics.median(v) for k, v in seconds.items()}

    def paired(name: str) -> float:
        """Median over rounds of open_clip's step time / this kind's, taken side by side."""
        return statistics.median(t / o for t, o in zip(seconds["open_clip"], seconds[name],
                                                      strict=True))

    where = (torch.cuda.get_device_name(device) + (" bf16" if args.amp else "")
             if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads")
    print(f"model {args.model} at {encoder.image_size} px, batch {args.batch_size}: "
          f"{len(distinct)} distinct texts of {len(drawn)} drawn; {where}; {args.steps} rounds")
    for name in kinds:
        print(f"  {name:16s} {rate[name]:8.1f} images/s (median step)")
    print(f"ours_images_per_s={rate['ours']:.1f} open_clip_images_per_s={rate['open_clip']:.1f} "
          f"ratio_same_texts={paired('ours_same_texts'):.3f} "
          f"ratio_vs_open_clip={paired('ours'):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
