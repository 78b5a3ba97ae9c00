"""Review queries: the queue, a report's findings, decisions with optimistic locking,
undo, and the raw material of agreement figures."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlmodel import Session, func, select

from db.evidence import check_span, locate_quote
from db.models import (
    Finding,
    FindingStatus,
    Image,
    Presence,
    Report,
    ReportExtraction,
    Reviewer,
    ReviewerRole,
    ReviewEvent,
    Severity,
    Side,
    Study,
)
from db.queries._common import add_event, locked_update

__all__ = [
    "accept_all_remaining",
    "add_finding",
    "add_reviewer",
    "added_finding_counts",
    "count_review_queue",
    "decide_finding",
    "DecisionEvent",
    "finding_snapshot",
    "get_review_report",
    "list_decision_events",
    "list_finding_extractors",
    "list_review_queue",
    "list_reviewers",
    "next_unreviewed_report",
    "QueueRow",
    "review_status_counts",
    "ReviewReport",
    "ReviewResult",
    "undo_last",
]

# --- review ---------------------------------------------------------------------------------

# The review workflow (curation_app Review / Knowledge / Agreement pages). Every write is one
# optimistic-locked UPDATE (``WHERE id = :id AND version = :v``) plus an append-only ReviewEvent
# in the caller's transaction. Event JSON holds the finding's fields; keys starting with "_" are
# event metadata: "_applied" (did this event change the row?) and "_undoes" (the event an undo
# reverted).
#
# Second-reviewer rule: a decision changes the Finding row when the row is undecided
# (reviewer_id NULL), was decided by the same reviewer, or the reviewer is an adjudicator/admin.
# Any other reviewer's decision is recorded as an event only ("_applied": false): it counts for
# agreement and leaves the first decision in place.

DECISION_STATUS = {"accept": FindingStatus.accepted, "edit": FindingStatus.edited,
                   "reject": FindingStatus.rejected}
FINDING_FIELDS = ("report_id", "category", "presence", "severity", "side", "region",
                  "evidence_start", "evidence_end", "evidence_text", "status", "reviewer_id",
                  "version")
EDITABLE_FIELDS = ("category", "presence", "severity", "side", "region", "evidence_start",
                   "evidence_end", "evidence_text")
OVERRIDING_ROLES = (ReviewerRole.adjudicator, ReviewerRole.admin)


@dataclass(frozen=True)
class ReviewResult:
    """Outcome of one review write: ``ok`` False with a message on a conflict or a bad input."""

    ok: bool
    message: str
    applied: bool = False  # the Finding row changed (False: recorded as a second opinion only)
    entity_id: int | None = None


def list_reviewers(*, session: Session) -> list[Reviewer]:
    return list(session.exec(select(Reviewer).order_by(Reviewer.name)))


def add_reviewer(name: str, role: ReviewerRole, *, session: Session) -> Reviewer:
    name = " ".join(name.split())
    if not name:
        raise ValueError("a reviewer needs a name")
    if session.exec(select(Reviewer).where(Reviewer.name == name)).first():
        raise ValueError(f"a reviewer named {name!r} already exists")
    reviewer = Reviewer(name=name, role=ReviewerRole(role))
    session.add(reviewer)
    session.flush()
    return reviewer


def finding_snapshot(f: Finding) -> dict:
    """The finding's reviewable fields as plain JSON values."""
    return {k: (str(v) if isinstance(v, str) else v)  # a StrEnum's str() is its value
            for k in FINDING_FIELDS for v in [getattr(f, k)]}


def _stored_snapshot(finding_id: int, *, session: Session) -> dict:
    """The finding's row as the database now holds it (re-read, not the values we sent): what
    an event's ``after`` records, so the audit trail equals the rows."""
    return finding_snapshot(session.get(Finding, finding_id, populate_existing=True))


def _finding_values(fields: dict) -> dict:
    """Column values for an UPDATE/INSERT, enums as members (the columns store enum names)."""
    values = {k: fields[k] for k in (*EDITABLE_FIELDS, "status", "reviewer_id") if k in fields}
    for key, kind in (("presence", Presence), ("severity", Severity), ("side", Side),
                      ("status", FindingStatus)):
        if values.get(key) is not None:
            values[key] = kind(values[key])
    return values


