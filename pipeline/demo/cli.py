"""Generate the demo corpus: synthetic chest radiographs with known findings and their reports.

No labelled chest X-ray set can ship with the app, so the demo, the training tests and the
zero-shot evaluation use phantoms whose findings are known exactly and really drawn in the pixels
(``pipeline.demo.phantom``, ``pipeline.demo.lesions``), with reports written from the same truth
(``pipeline.demo.report``). The output folder holds::

    manifest.csv      study_id,image,report,view,patient_id,study_date,split (for `ingest folder`)
    truth.jsonl       one line per study: ids, split, view, PNG path and the exact findings
    images/*.png      every study; dicom/*.dcm for a share of studies (the manifest points there)
    reports/*.txt     FINDINGS / IMPRESSION prose
    corpus.json       the generation config (seed, n, size, holdout, ...)

The same seed gives byte-identical files whatever the worker count. Splits are by patient;
``--holdout-category`` keeps studies showing a category (and any mention of it) out of train/val.

Examples::

    python -m pipeline.demo --out data/demo --n 1000 --seed 0
    python -m pipeline.demo --out /tmp/zs --n 300 --seed 1 --size 128 \\
        --holdout-category pneumothorax --contact-sheet

``docs/contact_sheet.png`` comes from ``--out /tmp/sheet --n 400 --seed 0 --contact-sheet
docs/contact_sheet.png``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from pipeline.demo.casemix import RENDERED
from pipeline.demo.generate import generate_corpus, write_contact_sheet


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipeline.demo", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="example: python -m pipeline.demo --out data/demo --n 1000 --seed 0")
    p.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    p.add_argument("--n", type=int, default=1000, help="number of studies (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same bytes (default 0)")
    p.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    p.add_argument("--holdout-category", action="append", default=[], metavar="CAT",
                   choices=RENDERED, help="keep CAT out of train/val entirely (repeatable)")
    p.add_argument("--dicom-share", type=float, default=0.15,
                   help="share of studies delivered as DICOM in the manifest (default 0.15)")
    p.add_argument("--uniform-mix", action="store_true",
                   help="every category equally likely (balanced tests) instead of the clinical mix")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                   help="worker processes (output does not depend on it; default min(2, CPUs))")
    p.add_argument("--contact-sheet", nargs="?", const="", default=None, metavar="PNG",
                   help="also write a grid of one example per category "
                        "(default path: OUT/contact_sheet.png)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    if args.n < 1 or args.size < 64:
        p.error("--n must be >= 1 and --size >= 64")
    if not 0.0 <= args.dicom_share <= 1.0:
        p.error("--dicom-share must be in [0, 1]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    summary = generate_corpus(args.out, args.n, args.seed, args.size,
                              tuple(args.holdout_category), args.dicom_share,
                              uniform_mix=args.uniform_mix, workers=args.workers,
                              progress=not args.quiet)
    print(f"{summary.n_studies} studies ({summary.n_patients} patients, {summary.n_dicom} DICOM) "
          f"in {summary.seconds:.1f} s -> {summary.out}; splits {summary.splits}")
    if args.contact_sheet is not None:
        path = Path(args.contact_sheet) if args.contact_sheet else args.out / "contact_sheet.png"
        print(f"contact sheet -> {write_contact_sheet(args.out, path)}")
    return 0

