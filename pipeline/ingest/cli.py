"""Ingest: studies (DICOM / PNG / JPEG + report text) -> de-identified Study, Image, Report rows.

    python -m pipeline.ingest --db sqlite:///data/medfilip.db openi ../shared/data/openi/NLMCXR_reports.tgz
    python -m pipeline.ingest --data-dir data folder ../shared/data/images/

Sources: ``folder DIR [--manifest CSV]`` (images plus a manifest with study_id, image, report
and optional view, patient_id, study_date, split, dataset; DIR/manifest.csv is used when present;
without a manifest every image is ingested, DICOMs grouped by study), ``openi TGZ [--images
DIR]``, ``mimic-cxr-jpg ROOT`` and ``chexpert ROOT`` (their published layouts).

Everything is de-identified on the way in (``pipeline.ingest.deid``): keys are salted pseudonyms
(salt: ``MEDFILIP_SALT``), dates shift per patient, DICOM headers are never stored, and report
text is scrubbed of the study's known identifiers. Ingest is idempotent (a key already stored is
"unchanged") and resumable: each batch of studies is one transaction and pixel files have
deterministic names, so a killed run picks up where it stopped. A bad item becomes an
IngestError row (and a warning on stderr, on every run while it still fails) and the run goes
on; a study whose image or report failed counts as failed even when its other rows were stored.
When a later run stores that study whole, its error rows are marked resolved.

Exit status: 0 every item ingested or unchanged; 3 the run finished but some items failed (see
table ingesterror); 1 nothing could be ingested (source not found or unreadable, every item
failed, the store unusable); 2 usage error.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.exc import OperationalError

from db.engine import SchemaError
from db.models import Split
from pipeline.ingest.datasets import iter_chexpert, iter_mimic
from pipeline.ingest.run import IngestConfig, IngestSummary, run_ingest
from pipeline.ingest.sources import Item, iter_image_folder, iter_manifest, iter_openi
from pipeline.settings import get_settings

EXIT_OK, EXIT_FATAL, EXIT_SOME_FAILED = 0, 1, 3  # and 2: argparse's usage error


def missing_source(args: argparse.Namespace) -> str | None:
    """Why the source cannot be read at all ("folder not found: ..."), or None."""
    if args.source == "openi":
        paths = [("archive", args.tgz, "file"), ("images folder", args.images, "dir")]
    elif args.source == "folder":
        paths = [("folder", args.dir, "dir"), ("manifest", args.manifest, "file")]
    else:
        paths = [("root folder", args.root, "dir")]
    for noun, value, kind in paths:
        if value is None:
            continue
        path = Path(value)
        if not path.exists():
            return f"{noun} not found: {value}"
        if (kind == "dir") != path.is_dir():
            return f"{noun} is not a {'folder' if kind == 'dir' else 'file'}: {value}"
    return None


def exit_status(summary: IngestSummary) -> int:
    """The documented exit status of a finished run (see the module docstring)."""
    if summary.ingested + summary.unchanged + summary.images + summary.reports == 0:
        return EXIT_FATAL  # nothing stored, nothing there already: the run achieved nothing
    return EXIT_SOME_FAILED if summary.failed else EXIT_OK


def iter_source(args: argparse.Namespace) -> Iterator[Item]:
    if args.source == "openi":
        return iter_openi(Path(args.tgz), Path(args.images) if args.images else None)
    if args.source == "mimic-cxr-jpg":
        return iter_mimic(Path(args.root))
    if args.source == "chexpert":
        return iter_chexpert(Path(args.root))
    folder = Path(args.dir)
    manifest = Path(args.manifest) if args.manifest else folder / "manifest.csv"
    if args.manifest or manifest.is_file():
        return iter_manifest(folder, manifest, folder.resolve().name or "folder")
    return iter_image_folder(folder, folder.resolve().name or "folder")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipeline.ingest", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", default=None, help="database URL (default: settings' DATABASE_URL)")
    p.add_argument("--data-dir", default=None, help="where pixel files are written (default: "
                   "settings' MEDFILIP_DATA_DIR); DB paths are relative to it")
    p.add_argument("--dataset", default=None, help="dataset name for every study, overriding "
                   "the adapter's (it is part of the pseudonymous keys)")
    p.add_argument("--split", choices=[s.value for s in Split], default=None,
                   help="split for studies whose source gives none")
    p.add_argument("--batch-size", type=int, default=200,
                   help="studies per transaction (default: 200)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="image-decoding processes, 0 for none (default: CPU count)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    sub = p.add_subparsers(dest="source", required=True, metavar="SOURCE",
                           help="folder | openi | mimic-cxr-jpg | chexpert")
    f = sub.add_parser("folder", help="images plus an optional manifest CSV")
    f.add_argument("dir", help="folder of images (PNG, JPEG, DICOM)")
    f.add_argument("--manifest", default=None, help="CSV with study_id,image,report[,view,"
                   "patient_id,study_date,split,dataset] (default: DIR/manifest.csv if present)")
    o = sub.add_parser("openi", help="Open-i NLMCXR_reports.tgz")
    o.add_argument("tgz", help="path to NLMCXR_reports.tgz")
    o.add_argument("--images", default=None, help="folder of Open-i PNGs named <parentImage id>.png")
    m = sub.add_parser("mimic-cxr-jpg", help="MIMIC-CXR-JPG root (files/, metadata CSVs)")
    m.add_argument("root", help="the MIMIC-CXR-JPG root folder")
    c = sub.add_parser("chexpert", help="CheXpert root (train.csv, valid.csv)")
    c.add_argument("root", help="the CheXpert-v1.0[-small] folder")
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    if args.batch_size < 1 or args.workers < 0:
        p.error("--batch-size must be >= 1 and --workers >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pydicom").setLevel(logging.CRITICAL)  # its warnings can quote PHI
    if problem := missing_source(args):
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_FATAL
    settings = get_settings(database_url=args.db, data_dir=args.data_dir)
    config = IngestConfig(database_url=settings.database_url, data_dir=Path(settings.data_dir),
                          salt=settings.pseudonym_salt.get_secret_value(),
                          dataset=args.dataset, split=args.split, batch_size=args.batch_size,
                          workers=args.workers, progress=not args.no_progress)
    try:
        summary = run_ingest(iter_source(args), config)
    except SchemaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FATAL
    except OperationalError as exc:  # e.g. still locked after the busy timeout, server down
        reason = str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__
        print(f"error: the store cannot be written ({reason}); batches already committed are "
              "kept, rerun to go on", file=sys.stderr)
        return EXIT_FATAL
    print(summary.line())
    return exit_status(summary)

