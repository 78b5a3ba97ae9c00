"""Ingest throughput: Open-i reports/s and DICOM images/s for 2k x 2k CR files.

    .venv/bin/python bench/ingest.py --openi ../shared/data/openi/NLMCXR_reports.tgz
    .venv/bin/python bench/ingest.py --openi ../shared/data/openi/NLMCXR_reports.tgz --images 40 --workers 2

The CR files are copies of NEMA WG04 RG1_UNCR (pydicom-data; 15-bit MONOCHROME1, 1955 x 1841)
padded to 2048 x 2048, each with its own UIDs, written to a temp folder first (not timed).
Timings cover the library call ``run_ingest`` (parse/decode, pixel files, DB writes) into a fresh
SQLite file, not interpreter start-up. Targets (issue): >= 2,000 reports/s, >= 20 images/s.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.ingest.run import IngestConfig, run_ingest  # noqa: E402
from pipeline.ingest.sources import iter_image_folder, iter_openi  # noqa: E402

SIDE = 2048
REPORTS_TARGET, IMAGES_TARGET = 2000.0, 20.0


def make_cr_files(folder: Path, n: int) -> None:
    """``n`` distinct 2048 x 2048 15-bit CR DICOMs built from RG1_UNCR."""
    template = pydicom.dcmread(get_testdata_file("RG1_UNCR.dcm"))
    pixels = template.pixel_array
    canvas = np.full((SIDE, SIDE), int(pixels.max()), dtype=np.uint16)  # pad with "air" (M1)
    canvas[: pixels.shape[0], : pixels.shape[1]] = pixels
    template.Rows, template.Columns = SIDE, SIDE
    for i in range(n):
        # A slightly different image each time, so no two pixel hashes coincide.
        template.PixelData = np.roll(canvas, i, axis=1).tobytes()
        template.StudyInstanceUID, template.SOPInstanceUID = generate_uid(), generate_uid()
        template.PatientID = f"BENCH{i:04d}"
        template.save_as(folder / f"cr_{i:04d}.dcm", enforce_file_format=True)


def _cpu_seconds() -> float:
    """User + system CPU of this process and its reaped children (the decoding pool)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(items, config: IngestConfig) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds, summary): on a shared machine wall time depends on the
    neighbours' load, CPU time much less, so both are printed."""
    start, cpu = time.perf_counter(), _cpu_seconds()
    summary = run_ingest(items, config)
    return time.perf_counter() - start, _cpu_seconds() - cpu, summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--openi", type=Path, help="path to NLMCXR_reports.tgz (skipped if absent)")
    p.add_argument("--images", type=int, default=40, help="number of 2k x 2k CR files (0: skip)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="decoding processes (default: CPU count)")
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)  # the 28 empty Open-i reports would drown the figures
    print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f} workers={args.workers}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)

        def config(name: str) -> IngestConfig:
            return IngestConfig(database_url=f"sqlite:///{tmp_path / name}.db",
                                data_dir=tmp_path / f"{name}-data", salt="bench",
                                workers=args.workers, progress=False)

        if args.openi:
            seconds, cpu, summary = timed(iter_openi(args.openi), config("openi"))
            rate = summary.items / seconds
            print(f"openi: {summary.line()}")
            print(f"openi: {rate:,.0f} reports/s ({seconds:.2f} s wall, {cpu:.2f} s CPU) "
                  f"= {rate / REPORTS_TARGET:.2f}x the {REPORTS_TARGET:,.0f}/s target; "
                  f"{summary.items / cpu:,.0f} reports per CPU-second")
            seconds, cpu, summary = timed(iter_openi(args.openi), config("openi"))
            print(f"openi rerun (all unchanged): {summary.items / seconds:,.0f} reports/s")
        if args.images:
            folder = tmp_path / "cr"
            folder.mkdir()
            make_cr_files(folder, args.images)
            seconds, cpu, summary = timed(iter_image_folder(folder, "bench-cr"), config("cr"))
            rate, cpu_ms = summary.images / seconds, 1000 * cpu / summary.images
            print(f"dicom: {summary.line()}")
            print(f"dicom: {rate:.1f} images/s ({seconds:.2f} s wall, {SIDE}x{SIDE} 15-bit CR) "
                  f"= {rate / IMAGES_TARGET:.2f}x the {IMAGES_TARGET:.0f}/s target")
            print(f"dicom: {cpu_ms:.0f} CPU-ms per image, all processes: about "
                  f"{1000 * (os.cpu_count() or 1) / cpu_ms:.1f} images/s on idle cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
