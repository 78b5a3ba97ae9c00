"""The training config: one frozen dataclass, a comment per field (nanoGPT's habit), saved to
``runs/NAME/config.json`` and inside every checkpoint.

Values come from, in rising precedence: the defaults below, the checkpoint's config (on
``--resume``), a ``--config`` JSON/YAML file, and the command-line flags. Unknown keys and wrong
types fail naming the key; on resume, a change to any field but the run-time ones
(``RUNTIME_FIELDS``) fails naming the fields, because the run could no longer continue exactly.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import yaml

from model import LOSSES


class ConfigError(ValueError):
    """A config that cannot be used, named by key."""


@dataclass(frozen=True)
class TrainConfig:
    # --- model -----------------------------------------------------------------------------
    model: str = "RN50"  # open_clip architecture (model/configs adds tiny-rn, small-rn, small-rn-minilm)
    pretrained: str | None = None  # open_clip tag or local checkpoint file; None: random init
    hf_text: str | None = None  # HF text tower replacing the architecture's ("minilm": bundled MiniLM)
    lock_text: bool = False  # freeze the HF text transformer, train its projection (features cached)
    image_size: int | None = None  # input side in pixels; None: the architecture's own
    init_logit_scale: float | None = None  # starting exp(logit_scale); None: 1 for ssm/hard, 1/0.07 for infonce
    init_logit_bias: float | None = None  # starting learnable logit bias; None: no bias term
    # --- labels and loss -------------------------------------------------------------------
    loss: str = "ssm"  # ssm (MSE + BCE vs soft SSM targets) | hard (vs multi-hot) | infonce (CLIP)
    mse_weight: float = 1.0  # weight of MSE(logits, targets) in the ssm/hard loss (MedFILIP: 1)
    bce_weight: float = 1.0  # weight of BCEWithLogits(logits, targets) in the ssm/hard loss (MedFILIP: 1)
    include_proposed: bool = False  # also train on the extractor's unreviewed findings
    negatives: str = "drop"  # absent findings: drop (MedFILIP) | use as "no {category}" texts
    uncertain: str = "drop"  # uncertain findings: drop | present
    holdout: tuple[str, ...] = ()  # categories never trained on (unseen-category zero-shot)
    allow_missing_knowledge: bool = False  # train a category without approved IKI on its name
    sentence_encoder: str = "minilm"  # encoder of the SSM's label embeddings (name or folder)
    texts_per_image: int = 1  # label texts drawn per image per step; the batch's texts are their union
    all_texts: bool = False  # every label text of the snapshot is a column of every batch (cheap with lock_text)
    # --- optimisation ----------------------------------------------------------------------
    epochs: int = 10  # passes over the training studies
    batch_size: int = 32  # images per process per micro-batch
    accum: int = 1  # micro-batches per optimizer step (effective batch: batch_size * accum * ranks)
    optimizer: str = "adamw"  # adamw (warmup + cosine) | sgd (CosineAnnealingWarmRestarts, MedFILIP)
    lr: float = 5e-4  # peak learning rate
    weight_decay: float = 1e-4  # decoupled (adamw) or L2 (sgd) weight decay
    momentum: float = 0.9  # sgd momentum
    warmup_steps: int = 50  # adamw linear warmup, in optimizer steps
    restart_epochs: float = 2.0  # sgd: epochs per cosine cycle (T_0; MedFILIP: 2), stepped per batch
    min_lr: float = 0.0  # floor of both cosine schedules
    grad_clip: float | None = None  # max global grad norm; None: no clipping
    seed: int = 0  # seeds init, sample order and text draws
    # --- run (the RUNTIME_FIELDS may change on --resume) -----------------------------------
    device: str = "auto"  # auto (cuda if available) | cpu | cuda
    amp: bool = True  # bf16 autocast on CUDA; ignored on CPU
    max_minutes: float | None = None  # stop, checkpoint and finish after this much training time
    save_every: int = 200  # optimizer steps between checkpoints (and one at the end)
    keep_checkpoints: int = 2  # step-N.pt files kept (older ones are deleted)
    log_every: int = 10  # optimizer steps between metrics.jsonl lines
    workers: int = 2  # processes decoding images into the pixel cache (0: in this process)
    progress: bool = True  # tqdm bar on rank 0

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def logit_scale_start(self) -> float:
        if self.init_logit_scale is not None:
            return self.init_logit_scale
        return 1 / 0.07 if self.loss == "infonce" else 1.0


RUNTIME_FIELDS = frozenset({"device", "max_minutes", "save_every", "keep_checkpoints",
                            "log_every", "workers", "progress"})
CHOICES = {"loss": LOSSES, "negatives": ("drop", "use"), "uncertain": ("drop", "present"),
           "optimizer": ("adamw", "sgd"), "device": ("auto", "cpu", "cuda")}
POSITIVE = ("epochs", "batch_size", "accum", "save_every", "keep_checkpoints", "log_every",
            "texts_per_image")
HINTS = typing.get_type_hints(TrainConfig)


def _coerce(key: str, value, hint, where: str):
    """``value`` as the field's type, or ConfigError naming ``key``."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return None
    for t in options:
        if t is bool and isinstance(value, bool):
            return value
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if t is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if t is str and isinstance(value, str):
            return value
        if typing.get_origin(t) is tuple and isinstance(value, list | tuple) and all(
                isinstance(v, str) for v in value):
            return tuple(value)
    names = " or ".join(getattr(t, "__name__", str(t)) for t in options)
    raise ConfigError(f"{where}: {key} must be {names}, got {value!r}")


def merge(base: dict, overrides: dict, where: str) -> dict:
    """``base`` updated by ``overrides`` (None values skipped), each key and type checked."""
    out = dict(base)
    for key, value in overrides.items():
        if key not in HINTS:
            raise ConfigError(f"{where}: unknown key {key!r}")
        if value is not None:
            out[key] = _coerce(key, value, HINTS[key], where)
    return out


def build(values: dict, where: str = "config") -> TrainConfig:
    cfg = TrainConfig(**merge({}, values, where))
    for key, allowed in CHOICES.items():
        if getattr(cfg, key) not in allowed:
            raise ConfigError(f"{where}: {key} must be one of {', '.join(allowed)}, "
                              f"got {getattr(cfg, key)!r}")
    for key in POSITIVE:
        if getattr(cfg, key) < 1:
            raise ConfigError(f"{where}: {key} must be >= 1, got {getattr(cfg, key)}")
    if cfg.lr <= 0 or (cfg.image_size is not None and cfg.image_size < 16):
        raise ConfigError(f"{where}: lr must be > 0 and image_size >= 16")
    return cfg


def read_file(path: Path) -> dict:
    """A --config file: a JSON or YAML mapping of TrainConfig keys."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = json.loads(text) if Path(path).suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"--config {path}: cannot read it ({type(exc).__name__})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected a mapping of config keys")
    return data


def changed_fields(saved: TrainConfig, new: TrainConfig) -> list[str]:
    """Fields (other than the run-time ones) where two configs differ, as 'key a -> b'."""
    return [f"{f.name} {getattr(saved, f.name)!r} -> {getattr(new, f.name)!r}"
            for f in fields(TrainConfig) if f.name not in RUNTIME_FIELDS
            and getattr(saved, f.name) != getattr(new, f.name)]
