"""Settled labels: where each report's curated label stands, adjudication, and the reads that
training and export use.

A report settles when every reviewer assigned to it has finished (``Assignment.completed_at``):
one reviewer -> their answers ("single"); two whose kept findings agree -> the common answer
("agreed"); two who differ -> "disputed", the adjudication queue, until an adjudicator picks one
side or writes a third answer ("adjudicated", final). Agreement compares each reviewer's kept
findings (not rejected) as a multiset of (category, presence, severity, side, region); evidence
offsets may differ.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, func, select

from db.models import (
    Assignment,
    Finding,
    FindingStatus,
    Image,
    Presence,
    Report,
    ReportExtraction,
    ReviewAnswer,
    Reviewer,
    Settlement,
    Severity,
    Side,
    Study,
    utcnow,
)
from db.queries._common import add_event as _add_event
from db.queries._common import chunks, resolve_evidence
from db.queries._common import locked_update as _locked_update
from db.queries.auth import Actor, Permission, PermissionDenied, authorize
from db.queries.review import ReviewResult

__all__ = ["ANSWER_FIELDS", "answer_values", "proposal_fields", "KEPT_STATUSES", "Dispute", "DisputeRow", "DoublePair", "LabelState",
           "SettledFinding", "SettledReport", "ValidationData", "adjudicate_own", "adjudicate_pick",
           "answer_snapshot", "count_disputes", "count_settled_reports", "double_review_pairs", "extractor_validation_data", "get_dispute", "label_set",
           "list_disputes", "report_label_state", "resettle", "settled_findings",
           "settled_reports", "settlement_snapshot"]

ANSWER_FIELDS = ("category", "presence", "severity", "side", "region", "evidence_start",
                 "evidence_end", "evidence_text")
_ENUMS = (("presence", Presence), ("severity", Severity), ("side", Side),
          ("status", FindingStatus))


def answer_snapshot(a: ReviewAnswer) -> dict:
    """The answer row as plain JSON values (what its audit events record)."""
    out = {k: getattr(a, k) for k in ("report_id", "finding_id", "reviewer_id", "status",
                                      *ANSWER_FIELDS, "version")}
    return {k: (str(v) if isinstance(v, str) else v) for k, v in out.items()}


def answer_values(fields: dict) -> dict:
    values = {k: fields[k] for k in (*ANSWER_FIELDS, "status") if k in fields}
    for key, kind in _ENUMS:
        if values.get(key) is not None:
            values[key] = kind(values[key])
    return values


def proposal_fields(f: Finding) -> dict:
    return {k: (str(v) if isinstance(v, str) else v) for k in ANSWER_FIELDS
            for v in [getattr(f, k)]}


LABEL_FIELDS = ("category", "presence", "severity", "side", "region")
KEPT_STATUSES = ("accepted", "edited", "added")


def label_set(report_id: int, reviewer_id: int, *, session: Session) -> list[tuple]:
    """A reviewer's kept findings on a report, as sorted (category, presence, severity, side,
    region) tuples: what two reviewers must share to agree."""
    rows = session.exec(select(*(getattr(ReviewAnswer, f) for f in LABEL_FIELDS)).where(
        ReviewAnswer.report_id == report_id, ReviewAnswer.reviewer_id == reviewer_id,
        ReviewAnswer.status != FindingStatus.rejected))
    return sorted(tuple("" if v is None else str(v) for v in row) for row in rows)


def settlement_snapshot(s: Settlement) -> dict:
    return {"report_id": s.report_id, "state": s.state, "how": s.how,
            "answer_reviewer_id": s.answer_reviewer_id, "adjudicator_id": s.adjudicator_id,
            "version": s.version}


def _target(report_id: int, *, session: Session) -> tuple | None:
    """(state, how, answer_reviewer_id) the report's answers call for; None: not finished."""
    rows = session.exec(select(Assignment.reviewer_id, Assignment.completed_at)
                        .where(Assignment.report_id == report_id).order_by(Assignment.id)).all()
    if not rows or any(done is None for _, done in rows):
        return None
    ids = [rid for rid, _ in rows]
    if len(ids) == 1:
        return ("settled", "single", ids[0])
    first, *others = (label_set(report_id, r, session=session) for r in ids)
    return ("settled", "agreed", ids[0]) if all(o == first for o in others) else (
        "disputed", None, None)


