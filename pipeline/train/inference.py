"""Inference on a finished run, for evaluation, indexing and the app (TRAIN_API.md).

    run = load_run(Path("runs/demo"))
    images = embed_studies(run, "sqlite:///data/medfilip.db", study_ids)  # (N, D) float32
    texts = embed_texts(run, ["pleural effusion. Fluid ...", "no pleural effusion"])
    scores = images @ texts.T  # cosines

Study images are read through the same on-disk pixel cache training uses (``pixels.py``), at the
run's image size, so the eval sees exactly the pixels a training image would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from db import queries
from db.engine import session_scope
from model import Encoder, build_model
from pipeline.settings import get_settings
from pipeline.train.checkpoint import latest_checkpoint
from pipeline.train.config import build as build_config
from pipeline.train.data import to_images
from pipeline.train.pixels import pixel_cache
from pipeline.train.rundir import CONFIG, RUN


@dataclass(frozen=True)
class LoadedRun:
    encoder: Encoder  # eval mode, on the device it was loaded to
    config: dict  # the run's TrainConfig as saved in config.json
    run_dir: Path
    training_run_id: int | None  # the TrainingRun row, when found in the store given
    checkpoint: Path
    data_dir: Path | None  # the data dir the run trained from (run.json), if recorded


def load_run(run_dir: Path, device: str = "cpu") -> LoadedRun:
    """The run's newest checkpoint in an Encoder (FileNotFoundError if it has none)."""
    run_dir = Path(run_dir)
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise FileNotFoundError(f"{run_dir}: no checkpoint (checkpoints/latest.txt)")
    config = json.loads((run_dir / CONFIG).read_text())
    cfg = build_config(config, str(run_dir / CONFIG))
    # the checkpoint file goes through open_clip's own loader (its weights sit under
    # "state_dict"); HF text weights are then not fetched first
    encoder = build_model(cfg.model, str(ckpt), cfg.image_size, cfg.hf_text,
                          init_logit_scale=cfg.logit_scale_start,
                          init_logit_bias=cfg.init_logit_bias, device=device).eval()
    meta = json.loads((run_dir / RUN).read_text()) if (run_dir / RUN).exists() else {}
    data_dir = Path(meta["data_dir"]) if meta.get("data_dir") else None
    return LoadedRun(encoder, config, run_dir, meta.get("training_run_id"), ckpt, data_dir)


@torch.no_grad()
def embed_studies(run: LoadedRun, db_url: str, study_ids: list[int], batch_size: int = 64,
                  progress: bool = True, data_dir: Path | None = None) -> np.ndarray:
    """(N, D) float32 L2-normalised, one row per study id: its first frontal image, else its
    first image. A study without a readable image gets a row of zeros (cosine 0 to all)."""
    data_dir = Path(data_dir or run.data_dir or get_settings().data_dir)
    with session_scope(db_url) as s:
        chosen = queries.list_study_images(session=s, study_ids=list(study_ids))
    images = [chosen[sid] for sid in study_ids if sid in chosen]
    cache = pixel_cache(images, data_dir, run.encoder.image_size, progress=progress)
    device = next(run.encoder.parameters()).device
    out = [np.zeros((0, run.encoder.embed_dim), np.float32)]
    for start in tqdm(range(0, len(images), batch_size), desc="embed studies", unit="batch",
                      disable=not progress):
        x = to_images(cache.pixels[start:start + batch_size], device)
        out.append(run.encoder.encode_image(x, normalize=True).float().cpu().numpy())
    vectors = np.concatenate(out)
    for row in cache.bad:
        vectors[row] = 0.0
    row_of = {img.study_id: i for i, img in enumerate(images)}
    result = np.zeros((len(study_ids), vectors.shape[1]), np.float32)
    for i, sid in enumerate(study_ids):
        if sid in row_of:
            result[i] = vectors[row_of[sid]]
    return result


@torch.no_grad()
def embed_texts(run: LoadedRun, texts: list[str], batch_size: int = 256) -> np.ndarray:
    """(N, D) float32 L2-normalised text embeddings."""
    device = next(run.encoder.parameters()).device
    out = [run.encoder.encode_text(run.encoder.tokenize(texts[i:i + batch_size]).to(device),
                                   normalize=True).float().cpu().numpy()
           for i in range(0, len(texts), batch_size)]
    return np.concatenate([np.zeros((0, run.encoder.embed_dim), np.float32), *out])
