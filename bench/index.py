"""Similarity index at 100k x 512: recall@10 and speed of the chosen index vs exact search and
scikit-learn's brute-force NearestNeighbors (FiftyOne's default similarity backend).

    python bench/index.py                       # 100,000 x 512, 200 single queries
    python bench/index.py --n 20000 --dim 256   # smaller (exact flat index below 100k)

The vectors are a mixture of 2,000 clusters with spread (what image embeddings of a chest X-ray
corpus look like: many near-duplicates of a few hundred presentations), L2-normalised; queries are
held-out points of the same mixture. Uniform random vectors would be a worst case no embedding
model produces. Last line: ``recall_at_10=<x> speedup_vs_sklearn=<y> p50_ms=<z>`` (targets:
recall >= 0.95, >= 10x faster than scikit-learn).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.neighbors import NearestNeighbors

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline.index.vectors import build_index, exact_search, recall_at_k, search  # noqa: E402


def mixture(n: int, dim: int, clusters: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Points around cluster centres that are themselves spread around 40 broad groups, so
    neighbourhoods overlap across IVF lists as real embeddings do (views, findings, devices)."""
    groups = rng.standard_normal((40, dim)).astype(np.float32) / np.sqrt(dim)
    centers = groups[rng.integers(0, 40, clusters)] + rng.standard_normal(
        (clusters, dim)).astype(np.float32) * (0.7 / np.sqrt(dim))
    x = centers[rng.integers(0, clusters, n)] + rng.standard_normal((n, dim)).astype(np.float32) * noise
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def time_queries(fn, queries: np.ndarray) -> tuple[np.ndarray, list[float]]:
    ids, ms = [], []
    for q in queries:
        t = time.perf_counter()
        ids.append(fn(q[None]))
        ms.append((time.perf_counter() - t) * 1e3)
    return np.vstack(ids), ms


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="stored vectors (default 100000)")
    ap.add_argument("--dim", type=int, default=512, help="vector dimension (default 512)")
    ap.add_argument("--clusters", type=int, default=2000, help="mixture components (default 2000)")
    ap.add_argument("--queries", type=int, default=200, help="single queries timed (default 200)")
    ap.add_argument("--noise", type=float, default=0.02, help="per-dimension spread around a centre (default 0.05; the first line prints the mean nearest-neighbour cosine it gives)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    data = mixture(args.n + args.queries, args.dim, args.clusters, args.noise, rng)
    vectors, queries = data[:args.n], data[args.n:]

    t = time.perf_counter()
    index, spec = build_index(vectors, seed=args.seed)
    build_s = time.perf_counter() - t
    found, ours_ms = time_queries(lambda q: search(index, q, 10)[1], queries)
    truth = exact_search(vectors, queries, 10)
    nn_cos = float(np.mean(np.sum(vectors[truth[:, 0]] * queries, axis=1)))
    recall = recall_at_k(found, truth, 10)

    nn = NearestNeighbors(n_neighbors=10, algorithm="brute", metric="cosine").fit(vectors)
    sk_found, sk_ms = time_queries(lambda q: nn.kneighbors(q, return_distance=False), queries)
    sk_recall = recall_at_k(sk_found, truth, 10)

    p50, sk_p50 = float(np.median(ours_ms)), float(np.median(sk_ms))
    print(f"index={spec.kind} nlist={spec.nlist} nprobe={spec.nprobe} build_s={build_s:.1f} "
          f"tuned_recall={spec.recall_at_10} nn_cosine={nn_cos:.3f}")
    print(f"ours: p50 {p50:.3f} ms, mean {np.mean(ours_ms):.3f} ms; scikit-learn brute: p50 "
          f"{sk_p50:.3f} ms (its recall@10 {sk_recall:.3f})")
    print(f"recall_at_10={recall:.4f} speedup_vs_sklearn={sk_p50 / p50:.1f} p50_ms={p50:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