def resettle(report_id: int, *, actor_id: int | None, session: Session) -> None:
    """Bring the report's Settlement row in line with its answers (adjudicated ones stay).

    Events: entity "settlement", entity_id = the report id (stable across unsettle/resettle).
    """
    s = session.exec(select(Settlement).where(Settlement.report_id == report_id)
                     .execution_options(populate_existing=True)).first()
    if s is not None and s.how == "adjudicated":
        return
    target = _target(report_id, session=session)
    before = settlement_snapshot(s) if s else None
    if s is not None and target == (s.state, s.how, s.answer_reviewer_id):
        s.updated_at = utcnow()  # the settled answers changed: --since exports pick it up
        session.add(s)
        session.flush()
        return
    if target is None:
        if s is not None:
            session.delete(s)
            _add_event(actor_id, "settlement", report_id, "unsettle", before, None,
                       session=session)
        session.flush()
        return
    s = s or Settlement(report_id=report_id, state="", version=0)
    s.state, s.how, s.answer_reviewer_id = target
    s.version += 1
    s.updated_at = utcnow()
    session.add(s)
    session.flush()
    _add_event(actor_id, "settlement", report_id, "dispute" if s.state == "disputed" else
               "settle", before, settlement_snapshot(s), session=session)
    session.flush()


# --- adjudication ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DisputeRow:
    report_id: int
    study_id: int
    dataset: str
    split: str | None
    since: datetime


def count_disputes(*, session: Session) -> int:
    return session.exec(select(func.count()).select_from(Settlement)
                        .where(Settlement.state == "disputed")).one()


def list_disputes(*, session: Session, offset: int = 0, limit: int = 20) -> list[DisputeRow]:
    rows = session.exec(select(Settlement.report_id, Report.study_id, Study.dataset, Study.split,
                               Settlement.updated_at)
                        .join(Report, Report.id == Settlement.report_id)
                        .join(Study, Study.id == Report.study_id)
                        .where(Settlement.state == "disputed")
                        .order_by(Settlement.updated_at, Settlement.report_id)
                        .offset(offset).limit(limit))
    return [DisputeRow(*r) for r in rows]


@dataclass(frozen=True)
class Dispute:
    report: Report
    study: Study
    images: list[Image]
    findings: list[Finding]
    answers: dict[int, list[ReviewAnswer]]  # reviewer id -> their answers, in assignment order
    names: dict[int, str]
    settlement: Settlement


def get_dispute(report_id: int, *, actor: Actor, session: Session) -> Dispute | None:
    """Both reviewers' answers on a disputed report (adjudicators and admins only)."""
    authorize(actor, Permission.adjudicate, session=session)
    s = session.exec(select(Settlement).where(Settlement.report_id == report_id)
                     .execution_options(populate_existing=True)).first()
    report = session.get(Report, report_id)
    if s is None or report is None:
        return None
    reviewers = list(session.exec(select(Reviewer).join(
        Assignment, Assignment.reviewer_id == Reviewer.id).where(
        Assignment.report_id == report_id).order_by(Assignment.id)))
    answers = {r.id: list(session.exec(select(ReviewAnswer).where(
        ReviewAnswer.report_id == report_id, ReviewAnswer.reviewer_id == r.id)
        .order_by(ReviewAnswer.finding_id.is_(None), ReviewAnswer.finding_id, ReviewAnswer.id)))
        for r in reviewers}
    return Dispute(report, session.get(Study, report.study_id),
                   list(session.exec(select(Image).where(Image.study_id == report.study_id)
                                     .order_by(Image.id))),
                   list(session.exec(select(Finding).where(Finding.report_id == report_id)
                                     .order_by(Finding.id))),
                   answers, {r.id: r.name for r in reviewers}, s)


def _open_dispute(report_id: int, seen_version: int, actor: Actor, *,
                  session: Session) -> Settlement | ReviewResult:
    try:
        authorize(actor, Permission.adjudicate, session=session)
    except PermissionDenied as err:
        return ReviewResult(False, str(err))
    s = session.exec(select(Settlement).where(Settlement.report_id == report_id)
                     .execution_options(populate_existing=True)).first()
    if s is None or s.state != "disputed":
        return ReviewResult(False, f"Report {report_id} is not in the adjudication queue "
                                   "(settled or reopened since).")
    if s.version != seen_version:
        return ReviewResult(False, f"Report {report_id} changed since you opened it; nothing "
                                   "was saved.")
    if session.exec(select(Assignment.id).where(Assignment.report_id == report_id,
                                                Assignment.reviewer_id == actor.id)).first():
        return ReviewResult(False, "You reviewed this report yourself: another adjudicator "
                                   "must settle it.")
    return s


