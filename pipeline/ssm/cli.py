"""Build the soft label matrix (SSM) of the store's curated labels and write it for inspection.

    python -m pipeline.ssm --db sqlite:///data/medfilip.db --out ssm.npz
    python -m pipeline.ssm --db sqlite:///data/medfilip.db --out ssm.npz --include-proposed \\
        --negatives use --encoder sentence-transformers/all-mpnet-base-v2

The .npz holds ``texts`` and ``groups`` (L,), ``embeddings`` (L, D), ``ssm`` (L, L),
``study_ids`` (N,) and ``example_labels`` (N, K, -1 padded), the snapshot hash and the encoder.
Label embeddings are cached under DATA_DIR/cache/labels-<hash>.npz, keyed by the label texts and
the encoder, so ``pipeline.train`` reuses them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from db.engine import init_db
from pipeline.settings import get_settings
from pipeline.ssm.build import build_ssm, save_npz
from pipeline.ssm.embed import DEFAULT_ENCODER, quiet_libraries
from pipeline.ssm.snapshot import LabelError, LabelOptions


def add_label_flags(p: argparse.ArgumentParser) -> None:
    """The label flags ``pipeline.ssm`` and ``pipeline.train`` share (default None: unset)."""
    p.add_argument("--include-proposed", action="store_true", default=None,
                   help="also use the extractor's unreviewed (proposed) findings")
    p.add_argument("--negatives", choices=("drop", "use"), default=None,
                   help="absent findings: drop them (default, as MedFILIP) or use them as "
                   "'no {category}' texts")
    p.add_argument("--uncertain", choices=("drop", "present"), default=None,
                   help="uncertain findings: drop them (default) or count them as present")
    p.add_argument("--holdout-category", action="append", default=None, metavar="CAT",
                   help="never train on this category (repeatable), for unseen-category tests")
    p.add_argument("--allow-missing-knowledge", action="store_true", default=None,
                   help="train a category without an approved IKI entry on its name alone")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pipeline.ssm", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", help="SQLAlchemy URL of the store (default: DATABASE_URL)")
    p.add_argument("--out", required=True, help="the .npz file to write")
    p.add_argument("--data-dir", help="where data/cache lives (default: MEDFILIP_DATA_DIR)")
    p.add_argument("--encoder", default=DEFAULT_ENCODER,
                   help="sentence encoder: 'minilm' (bundled, default), a sentence-transformers "
                   "or Hugging Face name, or a local folder")
    p.add_argument("--split", action="append", default=None,
                   help="split(s) whose labels to read (default: train; repeatable)")
    add_label_flags(p)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_libraries()
    settings = get_settings(database_url=args.db, data_dir=args.data_dir)
    init_db(settings.database_url)
    options = LabelOptions(include_proposed=bool(args.include_proposed),
                           negatives=args.negatives or "drop",
                           uncertain=args.uncertain or "drop",
                           holdout=tuple(args.holdout_category or ()),
                           allow_missing_knowledge=bool(args.allow_missing_knowledge),
                           splits=tuple(args.split or ("train",)))
    try:
        ssm = build_ssm(settings.database_url, options, args.encoder,
                        Path(settings.data_dir) / "cache")
    except LabelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    save_npz(ssm, Path(args.out))
    snap = ssm.snapshot
    off_diag = ssm.matrix[(ssm.matrix > 0) & (ssm.matrix < 1)]
    print(f"SSM {snap.sha256[:12]}: {len(snap.texts)} label texts over {len(snap.examples)} "
          f"studies ({snap.counts['findings_used']} findings), {ssm.embeddings.shape[1]}-d "
          f"{args.encoder} embeddings {'from cache' if ssm.from_cache else 'computed'}, "
          f"mean same-group similarity {off_diag.mean() if off_diag.size else 1.0:.3f} -> {args.out}")
    if snap.missing_knowledge:
        print(f"  trained without IKI explanation: {', '.join(snap.missing_knowledge)}")
    return 0
