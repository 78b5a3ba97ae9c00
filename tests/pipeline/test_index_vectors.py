"""FAISS index building, search, save/load and incremental adds (pipeline.index.vectors)."""

from __future__ import annotations

import faiss
import numpy as np

from pipeline.index.vectors import (
    add_vectors,
    build_index,
    exact_search,
    load_index,
    recall_at_k,
    save_index,
    search,
)


def _unit(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    groups = rng.standard_normal((8, dim)).astype(np.float32)
    x = groups[rng.integers(0, 8, n)] + rng.standard_normal((n, dim)).astype(np.float32) * 0.5
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_small_index_is_exact_and_returns_the_given_ids():
    x = _unit(300, 16, 0)
    ids = np.arange(1000, 1300)
    index, spec = build_index(x, ids)
    assert spec.kind == "flat" and spec.recall_at_10 == 1.0 and spec.count == 300
    scores, found = search(index, x[:5], 3)
    assert found[:, 0].tolist() == [1000, 1001, 1002, 1003, 1004]  # each vector finds itself first
    assert np.allclose(scores[:, 0], 1.0, atol=1e-5)
    assert (found == ids[exact_search(x, x[:5], 3)]).all()


def test_large_index_is_ivf_tuned_to_the_target_recall():
    data = _unit(4200, 32, 1)
    x, queries = data[:4000], data[4000:]
    index, spec = build_index(x, exact_limit=1000, target_recall=0.95)
    assert spec.kind == "ivf" and isinstance(index, faiss.IndexIVFFlat)
    assert spec.nlist == int(4 * np.sqrt(4000)) and 1 <= spec.nprobe <= spec.nlist
    assert spec.recall_at_10 >= 0.95
    recall = recall_at_k(search(index, queries, 10)[1], exact_search(x, queries, 10))
    assert recall >= 0.93  # new queries of the same distribution, not the tuning ones


def test_save_load_and_incremental_add_without_rebuild(tmp_path):
    x = _unit(2000, 32, 3)
    index, spec = build_index(x[:1500], np.arange(1500), exact_limit=1000)
    save_index(index, spec, tmp_path / "image.faiss")
    loaded, loaded_spec = load_index(tmp_path / "image.faiss")
    assert loaded_spec == spec and loaded.nprobe == spec.nprobe and loaded.ntotal == 1500
    add_vectors(loaded, x[1500:], np.arange(1500, 2000))
    assert loaded.ntotal == 2000
    found = search(loaded, x[1500:1510], 1)[1][:, 0]
    assert found.tolist() == list(range(1500, 1510))  # the added vectors are found


def test_recall_at_k_counts_overlap():
    assert recall_at_k(np.array([[1, 2, 3]]), np.array([[3, 2, 9]]), 3) == 2 / 3