def _settle_adjudicated(s: Settlement, answer_reviewer_id: int, action: str, actor: Actor, *,
                        session: Session) -> ReviewResult:
    before = settlement_snapshot(s)
    values = {"state": "settled", "how": "adjudicated", "answer_reviewer_id": answer_reviewer_id,
              "adjudicator_id": actor.id}
    if not _locked_update(Settlement, s.id, s.version, values, session=session):
        return ReviewResult(False, f"Report {s.report_id} changed since you opened it; nothing "
                                   "was saved.")
    s = session.get(Settlement, s.id, populate_existing=True)
    _add_event(actor.id, "settlement", s.report_id, action, before, settlement_snapshot(s),
               session=session)
    session.flush()
    return ReviewResult(True, f"Report {s.report_id} settled.", True, s.report_id)


def adjudicate_pick(report_id: int, reviewer_id: int, *, seen_version: int, actor: Actor,
                    session: Session) -> ReviewResult:
    """Settle a disputed report on one assigned reviewer's answers."""
    s = _open_dispute(report_id, seen_version, actor, session=session)
    if isinstance(s, ReviewResult):
        return s
    if not session.exec(select(Assignment.id).where(Assignment.report_id == report_id,
                                                    Assignment.reviewer_id == reviewer_id)).first():
        return ReviewResult(False, "Pick one of the report's two reviewers.")
    return _settle_adjudicated(s, reviewer_id, "adjudicate-pick", actor, session=session)


def adjudicate_own(report_id: int, rows: list[dict], *, seen_version: int, actor: Actor,
                   session: Session) -> ReviewResult:
    """Settle a disputed report on the adjudicator's own answer: ``rows`` are the kept findings
    (fields of ANSWER_FIELDS, ``finding_id`` when a row answers a proposal); proposals left
    out are stored as rejected."""
    s = _open_dispute(report_id, seen_version, actor, session=session)
    if isinstance(s, ReviewResult):
        return s
    rows = list(rows)
    for i, row in enumerate(rows, 1):
        if not row.get("category") or not row.get("presence"):
            return ReviewResult(False, f"Row {i}: a finding needs a category and a presence.")
        resolved = resolve_evidence(report_id, row, session=session)
        if isinstance(resolved, str):
            return ReviewResult(False, f"Row {i}: {resolved}")
        rows[i - 1] = resolved
    proposals = {f.id: f for f in session.exec(select(Finding).where(
        Finding.report_id == report_id))}
    kept = {}
    for row in rows:
        fid = row.get("finding_id")
        fid = fid if fid in proposals and fid not in kept else None
        fields = {k: row.get(k) for k in ANSWER_FIELDS}
        status = ("added" if fid is None else "accepted" if fields == proposal_fields(proposals[fid])
                  else "edited")
        kept.setdefault(fid, []).append({**fields, "status": status})
    for f in proposals.values():
        if f.id not in kept:
            kept[f.id] = [{**proposal_fields(f), "status": "rejected"}]
    for fid, answers in kept.items():
        for fields in answers:
            answer = ReviewAnswer(report_id=report_id, finding_id=fid, reviewer_id=actor.id,
                                  **answer_values(fields))
            session.add(answer)
            session.flush()
            _add_event(actor.id, "answer", answer.id, "adjudicate", None,
                       answer_snapshot(answer), session=session)
    return _settle_adjudicated(s, actor.id, "adjudicate-own", actor, session=session)


@dataclass(frozen=True)
class LabelState:
    """A report's label as the Studies page shows it (no reviewer's pending answer in it)."""

    state: str  # settled | disputed | in review | not reviewed
    how: str | None
    status: dict[int, str]  # finding id -> its settled status (settled reports only)
    answers: list[ReviewAnswer]  # the settled label's answers (settled reports only)


