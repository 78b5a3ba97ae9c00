"""Extract findings from report text: the rule-based extractor (offline default) or an LLM.

File mode (JSONL in, JSONL out; input lines {"id": ..., "text": ...}):
    python -m pipeline.extract --input reports.jsonl --output findings.jsonl
DB mode (every report without findings from the current extractor version -> Finding rows,
status "proposed", once per report and version, never on a report under review; failures ->
ExtractionError rows; safe to run twice at once):
    python -m pipeline.extract --db sqlite:///data/medfilip.db --extractor llm --concurrency 16

Output findings: {"category", "presence", "severity", "location": {"side", "region"}, "side",
"evidence": {"start", "end", "text"}, "extractor"}; evidence offsets index into the input text
(DB mode: Report.text). The API key is read from OPENAI_API_KEY only, never from a flag.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from db.engine import init_db
from pipeline.extract.run import make_extractor, run_db, run_file
from pipeline.settings import get_settings


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m pipeline.extract", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--extractor", choices=("rules", "llm"), default="rules",
                    help="rules (offline, default) or llm (any OpenAI-compatible API)")
    ap.add_argument("--input", type=Path, help="JSONL of {\"id\", \"text\"} (file mode)")
    ap.add_argument("--output", type=Path, help="JSONL of {\"id\", \"findings\"} (file mode)")
    ap.add_argument("--db", help="SQLAlchemy URL: DB mode (default URL: DATABASE_URL)")
    ap.add_argument("--concurrency", type=int, help="LLM requests in flight at once")
    ap.add_argument("--model", help="LLM model name (default: OPENAI_MODEL)")
    ap.add_argument("--base-url", help="OpenAI-compatible endpoint (default: OPENAI_BASE_URL)")
    ap.add_argument("--limit", type=int, help="extract at most this many reports")
    ap.add_argument("--force", action="store_true",
                    help="DB mode: re-extract reports that already have findings of this version "
                         "(a report a reviewer has started on is still left alone)")
    args = ap.parse_args(argv)
    if args.input is None and args.db is None:
        ap.error("choose a mode: --input IN.jsonl --output OUT.jsonl, or --db URL")
    if args.input is not None and args.db is not None:
        ap.error("--input and --db are two modes: give one")
    if args.input is not None and args.output is None:
        ap.error("--input needs --output")
    if args.concurrency is not None and args.concurrency < 1:
        ap.error("--concurrency must be >= 1")
    if args.limit is not None and args.limit < 0:
        ap.error("--limit must be >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = get_settings(database_url=args.db)
    db_url = settings.database_url
    if args.db is not None:
        init_db(db_url)
    extractor = make_extractor(args.extractor, settings=settings, db_url=db_url,
                               concurrency=args.concurrency, model=args.model,
                               base_url=args.base_url)
    if args.db is not None:
        summary = run_db(extractor, db_url, limit=args.limit, force=args.force)
    else:
        summary = run_file(extractor, args.input, args.output, limit=args.limit)
    print(f"{extractor.name} {extractor.version}: {summary.format()}")
    stats = getattr(extractor, "stats", None)
    if stats is not None and hasattr(stats, "format"):
        print(stats.format())
    return 1 if summary.all_failed else 0

