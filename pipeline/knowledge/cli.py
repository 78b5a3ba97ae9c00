"""Load the packaged IKI dictionary (``pipeline/resources/iki.yaml``) into KnowledgeEntry rows.

    python -m pipeline.knowledge sync --db sqlite:///data/medfilip.db
    python -m pipeline.knowledge sync --dry-run      # say what would change, write nothing
    python -m pipeline.knowledge draft --db sqlite:///data/medfilip.db --limit 20

``draft`` asks the LLM (OPENAI_BASE_URL / OPENAI_MODEL / OPENAI_API_KEY) for explanations of the
subclasses that stored findings use but the dictionary lacks ("severity:mild" effusion,
"region:apical" nodule...); they are stored as ``llm-draft`` / ``draft`` for review
(``pipeline.knowledge.draft``).

Rows are keyed (category, subclass), subclass "" for the category itself. Our written texts are
stored with source ``written`` and status ``approved`` (LLM-made drafts come from elsewhere, as
``llm-draft`` / ``draft``, and are never touched here).

Reviewed edits are never overwritten. An existing row is updated only when ALL hold:
  * its source is ``written`` (not an LLM draft),
  * no reviewer is recorded on it (``reviewer_id`` is NULL), and
  * its explanation is exactly what this sync last wrote to it, read back from the sync's own
    audit event (ReviewEvent, action "sync"); a row with no sync event is someone else's.
Every write is audited as a ReviewEvent with reviewer NULL and version-checked: it bumps
``version`` (a page that has the row open sees the change), and an edit made while the sync runs
is kept ("kept-concurrent"), not overwritten. Rows of categories no longer in the file are left
alone.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from db.engine import init_db
from pipeline import vocab
from pipeline.knowledge.draft import draft_missing
from pipeline.knowledge.sync import sync_knowledge
from pipeline.settings import get_settings


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m pipeline.knowledge", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("sync", help="load iki.yaml into KnowledgeEntry rows "
                        "(e.g. python -m pipeline.knowledge sync --db sqlite:///data/medfilip.db)")
    sp.add_argument("--db", help="SQLAlchemy URL of the store (default: DATABASE_URL)")
    sp.add_argument("--dry-run", action="store_true", help="report what would change; write nothing")
    dp = sub.add_parser("draft", help="LLM-draft explanations of used subclasses the dictionary "
                        "lacks (e.g. python -m pipeline.knowledge draft --limit 20)")
    dp.add_argument("--db", help="SQLAlchemy URL of the store (default: DATABASE_URL)")
    dp.add_argument("--model", help="LLM model name (default: OPENAI_MODEL)")
    dp.add_argument("--base-url", help="OpenAI-compatible endpoint (default: OPENAI_BASE_URL)")
    dp.add_argument("--limit", type=int, help="draft at most this many entries")
    return ap.parse_args(argv)


def run_draft(args: argparse.Namespace) -> int:
    settings = get_settings(database_url=args.db, openai_base_url=args.base_url)
    init_db(settings.database_url)
    outcomes = draft_missing(settings.database_url, settings, model=args.model, limit=args.limit)
    failed = [o for o in outcomes if o.error]
    for o in failed:
        print(f"  {o.category} {o.subclass}: {o.error}")
    print(f"IKI drafts: {len(outcomes) - len(failed)} stored as draft, {len(failed)} failed "
          f"({len(outcomes)} missing subclasses asked)")
    return 1 if outcomes and len(failed) == len(outcomes) else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "draft":
        return run_draft(args)
    settings = get_settings(database_url=args.db)
    init_db(settings.database_url)
    counts = sync_knowledge(settings.database_url, dry_run=args.dry_run)
    order = ("create", "update", "unchanged", "kept-reviewed", "kept-draft", "kept-concurrent")
    verb = "would be" if args.dry_run else "were"
    print(f"IKI dictionary v{vocab.iki_version()}: " + ", ".join(
        f"{counts.get(k, 0)} {k}" for k in order) + f" ({sum(counts.values())} entries {verb} checked)")
    return 0

