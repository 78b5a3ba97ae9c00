"""Checkpoints: ``runs/NAME/checkpoints/step-N.pt`` plus ``latest.txt`` naming the newest.

A checkpoint holds the config, the open_clip weights under "state_dict" (so open_clip's own
loader, and ``--pretrained``, read it as is), the optimizer and scheduler, the step, the sampler
position (epoch, next micro-batch) and every rank's RNG state. Files are written to a temporary
name and renamed, so a kill mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

FORMAT = "medfilip-train/1"
LATEST = "latest.txt"


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def save_checkpoint(run_dir: Path, step: int, payload: dict, keep: int) -> Path:
    """Write step-N.pt, point latest.txt at it, delete all but the ``keep`` newest."""
    folder = checkpoint_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step-{step}.pt"
    _atomic_write(path, lambda p: torch.save({"format": FORMAT, **payload}, p))
    _atomic_write(folder / LATEST, lambda p: p.write_text(path.name + "\n"))
    steps = sorted(folder.glob("step-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
    for old in steps[:-keep]:
        old.unlink(missing_ok=True)
    return path


def latest_checkpoint(run_dir: Path) -> Path | None:
    pointer = checkpoint_dir(run_dir) / LATEST
    if not pointer.exists():
        return None
    path = checkpoint_dir(run_dir) / pointer.read_text().strip()
    return path if path.exists() else None


def read_checkpoint(path: Path) -> dict:
    """A checkpoint of ours, loaded on CPU; ValueError if the file is something else."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a corrupt or foreign file is one error to the user
        raise ValueError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path}: not a pipeline.train checkpoint")
    return ckpt
