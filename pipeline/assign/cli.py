"""Assign studies to reviewers: each report to one reviewer, a share to two (blind double review).

    python -m pipeline.assign --db sqlite:///data/medfilip.db --reviewers "Dr A,Dr B,Dr C"
    python -m pipeline.assign --reviewers a,b --double-share 0.2 --dataset demo --split test

Balanced (least-loaded first) and idempotent: reports that already have a reviewer are left as
they are, so done work is never reassigned and a second run adds only what is new. The
reviewers must be active accounts (``python -m db reviewers add``). The run is one audit event.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from db.engine import init_db, session_scope
from db.queries import OPERATOR
from pipeline.assign.plan import assign_studies
from pipeline.settings import get_settings


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m pipeline.assign", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default=None, help="database URL (default: $DATABASE_URL or the "
                    "SQLite file)")
    ap.add_argument("--reviewers", required=True,
                    help="comma-separated account names to share the work between")
    ap.add_argument("--double-share", type=float, default=0.0,
                    help="share of the matching studies reviewed by two reviewers (0..1, "
                         "default 0)")
    ap.add_argument("--dataset", default=None, help="only studies of this dataset")
    ap.add_argument("--split", default=None, help="only studies of this split (train/val/test)")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    url = get_settings(database_url=args.db).database_url
    init_db(url)
    reviewers = [n.strip() for n in args.reviewers.split(",") if n.strip()]
    try:
        with session_scope(url) as session:
            summary = assign_studies(session, reviewers=reviewers, actor=OPERATOR,
                                     double_share=args.double_share, dataset=args.dataset,
                                     split=args.split)
    except ValueError as err:
        print(f"error: {err}")
        return 2
    print(summary.line())
    return 0
