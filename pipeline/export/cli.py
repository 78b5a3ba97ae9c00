"""Export the settled (curated) labels: a CheXpert-style CSV, or JSONL / Parquet per finding.

    python -m pipeline.export --db sqlite:///data/medfilip.db --format chexpert --out labels.csv
    python -m pipeline.export --format jsonl --out findings.jsonl --split test --since 2026-12-01

Only settled reports are exported (single review, two agreeing reviewers, or adjudicated); a
report still in review or disputed is left out. See ``pipeline/export/write.py`` for the columns.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from db.engine import init_db, session_scope
from db.queries import KEPT_STATUSES
from pipeline.export.write import FORMATS, ExportFilter, load, render
from pipeline.settings import get_settings

STATUSES = (*KEPT_STATUSES, "rejected")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m pipeline.export", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default=None, help="database URL (default: $DATABASE_URL or the "
                    "SQLite file)")
    ap.add_argument("--format", choices=FORMATS, required=True,
                    help="chexpert: one CSV row per image; jsonl / parquet: one row per finding")
    ap.add_argument("--out", required=True, help="file to write")
    ap.add_argument("--status", default=",".join(KEPT_STATUSES),
                    help=f"comma-separated finding statuses to include, of {', '.join(STATUSES)} "
                         f"(default: {','.join(KEPT_STATUSES)})")
    ap.add_argument("--reviewer", default=None,
                    help="only reports this account reviewed or adjudicated")
    ap.add_argument("--since", default=None, help="only labels settled on or after this date "
                    "(YYYY-MM-DD, UTC)")
    ap.add_argument("--split", default=None, help="only studies of this split")
    ap.add_argument("--dataset", default=None, help="only studies of this dataset")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    statuses = tuple(s.strip() for s in args.status.split(",") if s.strip())
    if bad := [s for s in statuses if s not in STATUSES]:
        print(f"error: unknown --status {', '.join(bad)} (one of {', '.join(STATUSES)})")
        return 2
    try:
        since = (datetime.strptime(args.since, "%Y-%m-%d").replace(tzinfo=UTC)
                 if args.since else None)
    except ValueError:
        print(f"error: --since {args.since!r} is not a YYYY-MM-DD date")
        return 2
    url = get_settings(database_url=args.db).database_url
    init_db(url)
    flt = ExportFilter(statuses, args.reviewer, since, args.split, args.dataset)
    with session_scope(url) as session:
        reports, findings = load(session, flt)
    Path(args.out).write_bytes(render(args.format, reports, findings))
    print(f"reports={len(reports)} findings={len(findings)} format={args.format} out={args.out}")
    return 0
