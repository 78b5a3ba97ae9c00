"""IKI knowledge queries: the sync's reads and audit, and reviewers' edits."""

from __future__ import annotations

import json

from sqlmodel import Session, select

from db.models import (
    Finding,
    KnowledgeEntry,
    KnowledgeSource,
    KnowledgeStatus,
    Reviewer,
    ReviewEvent,
    utcnow,
)
from db.queries._common import add_event, insert_or_skip, locked_update
from db.queries.review import ReviewResult

__all__ = [
    "add_knowledge_subclass",
    "create_knowledge_entry",
    "get_knowledge_entries",
    "knowledge_snapshot",
    "KNOWLEDGE_SYNC_ACTION",
    "last_synced_explanations",
    "list_knowledge",
    "list_subclass_keys_in_use",
    "SUBCLASS_KINDS",
    "update_knowledge",
    "write_knowledge_entry",
]

# IKI knowledge sync (pipeline.knowledge.sync): the entries, and what the sync itself last wrote to
# each, read back from its own audit events (ReviewEvent action "sync").


KNOWLEDGE_SYNC_ACTION = "sync"


def get_knowledge_entries(*, session: Session) -> dict[tuple[str, str], KnowledgeEntry]:
    """Every KnowledgeEntry by (category, subclass)."""
    return {(e.category, e.subclass): e for e in session.exec(select(KnowledgeEntry))}


def last_synced_explanations(*, session: Session) -> dict[int, str]:
    """KnowledgeEntry id -> the explanation the latest sync wrote to it."""
    stmt = (select(ReviewEvent.entity_id, ReviewEvent.after_json)
            .where(ReviewEvent.entity == "knowledge", ReviewEvent.action == KNOWLEDGE_SYNC_ACTION)
            .order_by(ReviewEvent.id))
    return {eid: json.loads(after)["explanation"] for eid, after in session.exec(stmt)}


def knowledge_snapshot(e: KnowledgeEntry) -> dict:
    """The entry's fields as every knowledge audit event records them (before and after)."""
    return {"category": e.category, "subclass": e.subclass, "explanation": e.explanation,
            "source": KnowledgeSource(e.source).value, "status": KnowledgeStatus(e.status).value,
            "reviewer_id": e.reviewer_id, "version": e.version}


def create_knowledge_entry(category: str, subclass: str, explanation: str, *,
                           source: KnowledgeSource, status: KnowledgeStatus, action: str,
                           reviewer_id: int | None = None,
                           session: Session) -> KnowledgeEntry | None:
    """Insert a new entry and its audit event; None, and nothing written, when an entry for
    (category, subclass) exists already (another writer got there first: theirs stays)."""
    inserted = insert_or_skip(KnowledgeEntry, [{
        "category": category, "subclass": subclass, "explanation": explanation,
        "source": KnowledgeSource(source), "status": KnowledgeStatus(status),
        "reviewer_id": reviewer_id, "version": 1, "updated_at": utcnow()}], session=session)
    if not inserted:
        return None
    [entry_id] = inserted
    entry = session.get(KnowledgeEntry, entry_id, populate_existing=True)
    add_event(reviewer_id, "knowledge", entry_id, action, None, knowledge_snapshot(entry),
               session=session)
    return entry


def write_knowledge_entry(entry: KnowledgeEntry, values: dict, *, action: str,
                          reviewer_id: int | None = None,
                          session: Session) -> KnowledgeEntry | None:
    """Update ``entry`` as read (its ``version``) with ``values``, and audit it; None, and
    nothing written, when the row changed since it was read (optimistic locking).

    The event's ``before`` is the entry as read and its ``after`` the row as re-read after the
    write, so the audit trail equals the rows.
    """
    before = knowledge_snapshot(entry)
    if not locked_update(KnowledgeEntry, entry.id, entry.version, values, session=session):
        return None
    after = session.get(KnowledgeEntry, entry.id, populate_existing=True)
    add_event(reviewer_id, "knowledge", entry.id, action, before, knowledge_snapshot(after),
               session=session)
    return after