@dataclass(frozen=True)
class QueueRow:
    report_id: int
    study_id: int
    dataset: str
    split: str | None
    n_findings: int  # findings matching the filters
    n_proposed: int  # of all the report's findings, still undecided


def _queue_filter(stmt, dataset, split, category, status, extractor):
    hits = select(Finding.report_id)
    for column, value in ((Finding.category, category), (Finding.status, status),
                          (Finding.extractor, extractor)):
        if value:
            hits = hits.where(column == value)
    stmt = stmt.where(Report.id.in_(hits))
    if dataset:
        stmt = stmt.where(Study.dataset == dataset)
    if split:
        stmt = stmt.where(Study.split == split)
    return stmt


def count_review_queue(*, session: Session, dataset: str | None = None, split: str | None = None,
                       category: str | None = None, status: str | None = None,
                       extractor: str | None = None) -> int:
    stmt = select(func.count()).select_from(Report).join(Study, Study.id == Report.study_id)
    return session.exec(_queue_filter(stmt, dataset, split, category, status, extractor)).one()


def list_review_queue(*, session: Session, dataset: str | None = None, split: str | None = None,
                      category: str | None = None, status: str | None = None,
                      extractor: str | None = None, offset: int = 0,
                      limit: int = 20) -> list[QueueRow]:
    """Reports with at least one finding matching (category, status, extractor), by id."""
    stmt = select(Report.id, Study.id, Study.dataset, Study.split).join(
        Study, Study.id == Report.study_id)
    rows = session.exec(_queue_filter(stmt, dataset, split, category, status, extractor)
                        .order_by(Report.id).offset(offset).limit(limit)).all()
    ids = [r[0] for r in rows]
    counts: dict[int, list[int]] = {i: [0, 0] for i in ids}
    for rid, cat, st, ext in session.exec(select(Finding.report_id, Finding.category,
                                                 Finding.status, Finding.extractor)
                                          .where(Finding.report_id.in_(ids))):
        counts[rid][0] += all(v is None or v == got for v, got in
                              ((category, cat), (status, st), (extractor, ext)))
        counts[rid][1] += st == FindingStatus.proposed
    return [QueueRow(rid, sid, ds, sp, *counts[rid]) for rid, sid, ds, sp in rows]


def next_unreviewed_report(*, session: Session, after: int = 0) -> int | None:
    """The next report (by id, wrapping around) that still has a proposed finding."""
    stmt = select(func.min(Finding.report_id)).where(Finding.status == FindingStatus.proposed)
    return (session.exec(stmt.where(Finding.report_id > after)).one()
            or session.exec(stmt).one())


def list_finding_extractors(*, session: Session) -> list[str]:
    return list(session.exec(select(Finding.extractor).distinct().order_by(Finding.extractor)))


@dataclass(frozen=True)
class ReviewReport:
    report: Report
    study: Study
    images: list[Image]
    findings: list[Finding]


def get_review_report(*, session: Session, report_id: int) -> ReviewReport | None:
    report = session.get(Report, report_id, populate_existing=True)
    if report is None:
        return None
    images = list(session.exec(select(Image).where(Image.study_id == report.study_id)
                               .order_by(Image.id)))
    findings = list(session.exec(select(Finding).where(Finding.report_id == report_id)
                                 .order_by(Finding.id).execution_options(populate_existing=True)))
    return ReviewReport(report, session.get(Study, report.study_id), images, findings)


def _last_writer(finding_id: int, *, session: Session) -> str:
    """'<name> at <time>' of the latest event that changed the finding's row."""
    events = session.exec(select(ReviewEvent, Reviewer.name)
                          .join(Reviewer, Reviewer.id == ReviewEvent.reviewer_id, isouter=True)
                          .where(ReviewEvent.entity == "finding", ReviewEvent.entity_id == finding_id)
                          .order_by(ReviewEvent.id.desc()).limit(50))
    for event, name in events:
        if json.loads(event.after_json or "{}").get("_applied", True):
            return f"{name or 'the pipeline'} at {event.at:%Y-%m-%d %H:%M:%S} UTC"
    return "the pipeline"


