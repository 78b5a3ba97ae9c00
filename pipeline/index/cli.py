"""Index a trained run: every stored study's image and every distinct label text, embedded with
the run's checkpoint, in a FAISS index beside the run (``runs/NAME/index``).

    python -m pipeline.index --run runs/demo --db sqlite:///data/medfilip.db
    python -m pipeline.index --run runs/demo --check

Below 100k vectors the index is exact (inner product); above, IVF with nprobe tuned for
recall@10 >= 0.95. The choice is printed and recorded (manifest.json, EmbeddingIndex rows).
Run it again after ingesting: new studies are added to the index in place (no rebuild). A new
checkpoint rebuilds it; changed curated labels refresh its label part. ``--check`` only says
whether the index is current (exit 0) or missing/stale (exit 1).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.settings import get_settings


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pipeline.index", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True,
                   help="the run directory python -m pipeline.train wrote (runs/NAME)")
    p.add_argument("--db", default=None, help="database URL (default: settings' DATABASE_URL)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="pixel files and data/cache (default: the run's own data dir)")
    p.add_argument("--check", action="store_true",
                   help="only report whether the index is current; exit 1 if missing or stale")
    p.add_argument("--rebuild", action="store_true",
                   help="embed every study anew even if the checkpoint is unchanged")
    p.add_argument("--refit-map", action="store_true",
                   help="refit the 2-D map instead of placing new studies on the saved one")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where the model embeds (default: cpu)")
    p.add_argument("--batch-size", type=int, default=64, help="images per batch (default: 64)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return p.parse_args(argv)


def _spec_line(spec) -> str:
    if spec.kind == "flat":
        return f"exact inner-product (flat) index of {spec.count} vectors"
    return (f"IVF index of {spec.count} vectors: nlist {spec.nlist}, nprobe {spec.nprobe} "
            f"(recall@10 {spec.recall_at_10:.3f} against exact search)")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # imported here so that --help answers without loading torch and FAISS
    from pipeline.index.build import IndexConfig, build_run_index
    from pipeline.index.status import index_status

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = get_settings(database_url=args.db)
    if not (args.run / "config.json").is_file():
        print(f"error: --run {args.run}: not a training run (no config.json)", file=sys.stderr)
        return 1
    if args.check:
        status = index_status(args.run, settings.database_url)
        print(f"{args.run}: {status.describe()}")
        return 0 if status.exists and not status.stale and not status.new_studies else 1
    cfg = IndexConfig(run_dir=args.run, db_url=settings.database_url, data_dir=args.data_dir,
                      device=args.device, batch_size=args.batch_size, rebuild=args.rebuild,
                      refit_map=args.refit_map, progress=not args.no_progress)
    try:
        result = build_run_index(cfg)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"before: {result.before.describe()}")
    what = "built" if result.rebuilt else f"updated: {result.added} new studies added"
    print(f"{result.path}: {what}; {result.studies} studies, {result.labels} label texts, "
          f"map {result.map_method}")
    print(f"  {_spec_line(result.spec)}")
    if result.unreadable:
        print(f"  {result.unreadable} studies left out: their image could not be read")
    return 0
