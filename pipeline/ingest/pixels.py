"""Pixel files: the training PNG (8 or 16 bit), the 8-bit display PNG and the thumbnail.

PNGs are written by a small encoder of our own instead of Pillow's: Pillow's 16-bit PNG path
took ~0.37 s for one 2k x 2k CR here, which alone would cap ingest below 6 images/s on two
cores. Rows use PNG's "Up" filter and deflate runs through ISA-L when ``isal`` is installed
(~25 ms for the same image, smaller than Pillow at level 3), else zlib level 1. The encoder
writes IHDR, IDAT and IEND only: no text, time or other metadata chunk can carry anything.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

try:  # optional: 5-10x faster deflate, same zlib stream format
    from isal import isal_zlib as _deflate
except ImportError:  # pragma: no cover - depends on the environment
    _deflate = zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DEFLATE_LEVEL = 1
THUMB_PX = 256  # long side of thumbnails
# Long side of the display copy. Review in the browser needs no more than ChestX-ray14's 1024 px
# (and a 2k x 2k PNG per view is slow to serve); the training file keeps full resolution.
DISPLAY_MAX_PX = 1024
PIXEL_DIR, DISPLAY_DIR, THUMB_DIR = "images", "display", "thumbs"


class BadImage(ValueError):
    """A file that cannot be turned into pixels; the message says why, with no identifier."""


def _chunk(kind: bytes, data: bytes) -> list[bytes]:
    """One PNG chunk as pieces: joining would copy the multi-megabyte IDAT once more."""
    crc = zlib.crc32(data, zlib.crc32(kind)) & 0xFFFFFFFF
    return [struct.pack(">I", len(data)) + kind, data, struct.pack(">I", crc)]


def encode_png(pixels: np.ndarray) -> bytes:
    """Grayscale PNG of a (H, W) uint8 or uint16 array, metadata-free."""
    return b"".join(png_pieces(pixels))


def png_pieces(pixels: np.ndarray) -> list[bytes]:
    """``encode_png`` as a list of byte strings, for writing without joining them."""
    if pixels.ndim != 2 or pixels.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"need a 2-D uint8/uint16 array, got {pixels.dtype} {pixels.shape}")
    height, width = pixels.shape
    depth = 8 * pixels.itemsize
    rows = np.ascontiguousarray(pixels, dtype=pixels.dtype.newbyteorder(">"))
    raw = rows.view(np.uint8).reshape(height, width * pixels.itemsize)
    filtered = np.empty((height, raw.shape[1] + 1), np.uint8)
    filtered[:, 0] = 2  # filter type Up: byte minus the byte above, mod 256
    filtered[0, 1:] = raw[0]
    np.subtract(raw[1:], raw[:-1], out=filtered[1:, 1:])
    ihdr = struct.pack(">IIBBBBB", width, height, depth, 0, 0, 0, 0)  # grayscale, no interlace
    idat = _deflate.compress(filtered.data, DEFLATE_LEVEL)
    return [PNG_SIGNATURE, *_chunk(b"IHDR", ihdr), *_chunk(b"IDAT", idat), *_chunk(b"IEND", b"")]


def write_file(path: Path, pieces: list[bytes]) -> None:
    """Write in place, without a temp file and rename (a rename cost ~4 ms here): a file is
    only referenced once its Image row commits, and names are deterministic, so a half-written
    file from a killed run is never read and is overwritten by the rerun."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fh.writelines(pieces)


def shrink(display: np.ndarray, long_side: int = DISPLAY_MAX_PX) -> np.ndarray:
    """Box-reduce by the smallest integer factor that brings the long side to ``long_side``."""
    factor = -(-max(display.shape) // long_side)  # ceil
    if factor <= 1:
        return display
    return np.asarray(PILImage.fromarray(display).reduce(factor))


def thumbnail(display: np.ndarray, long_side: int = THUMB_PX) -> np.ndarray:
    img = PILImage.fromarray(display)
    factor = max(1, max(img.size) // (2 * long_side))
    if factor > 1:
        img = img.reduce(factor)  # cheap box pre-shrink; the final resize is antialiased
    img.thumbnail((long_side, long_side), PILImage.Resampling.LANCZOS)
    return np.asarray(img)


@dataclass(frozen=True)
class PixelPaths:
    path: str  # training pixels, relative to the data dir
    display_path: str
    thumb_path: str


def write_pixel_files(data_dir: Path, image_key: str, stored: np.ndarray,
                      display: np.ndarray) -> PixelPaths:
    """Write the three files under deterministic names, so a rerun overwrites partial work.
    An 8-bit source up to DISPLAY_MAX_PX needs no separate display file: the training file is
    the display file."""
    pixel_rel = f"{PIXEL_DIR}/{image_key}.png"
    write_file(data_dir / pixel_rel, png_pieces(stored))
    display_rel = pixel_rel
    display = shrink(display)
    if stored.shape != display.shape or stored.dtype != np.uint8 or not np.array_equal(stored, display):
        display_rel = f"{DISPLAY_DIR}/{image_key}.png"
        write_file(data_dir / display_rel, png_pieces(display))
    thumb_rel = f"{THUMB_DIR}/{image_key}.png"
    write_file(data_dir / thumb_rel, png_pieces(thumbnail(display)))
    return PixelPaths(pixel_rel, display_rel, thumb_rel)


def minmax_to_uint8(pixels: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Display window over the image's own range, for sources without one: (u8, center, width)."""
    lo, hi = float(pixels.min()), float(pixels.max())
    width = max(hi - lo, 1.0)
    scaled = (pixels.astype(np.float32) - lo) * (255.0 / width)
    return np.clip(scaled + 0.5, 0, 255).astype(np.uint8), lo + width / 2, width


def load_raster(path: Path) -> tuple[np.ndarray, str]:
    """Pixels of a PNG or JPEG as grayscale uint8/uint16, and the source format name."""
    try:
        with PILImage.open(path) as img:
            fmt = (img.format or "").lower()
            if fmt not in ("png", "jpeg"):
                raise BadImage(f"unsupported image format {img.format or 'unknown'}")
            img.load()
            if img.mode in ("I;16", "I;16B", "I;16L"):
                pixels = np.asarray(img, dtype=np.uint16)
            elif img.mode == "I":
                pixels = np.clip(np.asarray(img), 0, 65535).astype(np.uint16)
            else:
                pixels = np.asarray(img.convert("L"))
    except BadImage:
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadImage(f"not a readable PNG/JPEG image ({type(exc).__name__})") from exc
    if pixels.ndim != 2 or pixels.size == 0:
        raise BadImage(f"unexpected pixel array shape {pixels.shape}")
    return pixels, fmt