def report_label_state(report_id: int, *, session: Session) -> LabelState:
    s = session.exec(select(Settlement).where(Settlement.report_id == report_id)).first()
    if s is None or s.state != "settled":
        assigned = session.exec(select(Assignment.id).where(
            Assignment.report_id == report_id)).first()
        state = s.state if s else ("in review" if assigned else "not reviewed")
        return LabelState(state, None, {}, [])
    answers = list(session.exec(select(ReviewAnswer).where(
        ReviewAnswer.report_id == report_id, ReviewAnswer.reviewer_id == s.answer_reviewer_id)
        .order_by(ReviewAnswer.id)))
    return LabelState("settled", s.how, {a.finding_id: str(a.status) for a in answers
                                         if a.finding_id is not None}, answers)


@dataclass(frozen=True)
class DoublePair:
    """Both assigned reviewers' answers on one finished double review (agreement's raw data);
    answers are (finding_id, status, category, presence, severity, side) tuples."""

    report_id: int
    reviewers: tuple[int, int]
    answers: tuple[list[tuple], list[tuple]]


def double_review_pairs(*, session: Session) -> list[DoublePair]:
    """Every report with exactly two assignments, both done (the adjudicator is no rater)."""
    done = (select(Assignment.report_id).group_by(Assignment.report_id)
            .having(func.count() == 2, func.count(Assignment.completed_at) == 2))
    who: dict[int, list[int]] = defaultdict(list)
    for rep, rid in session.exec(select(Assignment.report_id, Assignment.reviewer_id)
                                 .where(Assignment.report_id.in_(done))
                                 .order_by(Assignment.report_id, Assignment.reviewer_id)):
        who[rep].append(rid)
    answers: dict[tuple[int, int], list[tuple]] = defaultdict(list)
    for part in chunks(list(who)):
        for a in session.exec(select(ReviewAnswer).where(ReviewAnswer.report_id.in_(part))):
            answers[a.report_id, a.reviewer_id].append((
                a.finding_id, str(a.status), a.category, str(a.presence),
                str(a.severity) if a.severity else None, str(a.side) if a.side else None))
    return [DoublePair(rep, (ra, rb), (answers[rep, ra], answers[rep, rb]))
            for rep, (ra, rb) in who.items()]


@dataclass(frozen=True)
class ValidationData:
    """What scoring an extractor against the settled labels needs (pipeline.agreement)."""

    proposals: list[tuple]  # (extractor, version, report_id, finding_id, category, presence)
    answers: list[tuple]  # settled: (report_id, finding_id | None, status, category, presence)
    extracted: list[tuple]  # (extractor, version, report_id) of settled reports


def extractor_validation_data(*, session: Session) -> ValidationData:
    settled = {s.report_id: s.answer_reviewer_id for s in session.exec(
        select(Settlement).where(Settlement.state == "settled"))}
    proposals, answers, extracted = [], [], []
    for part in chunks(list(settled)):
        proposals += [(e, v, r, i, c, str(p)) for e, v, r, i, c, p in session.exec(
            select(Finding.extractor, Finding.extractor_version, Finding.report_id, Finding.id,
                   Finding.category, Finding.presence).where(Finding.report_id.in_(part)))]
        answers += [(a.report_id, a.finding_id, str(a.status), a.category, str(a.presence))
                    for a in session.exec(select(ReviewAnswer).where(
                        ReviewAnswer.report_id.in_(part)))
                    if settled[a.report_id] == a.reviewer_id]
        extracted += list(session.exec(select(ReportExtraction.extractor,
                                              ReportExtraction.extractor_version,
                                              ReportExtraction.report_id)
                                       .where(ReportExtraction.report_id.in_(part))))
    return ValidationData(proposals, answers, extracted)


# --- settled labels: what training and export read --------------------------------------------


@dataclass(frozen=True)
class SettledReport:
    report_id: int
    study_id: int
    study_key: str  # pseudonymous
    patient_key: str  # pseudonymous
    dataset: str
    split: str | None
    how: str  # single | agreed | adjudicated
    settled_at: datetime
    answer_reviewer_id: int
    reviewers: tuple[str, ...]  # assigned reviewers, then the adjudicator
    images: tuple[tuple[str, str, str | None], ...]  # (image_key, pixel path, view)


@dataclass(frozen=True)
class SettledFinding:
    report_id: int
    study_key: str
    finding_id: int | None  # the extractor proposal answered; None: added by a reviewer
    category: str
    presence: str
    severity: str | None
    side: str | None
    region: str | None
    evidence_start: int | None
    evidence_end: int | None
    evidence_text: str | None
    status: str  # accepted | edited | added (| rejected when asked for)
    extractor: str  # the proposal's extractor, "human" for an added finding
    extractor_version: str


