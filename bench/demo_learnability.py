"""Are the demo findings learnable in clinical co-occurrence? A small CNN on CPU.

The test suite proves each rendered finding is visible in isolation (tests/pipeline/
test_demo_visibility.py: one finding vs normal phantoms). This bench asks the harder question
the training stage will face: in the clinical case mix, where findings co-occur, does a small
multi-label CNN trained for a few CPU minutes separate each category from its absence (other
findings included) on held-out studies? Prints per-category AUC and the share of categories
at or above 0.9.

    .venv/bin/python bench/demo_learnability.py
    .venv/bin/python bench/demo_learnability.py --n 6000 --epochs 8 --size 128
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.metrics import roc_auc_score
from torch import nn

from pipeline.demo.casemix import RENDERED
from pipeline.demo.generate import generate_corpus


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/demo_learnability.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=4000, help="studies to generate (default 4000)")
    p.add_argument("--size", type=int, default=128, help="image side in pixels (default 128)")
    p.add_argument("--epochs", type=int, default=6, help="training epochs (default 6)")
    p.add_argument("--seed", type=int, default=0, help="corpus and training seed (default 0)")
    p.add_argument("--workers", type=int, default=2, help="corpus generation processes")
    return p.parse_args(argv)


def load(out: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images (N, 1, H, W) float32, labels (N, C) 0/1 for present|uncertain, is_test (N,))."""
    xs, ys, test = [], [], []
    for line in (out / "truth.jsonl").read_text().splitlines():
        t = json.loads(line)
        xs.append(np.asarray(Image.open(out / t["image"]), dtype=np.float32) / 255.0)
        shown = {f["category"] for f in t["findings"] if f["presence"] != "absent"}
        ys.append([c in shown for c in RENDERED])
        test.append(t["split"] == "test")
    return np.stack(xs)[:, None], np.asarray(ys, np.float32), np.asarray(test)


def small_cnn(n_out: int) -> nn.Module:
    def block(i: int, o: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(),
                             nn.MaxPool2d(2))
    return nn.Sequential(block(1, 16), block(16, 32), block(32, 64), block(64, 96),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(96, n_out))


def train(x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = small_cnn(y.shape[1])
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = nn.BCEWithLogitsLoss()
    for epoch in range(epochs):
        perm = torch.randperm(len(xt))
        model.train()
        total = 0.0
        for i in range(0, len(perm), 64):
            idx = perm[i:i + 64]
            loss = loss_fn(model(xt[idx]), yt[idx])  # (B, C) logits vs 0/1 labels
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1}/{epochs}: loss {total / len(perm):.4f}", flush=True)
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        generate_corpus(Path(tmp), n=args.n, seed=args.seed, size=args.size, dicom_share=0.0,
                        workers=args.workers)
        x, y, test = load(Path(tmp))
        print(f"{args.n} studies at {args.size} px in {time.perf_counter() - t0:.1f} s; "
              f"train {int((~test).sum())}, test {int(test.sum())}")
    t1 = time.perf_counter()
    model = train(x[~test], y[~test], args.epochs, args.seed)
    with torch.no_grad():
        scores = torch.sigmoid(model(torch.from_numpy(x[test]))).numpy()
    print(f"trained in {time.perf_counter() - t1:.0f} s on CPU\n\ncategory                 n+   AUC")
    aucs = []
    for c, name in enumerate(RENDERED):
        pos = int(y[test, c].sum())
        if 0 < pos < test.sum():
            aucs.append(roc_auc_score(y[test, c], scores[:, c]))
            print(f"{name:24s} {pos:3d}  {aucs[-1]:.3f}")
    print(f"\nmean AUC {np.mean(aucs):.3f}; {sum(a >= 0.9 for a in aucs)}/{len(aucs)} categories "
          f">= 0.9 (findings co-occurring, other findings among the negatives)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