def list_subclass_keys_in_use(*, session: Session) -> list[tuple[str, str]]:
    """(category, "severity:<s>" / "region:<r>") of every asserted finding, distinct, sorted.

    The subclasses the training labels will actually say: the ones worth an IKI explanation.
    """
    asserted = Finding.presence != "absent"
    keys: set[tuple[str, str]] = set()
    for column, prefix in ((Finding.severity, "severity"), (Finding.region, "region")):
        stmt = select(Finding.category, column).where(asserted, column.is_not(None)).distinct()
        keys |= {(cat, f"{prefix}:{value}") for cat, value in session.exec(stmt)}
    return sorted(keys)




# Knowledge (IKI) review: a reviewer's write sets reviewer_id, which pipeline.knowledge.sync's sync
# reads as "reviewed": it never overwrites such an entry.


SUBCLASS_KINDS = ("severity", "region", "type")  # as iki.yaml keys them: "severity:severe"


def list_knowledge(*, session: Session, category: str | None = None) -> list[KnowledgeEntry]:
    stmt = select(KnowledgeEntry).order_by(KnowledgeEntry.category, KnowledgeEntry.subclass)
    if category:
        stmt = stmt.where(KnowledgeEntry.category == category)
    return list(session.exec(stmt.execution_options(populate_existing=True)))


def update_knowledge(entry_id: int, *, version: int, explanation: str, status: KnowledgeStatus,
                     reviewer: Reviewer, session: Session) -> ReviewResult:
    """Edit and/or approve an IKI entry as seen at ``version`` (action edit or approve)."""
    entry = session.get(KnowledgeEntry, entry_id, populate_existing=True)
    explanation = " ".join(explanation.split())
    if entry is None or not explanation:
        return ReviewResult(False, "An explanation cannot be empty." if entry else
                            f"IKI entry {entry_id} no longer exists.")
    action = "edit" if explanation != entry.explanation else "approve"
    values = {"explanation": explanation, "status": KnowledgeStatus(status),
              "reviewer_id": reviewer.id}
    if entry.version != version or write_knowledge_entry(
            entry, values, action=action, reviewer_id=reviewer.id, session=session) is None:
        entry = session.get(KnowledgeEntry, entry_id, populate_existing=True)
        who = session.get(Reviewer, entry.reviewer_id) if entry.reviewer_id else None
        return ReviewResult(False, f"IKI entry {entry_id} was changed by "
                            f"{who.name if who else 'the sync'} at {entry.updated_at:%Y-%m-%d %H:%M:%S}"
                            " since you opened it; nothing was saved.", entity_id=entry_id)
    session.flush()
    return ReviewResult(True, f"IKI entry {entry.category} {entry.subclass or ''}: saved.".replace(
        "  ", " "), True, entry_id)


def add_knowledge_subclass(category: str, subclass: str, explanation: str, *, reviewer: Reviewer,
                           session: Session) -> ReviewResult:
    """A new written entry for (category, subclass), as a draft awaiting approval."""
    explanation = " ".join(explanation.split())
    kind, _, value = subclass.partition(":")
    if kind not in SUBCLASS_KINDS or not value.strip() or not explanation:
        return ReviewResult(False, "A subclass entry needs a subclass written kind:value "
                            f"(kind one of {', '.join(SUBCLASS_KINDS)}) and an explanation.")
    entry = create_knowledge_entry(category, subclass, explanation,
                                   source=KnowledgeSource.written, status=KnowledgeStatus.draft,
                                   action="add", reviewer_id=reviewer.id, session=session)
    if entry is None:
        return ReviewResult(False, f"{category} already has an entry for {subclass}.")
    return ReviewResult(True, f"Added {category} {subclass} (draft).", True, entry.id)
