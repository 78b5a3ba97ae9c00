"""The on-disk pixel cache: decode and resize each training image once per image set.

``<data_dir>/cache/pixels-<key>-<px>.npy`` is a (N, px, px) uint8 array, memory-mapped by every
run and epoch that reads the same images at the same size, so data loading is an index into
page-cached memory and never starves the model. The key hashes the images' pixel hashes in
order. A sidecar ``.json`` (written last: its presence marks a complete cache) lists the rows
whose image could not be read; those rows hold zeros and callers skip them.

Pixels: the 8/16-bit training PNG, windowed with its stored window (else 8-bit as is, else its
own min..max), padded to a square with the window's low end (no aspect distortion) and
resized with Pillow's antialiasing filter.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from tqdm import tqdm

from db.queries import StudyImage
from pipeline.ingest.pixels import BadImage, load_raster


@dataclass(frozen=True)
class PixelCache:
    path: Path
    pixels: np.ndarray  # (N, px, px) uint8, memory-mapped read-only
    bad: dict[int, str]  # row -> why its image could not be read
    built: bool  # decoded now (False: reused from disk)


def cache_key(images: list[StudyImage]) -> str:
    return hashlib.sha256("\n".join(i.pixel_sha256 for i in images).encode()).hexdigest()[:16]


def to_unit(pixels: np.ndarray, center: float | None, width: float | None) -> np.ndarray:
    """(H, W) uint8/uint16 -> float32 in [0, 1] through the image's display window."""
    values = pixels.astype(np.float32)
    if center is not None and width:
        lo, hi = center - width / 2, center + width / 2
    elif pixels.dtype == np.uint8:
        lo, hi = 0.0, 255.0
    else:
        lo, hi = float(values.min()), float(values.max())
    return np.clip((values - lo) / max(hi - lo, 1e-6), 0.0, 1.0)


def square_resize(unit: np.ndarray, px: int) -> np.ndarray:
    """float [0, 1] (H, W) -> (px, px) uint8, padded to a square first (centred, value 0)."""
    h, w = unit.shape
    side = max(h, w)
    canvas = np.zeros((side, side), np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    canvas[top:top + h, left:left + w] = unit
    img = PILImage.fromarray(canvas, mode="F")
    factor = side // (2 * px)
    if factor > 1:
        img = img.reduce(factor)  # box pre-shrink; the final resize is antialiased
    out = np.asarray(img.resize((px, px), PILImage.Resampling.BILINEAR))
    return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)


def decode(job: tuple[str, float | None, float | None, int]) -> np.ndarray | str:
    """One cache row, or the reason it cannot be made (no path or identifier in it)."""
    path, center, width, px = job
    try:
        pixels, _ = load_raster(Path(path))
    except BadImage as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot open the pixel file ({type(exc).__name__})"
    return square_resize(to_unit(pixels, center, width), px)


def _open(npy: Path, meta: Path) -> tuple[np.ndarray, dict[int, str]] | None:
    if not (npy.exists() and meta.exists()):
        return None
    bad = {int(k): v for k, v in json.loads(meta.read_text())["bad"].items()}
    return np.load(npy, mmap_mode="r"), bad


def pixel_cache(images: list[StudyImage], data_dir: Path, px: int, *, workers: int = 0,
                progress: bool = True, cache_dir: Path | None = None) -> PixelCache:
    """The cache of ``images`` at ``px``: reused if on disk, else built (atomically)."""
    cache_dir = Path(cache_dir or Path(data_dir) / "cache")
    stem = f"pixels-{cache_key(images)}-{px}"
    npy, meta = cache_dir / f"{stem}.npy", cache_dir / f"{stem}.json"
    if (found := _open(npy, meta)) is not None:
        return PixelCache(npy, found[0], found[1], built=False)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f"{stem}.{os.getpid()}.tmp.npy"
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(images), px, px))
    jobs = [(str(Path(data_dir) / i.path), i.window_center, i.window_width, px) for i in images]
    bad: dict[int, str] = {}
    bar = tqdm(total=len(jobs), desc=f"pixel cache {px}px", unit="img", disable=not progress)
    pool = ProcessPoolExecutor(workers) if workers > 0 and len(jobs) > 64 else None
    try:
        rows = pool.map(decode, jobs, chunksize=32) if pool else map(decode, jobs)
        for row, result in enumerate(rows):
            if isinstance(result, str):
                bad[row] = result
            else:
                out[row] = result
            bar.update()
    finally:
        bar.close()
        if pool:
            pool.shutdown()
    out.flush()
    del out
    os.replace(tmp, npy)
    tmp_meta = meta.with_suffix(f".{os.getpid()}.tmp")
    tmp_meta.write_text(json.dumps({"count": len(images), "px": px, "bad": bad}))
    os.replace(tmp_meta, meta)
    return PixelCache(npy, np.load(npy, mmap_mode="r"), bad, built=True)