def _conflict(finding_id: int, *, session: Session) -> ReviewResult:
    return ReviewResult(False, f"Finding {finding_id} was changed by "
                               f"{_last_writer(finding_id, session=session)} since you opened "
                               "it; nothing was saved. The page now shows its current state.",
                        entity_id=finding_id)


def _resolve_evidence(report_id: int, fields: dict, *, session: Session) -> dict | str:
    """``fields`` with its evidence as the exact report slice, or why the quote is refused.

    A given span that is the quote's verbatim slice is kept (a reviewer may mean a later
    occurrence); otherwise the quote is located (``db.evidence.locate_quote``: whitespace-
    insensitive, first occurrence) and the slice found there is stored.
    """
    text = session.get(Report, report_id).text
    start, end, quote = (fields.get(k) for k in ("evidence_start", "evidence_end", "evidence_text"))
    if check_span(text, start, end, quote):
        return fields
    span = locate_quote(text, quote)
    if span is None:
        clipped = " ".join((quote or "").split())[:80]
        return (f"The evidence quote {clipped!r} is not a verbatim part of the report text; "
                "copy it from the report. Nothing saved.")
    return {**fields, "evidence_start": span[0], "evidence_end": span[1],
            "evidence_text": text[span[0]:span[1]]}


def decide_finding(finding_id: int, action: str, *, version: int, reviewer: Reviewer,
                   changes: dict | None = None, session: Session) -> ReviewResult:
    """accept / edit / reject one finding as seen at ``version`` (see the second-reviewer rule)."""
    finding = session.get(Finding, finding_id, populate_existing=True)
    if finding is None:
        return ReviewResult(False, f"Finding {finding_id} no longer exists.")
    if finding.version != version:
        return _conflict(finding_id, session=session)
    before = finding_snapshot(finding)
    decision = {**before, **{k: v for k, v in (changes or {}).items() if k in EDITABLE_FIELDS},
                "status": DECISION_STATUS[action].value, "reviewer_id": reviewer.id}
    if action == "edit":
        decision = _resolve_evidence(finding.report_id, decision, session=session)
        if isinstance(decision, str):
            return ReviewResult(False, decision, entity_id=finding_id)
    applies = (finding.reviewer_id in (None, reviewer.id)
               or ReviewerRole(reviewer.role) in OVERRIDING_ROLES)
    if applies:
        if not locked_update(Finding, finding_id, version, _finding_values(decision),
                              session=session):
            return _conflict(finding_id, session=session)
        decision = _stored_snapshot(finding_id, session=session)
    # a second opinion changes no row: its event records the decision itself
    add_event(reviewer.id, "finding", finding_id, action, before,
               {**decision, "_applied": applies}, session=session)
    session.flush()
    message = (f"Finding {finding_id}: {DECISION_STATUS[action].value}." if applies else
               f"Finding {finding_id}: your decision was recorded as a second opinion; the first "
               "reviewer's stays until an adjudicator decides.")
    return ReviewResult(True, message, applies, finding_id)


def add_finding(report_id: int, fields: dict, *, reviewer: Reviewer,
                session: Session) -> ReviewResult:
    """A finding the extractor missed: status ``added``, extractor ``human``."""
    values = _resolve_evidence(report_id, {k: fields.get(k) for k in EDITABLE_FIELDS},
                               session=session)
    if isinstance(values, str):
        return ReviewResult(False, values)
    values = _finding_values(values)
    finding = Finding(report_id=report_id, extractor="human", extractor_version="human",
                      status=FindingStatus.added, reviewer_id=reviewer.id, **values)
    session.add(finding)
    session.flush()
    add_event(reviewer.id, "finding", finding.id, "add", None,
               {**_stored_snapshot(finding.id, session=session), "_applied": True},
               session=session)
    session.flush()
    return ReviewResult(True, f"Finding {finding.id} added.", True, finding.id)


def accept_all_remaining(report_id: int, *, reviewer: Reviewer, session: Session) -> int:
    """Accept every still-proposed finding of the report (one event each); returns how many."""
    proposed = session.exec(select(Finding.id, Finding.version).where(
        Finding.report_id == report_id, Finding.status == FindingStatus.proposed)).all()
    return sum(decide_finding(fid, "accept", version=v, reviewer=reviewer, session=session).ok
               for fid, v in proposed)


