"""IKI sync: the packaged dictionary (``pipeline/resources/iki.yaml``) -> KnowledgeEntry rows,
never over a reviewed edit; usage in ``pipeline.knowledge.cli``."""

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