def _settled_stmt(dataset, split, since, reviewer):
    stmt = (select(Settlement, Report.study_id, Study.study_key, Study.patient_key,
                   Study.dataset, Study.split)
            .join(Report, Report.id == Settlement.report_id)
            .join(Study, Study.id == Report.study_id)
            .where(Settlement.state == "settled"))
    if dataset:
        stmt = stmt.where(Study.dataset == dataset)
    if split:
        stmt = stmt.where(Study.split == split)
    if since:
        stmt = stmt.where(Settlement.updated_at >= since)
    if reviewer:
        rid = select(Reviewer.id).where(Reviewer.name == reviewer).scalar_subquery()
        stmt = stmt.where((Settlement.adjudicator_id == rid) | Settlement.report_id.in_(
            select(Assignment.report_id).where(Assignment.reviewer_id == rid)))
    return stmt.order_by(Settlement.report_id)


def count_settled_reports(*, session: Session, dataset: str | None = None,
                          split: str | None = None, since: datetime | None = None,
                          reviewer: str | None = None) -> int:
    sub = _settled_stmt(dataset, split, since, reviewer).subquery()
    return session.exec(select(func.count()).select_from(sub)).one()


def settled_reports(*, session: Session, dataset: str | None = None, split: str | None = None,
                    since: datetime | None = None,
                    reviewer: str | None = None) -> list[SettledReport]:
    """Every settled report (filters: dataset, split, settled since, a reviewer's name)."""
    rows = session.exec(_settled_stmt(dataset, split, since, reviewer)).all()
    names = {r.id: r.name for r in session.exec(select(Reviewer))}
    people: dict[int, list[str]] = defaultdict(list)
    images: dict[int, list[tuple]] = defaultdict(list)
    study_ids = [r[1] for r in rows]
    for part in chunks([r[0].report_id for r in rows]):
        for report_id, rid in session.exec(select(Assignment.report_id, Assignment.reviewer_id)
                                           .where(Assignment.report_id.in_(part))
                                           .order_by(Assignment.id)):
            people[report_id].append(names[rid])
    for part in chunks(study_ids):
        for sid, key, path, view in session.exec(select(Image.study_id, Image.image_key,
                                                        Image.path, Image.view)
                                                 .where(Image.study_id.in_(part))
                                                 .order_by(Image.id)):
            images[sid].append((key, path, view))
    return [SettledReport(s.report_id, sid, skey, pkey, ds, sp, s.how, s.updated_at,
                          s.answer_reviewer_id,
                          tuple(people[s.report_id]) + ((names[s.adjudicator_id],)
                                                        if s.adjudicator_id else ()),
                          tuple(images[sid]))
            for s, sid, skey, pkey, ds, sp in rows]


def settled_findings(*, session: Session, reports: list[SettledReport] | None = None,
                     statuses: tuple[str, ...] = KEPT_STATUSES, **filters) -> list[SettledFinding]:
    """The settled label's findings of ``reports`` (default: settled_reports(**filters)).

    Kept findings only by default (accepted, edited, added); pass ``statuses`` with
    "rejected" to see the proposals the settled answer rejected too.
    """
    reports = settled_reports(session=session, **filters) if reports is None else reports
    whose = {r.report_id: (r.answer_reviewer_id, r.study_key) for r in reports}
    out: list[SettledFinding] = []
    for part in chunks(list(whose)):
        stmt = (select(ReviewAnswer, Finding.extractor, Finding.extractor_version)
                .join(Finding, Finding.id == ReviewAnswer.finding_id, isouter=True)
                .where(ReviewAnswer.report_id.in_(part),
                       ReviewAnswer.status.in_([FindingStatus(s) for s in statuses]))
                .order_by(ReviewAnswer.report_id, ReviewAnswer.id))
        for a, extractor, version in session.exec(stmt):
            if whose[a.report_id][0] != a.reviewer_id:
                continue
            out.append(SettledFinding(
                a.report_id, whose[a.report_id][1], a.finding_id, a.category, str(a.presence),
                str(a.severity) if a.severity else None, str(a.side) if a.side else None,
                a.region, a.evidence_start, a.evidence_end, a.evidence_text, str(a.status),
                extractor or "human", version or "human"))
    return out