def undo_last(report_id: int, *, reviewer: Reviewer, session: Session) -> ReviewResult:
    """Revert the reviewer's latest not-yet-undone event on this report from its before_json.

    An undone "add" deletes the finding; an undone second opinion changes no row. The undo is
    itself an event, refused (a conflict) when someone else has changed the row since.
    """
    ids = select(Finding.id).where(Finding.report_id == report_id)
    events = list(session.exec(select(ReviewEvent).where(
        ReviewEvent.entity == "finding", ReviewEvent.entity_id.in_(ids),
        ReviewEvent.reviewer_id == reviewer.id).order_by(ReviewEvent.id.desc())))
    undone = {json.loads(e.after_json)["_undoes"] for e in events if e.action == "undo"}
    target = next((e for e in events if e.action != "undo" and e.id not in undone), None)
    if target is None:
        return ReviewResult(False, "You have no change on this report left to undo.")
    after = json.loads(target.after_json)
    finding = session.get(Finding, target.entity_id, populate_existing=True)
    current = finding_snapshot(finding)
    meta = {"_undoes": target.id, "_applied": after["_applied"]}
    if after["_applied"] and finding.version != after["version"]:
        return _conflict(finding.id, session=session)
    if after["_applied"] and target.action == "add":
        session.delete(finding)
        restored = {**meta, "deleted": True}
    elif after["_applied"]:
        before = json.loads(target.before_json)
        if not locked_update(Finding, finding.id, finding.version, _finding_values(before),
                              session=session):
            return _conflict(finding.id, session=session)
        restored = {**_stored_snapshot(finding.id, session=session), **meta}
    else:
        restored = {**current, **meta}
    add_event(reviewer.id, "finding", target.entity_id, "undo", current, restored,
               session=session)
    session.flush()
    return ReviewResult(True, f"Undid your {target.action} of finding {target.entity_id}.",
                        after["_applied"], target.entity_id)



# Agreement: raw decision events and status counts; pipeline.agreement does the arithmetic.


@dataclass(frozen=True)
class DecisionEvent:
    id: int
    finding_id: int
    reviewer_id: int | None
    action: str  # accept | edit | reject | add | undo
    undoes: int | None


def list_decision_events(*, session: Session, report_id: int | None = None
                         ) -> list[DecisionEvent]:
    """Every finding event (of one report's findings when ``report_id`` is given)."""
    stmt = (select(ReviewEvent.id, ReviewEvent.entity_id, ReviewEvent.reviewer_id,
                   ReviewEvent.action, ReviewEvent.after_json)
            .where(ReviewEvent.entity == "finding").order_by(ReviewEvent.id))
    if report_id is not None:
        stmt = stmt.where(ReviewEvent.entity_id.in_(
            select(Finding.id).where(Finding.report_id == report_id)))
    return [DecisionEvent(i, fid, rid, action, json.loads(after or "{}").get("_undoes"))
            for i, fid, rid, action, after in session.exec(stmt)]


def review_status_counts(*, session: Session) -> list[tuple[str, str, str, str, int]]:
    """(extractor, extractor_version, category, status, n) of the extractors' findings."""
    stmt = (select(Finding.extractor, Finding.extractor_version, Finding.category, Finding.status,
                   func.count())
            .where(Finding.extractor != "human")
            .group_by(Finding.extractor, Finding.extractor_version, Finding.category,
                      Finding.status))
    return [(e, v, c, str(FindingStatus(s).value), n) for e, v, c, s, n in session.exec(stmt)]


def added_finding_counts(*, session: Session) -> list[tuple[str, str, str, int]]:
    """(extractor, extractor_version, category, n): findings reviewers added (not rejected since)
    on reports that extractor version had done, i.e. what it missed."""
    stmt = (select(ReportExtraction.extractor, ReportExtraction.extractor_version,
                   Finding.category, func.count())
            .join(ReportExtraction, ReportExtraction.report_id == Finding.report_id)
            .where(Finding.extractor == "human", Finding.status != FindingStatus.rejected)
            .group_by(ReportExtraction.extractor, ReportExtraction.extractor_version,
                      Finding.category))
    return list(session.exec(stmt).all())
