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
Every write goes through the ``db.queries`` knowledge writes: audited as a ReviewEvent with
reviewer NULL, and version-checked (it bumps ``version``, so a page that has the row open sees
the change; and an edit made between the sync's read and its write is kept, not overwritten).
Rows of categories no longer in the file are left alone.
"""

from __future__ import annotations

from collections import Counter

from db import queries
from db.engine import session_scope
from db.models import KnowledgeEntry, KnowledgeSource, KnowledgeStatus
from pipeline import vocab


def _source_of(entry: KnowledgeEntry) -> KnowledgeSource:
    return KnowledgeSource(entry.source)


def plan_action(entry: KnowledgeEntry | None, text: str, last_synced: str | None) -> str:
    """What sync does with one key: create | update | unchanged | kept-reviewed | kept-draft."""
    if entry is None:
        return "create"
    if entry.explanation == text:
        return "unchanged"
    if _source_of(entry) is not KnowledgeSource.written:
        return "kept-draft"
    if entry.reviewer_id is not None or last_synced is None or entry.explanation != last_synced:
        return "kept-reviewed"
    return "update"


def sync_knowledge(db_url: str | None, *, dry_run: bool = False) -> Counter:
    """Bring KnowledgeEntry rows in line with iki.yaml; returns counts per action.

    Writes are the version-checked ``db.queries`` knowledge writes: an entry someone changes (or
    creates) between this sync's read and its write is left as they wrote it ("kept-concurrent").
    """
    wanted = [(cat, sub, text) for cat, subs in vocab.load_iki().items()
              for sub, text in subs.items()]
    counts: Counter = Counter()
    with session_scope(db_url) as session:
        entries = queries.get_knowledge_entries(session=session)
        synced = queries.last_synced_explanations(session=session)
        for cat, sub, text in wanted:
            entry = entries.get((cat, sub))
            action = plan_action(entry, text, synced.get(entry.id) if entry else None)
            if not dry_run and action in ("create", "update") and not _write(
                    entry, cat, sub, text, session=session):
                action = "kept-concurrent"
            counts[action] += 1
    return counts


def _write(entry: KnowledgeEntry | None, category: str, subclass: str, text: str, *,
           session) -> bool:
    """Create or update one entry as the sync does; False when another writer got there first."""
    if entry is None:
        return queries.create_knowledge_entry(
            category, subclass, text, source=KnowledgeSource.written,
            status=KnowledgeStatus.approved, action=queries.KNOWLEDGE_SYNC_ACTION,
            session=session) is not None
    return queries.write_knowledge_entry(
        entry, {"explanation": text, "status": KnowledgeStatus.approved},
        action=queries.KNOWLEDGE_SYNC_ACTION, session=session) is not None
