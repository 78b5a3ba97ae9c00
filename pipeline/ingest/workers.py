"""One image in, three de-identified pixel files out: the unit of work of ingest's process pool.

``process_image`` never raises: every failure comes back as an ``ImageOutcome`` with a specific
message free of identifiers, so the driver records it and the run goes on.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from pipeline.ingest.dicom import decode_dicom, read_identifiers, sanitize_error
from pipeline.ingest.pixels import BadImage, load_raster, minmax_to_uint8, write_pixel_files

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


@dataclass(frozen=True)
class ImageJob:
    path: Path  # source file
    image_key: str  # pseudonym: names the output files
    data_dir: Path


@dataclass(frozen=True)
class ImageOutcome:
    image_key: str
    error: str | None = None
    row: dict | None = None  # Image columns except study_id
    study_date: date | None = None  # real DICOM StudyDate, for the driver to shift
    identifiers: frozenset[str] = frozenset()  # DICOM identifiers, to scrub the report


def exit_with_parent() -> None:
    """Pool initializer: a worker whose driver was killed (kill -9) exits instead of waiting
    forever on its task queue."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def sniff_format(path: Path) -> str:
    """'dicom', 'png' or 'jpeg' by content (extensions lie); ``BadImage`` otherwise."""
    try:
        with path.open("rb") as fh:
            head = fh.read(132)
    except FileNotFoundError as exc:
        raise BadImage("image file not found") from exc
    except OSError as exc:
        raise BadImage(f"unreadable image file ({type(exc).__name__})") from exc
    if not head:
        raise BadImage("empty file (0 bytes)")
    if head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(PNG_MAGIC):
        return "png"
    if head.startswith(JPEG_MAGIC):
        return "jpeg"
    raise BadImage("not a DICOM, PNG or JPEG file")


def _decode(path: Path) -> tuple[dict, np.ndarray, np.ndarray, date | None, frozenset[str]]:
    fmt = sniff_format(path)
    if fmt == "dicom":
        d = decode_dicom(path)
        meta = {"bits_stored": d.bits_stored, "photometric": d.photometric,
                "window_center": d.window_center, "window_width": d.window_width,
                "view": d.view}
        return {"source_format": fmt, **meta}, d.stored, d.display, d.study_date, d.identifiers
    pixels, fmt = load_raster(path)
    meta = {"bits_stored": 8 * pixels.itemsize, "photometric": "MONOCHROME2",
            "window_center": None, "window_width": None, "view": None}
    display = pixels
    if pixels.dtype != np.uint8:
        display, center, width = minmax_to_uint8(pixels)
        meta.update(window_center=center, window_width=width)
    return {"source_format": fmt, **meta}, pixels, display, None, frozenset()


def dicom_identifiers(path: Path) -> frozenset[str]:
    """The header identifiers of a DICOM file (empty for any other file), whether or not its
    pixels decode: the study's report and every message about the file are scrubbed of them."""
    try:
        return read_identifiers(path) if sniff_format(path) == "dicom" else frozenset()
    except BadImage:
        return frozenset()


def _failed(job: ImageJob, message: str) -> ImageOutcome:
    return ImageOutcome(job.image_key, error=message, identifiers=dicom_identifiers(job.path))


def process_image(job: ImageJob) -> ImageOutcome:
    try:
        meta, stored, display, study_date, identifiers = _decode(job.path)
        paths = write_pixel_files(job.data_dir, job.image_key, stored, display)
    except BadImage as exc:
        return _failed(job, str(exc))
    except MemoryError:
        return _failed(job, "image too large to decode in memory")
    except Exception as exc:  # a decoder bug must not stop the run: record it specifically
        return _failed(job, f"unexpected decode failure ({sanitize_error(exc)})")
    height, width = stored.shape
    row = {"image_key": job.image_key, "path": paths.path, "display_path": paths.display_path,
           "thumb_path": paths.thumb_path, "width": width, "height": height,
           "pixel_sha256": hashlib.sha256(np.ascontiguousarray(stored).data).hexdigest(), **meta}
    return ImageOutcome(job.image_key, row=row, study_date=study_date, identifiers=identifiers)
