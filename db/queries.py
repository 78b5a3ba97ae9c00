"""Every query of the store. Pages and pipeline stages call these; nobody else builds SQL.

Functions take ``session`` keyword-only (full-stack-fastapi-template's ``crud.py`` style).
Sections: studies & images (browse), ingest, extraction, review. Keep each section together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import delete as sa_delete
from sqlalchemy import insert as sa_insert
from sqlalchemy import update as sa_update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from db.models import (
    ExtractionError,
    Finding,
    FindingStatus,
    Image,
    IngestError,
    KnowledgeEntry,
    KnowledgeSource,
    KnowledgeStatus,
    LLMCall,
    Presence,
    Report,
    ReportExtraction,
    Reviewer,
    ReviewerRole,
    ReviewEvent,
    Severity,
    Side,
    Study,
    utcnow,
)

# --- studies & images (browse) -------------------------------------------------------------


@dataclass(frozen=True)
class StudyRow:
    """One line of the studies list: the study, its first image, its report."""

    study: Study
    image: Image | None
    report: Report | None
    n_images: int
    n_findings: int


def _study_filter(stmt, dataset: str | None, split: str | None, text: str | None):
    if dataset:
        stmt = stmt.where(Study.dataset == dataset)
    if split:
        stmt = stmt.where(Study.split == split)
    if text:
        hits = select(Report.study_id).where(Report.text.ilike(f"%{text}%"))
        stmt = stmt.where(Study.id.in_(hits))
    return stmt


def count_studies(*, session: Session, dataset: str | None = None, split: str | None = None,
                  text: str | None = None) -> int:
    stmt = _study_filter(select(func.count()).select_from(Study), dataset, split, text)
    return session.exec(stmt).one()


def list_studies(*, session: Session, dataset: str | None = None, split: str | None = None,
                 text: str | None = None, offset: int = 0, limit: int = 20) -> list[StudyRow]:
    """A page of studies, ordered by id, each with its first image and first report."""
    studies = session.exec(_study_filter(select(Study), dataset, split, text)
                           .order_by(Study.id).offset(offset).limit(limit)).all()
    ids = [s.id for s in studies]
    if not ids:
        return []
    images: dict[int, list[Image]] = {}
    for img in session.exec(select(Image).where(Image.study_id.in_(ids)).order_by(Image.id)):
        images.setdefault(img.study_id, []).append(img)
    reports: dict[int, Report] = {}
    for rep in session.exec(select(Report).where(Report.study_id.in_(ids)).order_by(Report.id)):
        reports.setdefault(rep.study_id, rep)
    n_findings = dict(session.exec(
        select(Report.study_id, func.count(Finding.id)).join(Finding, Finding.report_id == Report.id)
        .where(Report.study_id.in_(ids)).group_by(Report.study_id)).all())
    return [StudyRow(s, (images.get(s.id) or [None])[0], reports.get(s.id),
                     len(images.get(s.id, [])), n_findings.get(s.id, 0)) for s in studies]


def list_datasets(*, session: Session) -> list[str]:
    return list(session.exec(select(Study.dataset).distinct().order_by(Study.dataset)).all())


def list_splits(*, session: Session) -> list[str]:
    stmt = select(Study.split).where(Study.split.is_not(None)).distinct().order_by(Study.split)
    return list(session.exec(stmt).all())


@dataclass(frozen=True)
class StudyDetail:
    study: Study
    images: list[Image]
    reports: list[Report]
    findings: list[Finding]


def get_study(*, session: Session, study_id: int) -> StudyDetail | None:
    study = session.get(Study, study_id)
    if study is None:
        return None
    images = list(session.exec(select(Image).where(Image.study_id == study_id).order_by(Image.id)))
    reports = list(session.exec(select(Report).where(Report.study_id == study_id).order_by(Report.id)))
    findings = list(session.exec(
        select(Finding).where(Finding.report_id.in_([r.id for r in reports]))
        .order_by(Finding.report_id, Finding.category))) if reports else []
    return StudyDetail(study, images, reports, findings)


def list_ingest_errors(*, session: Session, dataset: str | None = None,
                       limit: int = 200) -> list[IngestError]:
    stmt = select(IngestError).order_by(IngestError.id.desc()).limit(limit)
    if dataset:
        stmt = stmt.where(IngestError.dataset == dataset)
    return list(session.exec(stmt).all())


# --- ingest ---------------------------------------------------------------------------------

# Ingest writes in bulk: a batch of a few hundred studies is one transaction, keys are looked up
# once per batch, and rows go in through Core ``insert`` (the ORM unit of work would cost more
# than parsing does at Open-i's 4k reports).
_IN_CHUNK = 500  # keys per IN (...) list, well under SQLite's bound-parameter limit


def _chunks(values: list, size: int = _IN_CHUNK):
    for i in range(0, len(values), size):
        yield values[i:i + size]


def find_study_ids(keys: list[str], *, session: Session) -> dict[str, int]:
    """study_key -> Study.id for the keys already stored."""
    out: dict[str, int] = {}
    for chunk in _chunks(list(keys)):
        out.update(session.exec(select(Study.study_key, Study.id)
                                .where(Study.study_key.in_(chunk))).all())
    return out


def find_image_keys(keys: list[str], *, session: Session) -> set[str]:
    out: set[str] = set()
    for chunk in _chunks(list(keys)):
        out.update(session.exec(select(Image.image_key).where(Image.image_key.in_(chunk))).all())
    return out


def find_studies_with_report(study_ids: list[int], *, session: Session) -> set[int]:
    out: set[int] = set()
    for chunk in _chunks(list(study_ids)):
        out.update(session.exec(select(Report.study_id)
                                .where(Report.study_id.in_(chunk))).all())
    return out


def insert_ingest_rows(model: type, rows: list[dict], *, session: Session) -> None:
    """Bulk insert of Study / Image / Report rows (plain dicts of column values)."""
    if rows:
        session.connection().execute(sa_insert(model), rows)


def add_ingest_errors(rows: list[dict], *, session: Session) -> list[dict]:
    """Record errors, skipping any (dataset, item, message) already recorded: a rerun over the
    same bad file adds nothing. Returns the rows that were new."""
    seen: set[tuple[str, str, str]] = set()
    for chunk in _chunks(sorted({r["item"] for r in rows})):
        seen.update(session.exec(select(IngestError.dataset, IngestError.item,
                                        IngestError.message)
                                 .where(IngestError.item.in_(chunk))).all())
    new = []
    for row in rows:
        key = (row["dataset"], row["item"], row["message"])
        if key not in seen:
            seen.add(key)
            new.append(row)
    insert_ingest_rows(IngestError, new, session=session)
    return new


def count_ingest_errors(*, session: Session, dataset: str | None = None) -> int:
    stmt = select(func.count()).select_from(IngestError)
    if dataset:
        stmt = stmt.where(IngestError.dataset == dataset)
    return session.exec(stmt).one()


# --- extraction -----------------------------------------------------------------------------

# Used by pipeline.extract: which reports still need the current extractor version, and the
# per-report write (findings, or an error row) in the caller's transaction.


def list_report_ids_to_extract(extractor: str, version: str, *, session: Session,
                               limit: int | None = None, force: bool = False) -> list[int]:
    """Ids of reports not yet done by (extractor, version), by id; every report if ``force``.

    "Done" is the ReportExtraction marker, so a report with no findings (a normal study) is not
    redone on every run, while a report whose extraction failed is retried.
    """
    stmt = select(Report.id).order_by(Report.id)
    if not force:
        done = (select(ReportExtraction.report_id)
                .where(ReportExtraction.extractor == extractor,
                       ReportExtraction.extractor_version == version))
        stmt = stmt.where(Report.id.not_in(done))
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.exec(stmt))


def get_report_texts(report_ids: list[int], *, session: Session) -> dict[int, str]:
    """Report.text by id (looked up in chunks)."""
    out: dict[int, str] = {}
    for chunk in _chunks(report_ids):
        for rid, text in session.exec(select(Report.id, Report.text).where(Report.id.in_(chunk))):
            out[rid] = text
    return out


def replace_proposed_findings(report_id: int, extractor: str, version: str, rows: list[dict], *,
                              session: Session) -> int:
    """Store one report's findings of (extractor, version) as ``proposed``.

    Earlier *proposed* findings of the same extractor version are replaced (a ``--force`` rerun);
    findings a reviewer has touched (any other status) are never deleted.
    """
    session.exec(sa_delete(Finding).where(
        Finding.report_id == report_id, Finding.extractor == extractor,
        Finding.extractor_version == version, Finding.status == FindingStatus.proposed))
    if rows:  # one multi-row INSERT: ORM objects cost ~5x more per finding
        now = utcnow()
        session.exec(sa_insert(Finding), params=[
            {**row, "report_id": report_id, "extractor": extractor, "extractor_version": version,
             "status": FindingStatus.proposed, "version": 1, "created_at": now, "updated_at": now}
            for row in rows])
    session.exec(sa_delete(ReportExtraction).where(
        ReportExtraction.report_id == report_id, ReportExtraction.extractor == extractor,
        ReportExtraction.extractor_version == version))
    session.add(ReportExtraction(report_id=report_id, extractor=extractor,
                                 extractor_version=version, n_findings=len(rows)))
    return len(rows)


def add_extraction_error(report_id: int, extractor: str, version: str, message: str, *,
                         session: Session) -> None:
    session.add(ExtractionError(report_id=report_id, extractor=extractor,
                                extractor_version=version, message=message))


def count_findings(*, session: Session, extractor: str | None = None) -> int:
    stmt = select(func.count()).select_from(Finding)
    if extractor is not None:
        stmt = stmt.where(Finding.extractor == extractor)
    return session.exec(stmt).one()


def count_extraction_errors(*, session: Session, extractor: str | None = None) -> int:
    stmt = select(func.count()).select_from(ExtractionError)
    if extractor is not None:
        stmt = stmt.where(ExtractionError.extractor == extractor)
    return session.exec(stmt).one()


# IKI knowledge sync (pipeline.knowledge): the entries, and what the sync itself last wrote to
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


def add_knowledge_event(entry: KnowledgeEntry, before: dict | None, action: str, *,
                        session: Session) -> None:
    """Append the audit event of a write to ``entry`` (reviewer None: a pipeline write)."""
    after = {"category": entry.category, "subclass": entry.subclass,
             "explanation": entry.explanation, "source": str(entry.source.value),
             "status": str(entry.status.value), "version": entry.version}
    session.add(ReviewEvent(entity="knowledge", entity_id=entry.id, action=action,
                            before_json=json.dumps(before) if before is not None else None,
                            after_json=json.dumps(after)))


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


# --- store health (the Data page) ----------------------------------------------------------


def count_rows(*, session: Session) -> dict[str, int]:
    """Row counts of the main tables, by table name."""
    tables = (Study, Image, Report, Finding, KnowledgeEntry, IngestError, ExtractionError, LLMCall)
    return {t.__tablename__: session.exec(select(func.count()).select_from(t)).one()
            for t in tables}


def extraction_coverage(*, session: Session) -> list[dict]:
    """Per extractor version: reports done, findings stored by presence, errors recorded."""
    done = session.exec(select(ReportExtraction.extractor, ReportExtraction.extractor_version,
                               func.count(), func.max(ReportExtraction.created_at))
                        .group_by(ReportExtraction.extractor, ReportExtraction.extractor_version))
    rows = {(e, v): {"extractor": e, "version": v, "reports": n, "last_run": at,
                     "present": 0, "uncertain": 0, "absent": 0, "errors": 0}
            for e, v, n, at in done}
    findings = session.exec(select(Finding.extractor, Finding.extractor_version, Finding.presence,
                                   func.count())
                            .group_by(Finding.extractor, Finding.extractor_version, Finding.presence))
    for e, v, presence, n in findings:
        if (e, v) in rows:
            rows[e, v][str(presence)] = n
    errors = session.exec(select(ExtractionError.extractor, ExtractionError.extractor_version,
                                 func.count())
                          .group_by(ExtractionError.extractor, ExtractionError.extractor_version))
    for e, v, n in errors:
        rows.setdefault((e, v), {"extractor": e, "version": v, "reports": 0, "last_run": None,
                                 "present": 0, "uncertain": 0, "absent": 0, "errors": 0})
        rows[e, v]["errors"] = n
    return sorted(rows.values(), key=lambda r: (r["extractor"], r["version"]))


def findings_by_category(*, session: Session) -> list[tuple[str, str, int]]:
    """(category, presence, count) over every stored finding."""
    stmt = (select(Finding.category, Finding.presence, func.count())
            .group_by(Finding.category, Finding.presence).order_by(Finding.category))
    return [(c, str(p), n) for c, p, n in session.exec(stmt)]


def list_extraction_errors(*, session: Session, limit: int = 200) -> list[ExtractionError]:
    stmt = select(ExtractionError).order_by(ExtractionError.id.desc()).limit(limit)
    return list(session.exec(stmt).all())


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


def locate_quote(text: str, quote: str) -> tuple[int, int] | None:
    """(start, end) of the first verbatim occurrence of ``quote`` (trimmed) in ``text``."""
    quote = quote.strip()
    start = text.find(quote) if quote else -1
    return None if start < 0 else (start, start + len(quote))


def finding_snapshot(f: Finding) -> dict:
    """The finding's reviewable fields as plain JSON values."""
    return {k: (str(v) if isinstance(v, str) else v)  # a StrEnum's str() is its value
            for k in FINDING_FIELDS for v in [getattr(f, k)]}


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


def _locked_update(model, entity_id: int, version: int, values: dict, *, session: Session) -> bool:
    """UPDATE ... WHERE id = :id AND version = :v; False when another write got there first."""
    result = session.exec(sa_update(model).where(model.id == entity_id, model.version == version)
                          .values(**values, version=version + 1, updated_at=utcnow()))
    return result.rowcount == 1


def _add_event(reviewer_id, entity, entity_id, action, before, after, *, session) -> None:
    session.add(ReviewEvent(reviewer_id=reviewer_id, entity=entity, entity_id=entity_id,
                            action=action, before_json=json.dumps(before) if before else None,
                            after_json=json.dumps(after) if after is not None else None))


def _check_evidence(report_id: int, fields: dict, *, session: Session) -> str | None:
    start, end, quote = (fields.get(k) for k in ("evidence_start", "evidence_end", "evidence_text"))
    text = session.get(Report, report_id).text
    if not quote or start is None or end is None or text[start:end] != quote:
        return "The evidence must be a verbatim quote of the report text."
    return None


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
    if action == "edit" and (error := _check_evidence(finding.report_id, decision,
                                                      session=session)):
        return ReviewResult(False, error, entity_id=finding_id)
    applies = (finding.reviewer_id in (None, reviewer.id)
               or ReviewerRole(reviewer.role) in OVERRIDING_ROLES)
    if applies:
        if not _locked_update(Finding, finding_id, version, _finding_values(decision),
                              session=session):
            return _conflict(finding_id, session=session)
        decision["version"] = version + 1
    _add_event(reviewer.id, "finding", finding_id, action, before,
               {**decision, "_applied": applies}, session=session)
    session.flush()
    message = (f"Finding {finding_id}: {DECISION_STATUS[action].value}." if applies else
               f"Finding {finding_id}: your decision was recorded as a second opinion; the first "
               "reviewer's stays until an adjudicator decides.")
    return ReviewResult(True, message, applies, finding_id)


def add_finding(report_id: int, fields: dict, *, reviewer: Reviewer,
                session: Session) -> ReviewResult:
    """A finding the extractor missed: status ``added``, extractor ``human``."""
    values = _finding_values({k: fields.get(k) for k in EDITABLE_FIELDS})
    if error := _check_evidence(report_id, values, session=session):
        return ReviewResult(False, error)
    finding = Finding(report_id=report_id, extractor="human", extractor_version="human",
                      status=FindingStatus.added, reviewer_id=reviewer.id, **values)
    session.add(finding)
    session.flush()
    _add_event(reviewer.id, "finding", finding.id, "add", None,
               {**finding_snapshot(finding), "_applied": True}, session=session)
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
        if not _locked_update(Finding, finding.id, finding.version, _finding_values(before),
                              session=session):
            return _conflict(finding.id, session=session)
        restored = {**before, "version": finding.version + 1, **meta}
    else:
        restored = {**current, **meta}
    _add_event(reviewer.id, "finding", target.entity_id, "undo", current, restored,
               session=session)
    session.flush()
    return ReviewResult(True, f"Undid your {target.action} of finding {target.entity_id}.",
                        after["_applied"], target.entity_id)


# Knowledge (IKI) review: a reviewer's write sets reviewer_id, which pipeline.knowledge's sync
# reads as "reviewed": it never overwrites such an entry.


SUBCLASS_KINDS = ("severity", "region", "type")  # as iki.yaml keys them: "severity:severe"


def list_knowledge(*, session: Session, category: str | None = None) -> list[KnowledgeEntry]:
    stmt = select(KnowledgeEntry).order_by(KnowledgeEntry.category, KnowledgeEntry.subclass)
    if category:
        stmt = stmt.where(KnowledgeEntry.category == category)
    return list(session.exec(stmt.execution_options(populate_existing=True)))


def _knowledge_snapshot(e: KnowledgeEntry) -> dict:
    return {"category": e.category, "subclass": e.subclass, "explanation": e.explanation,
            "source": KnowledgeSource(e.source).value, "status": KnowledgeStatus(e.status).value,
            "reviewer_id": e.reviewer_id, "version": e.version}


def update_knowledge(entry_id: int, *, version: int, explanation: str, status: KnowledgeStatus,
                     reviewer: Reviewer, session: Session) -> ReviewResult:
    """Edit and/or approve an IKI entry as seen at ``version`` (action edit or approve)."""
    entry = session.get(KnowledgeEntry, entry_id, populate_existing=True)
    explanation = " ".join(explanation.split())
    if entry is None or not explanation:
        return ReviewResult(False, "An explanation cannot be empty." if entry else
                            f"IKI entry {entry_id} no longer exists.")
    before = _knowledge_snapshot(entry)
    action = "edit" if explanation != entry.explanation else "approve"
    values = {"explanation": explanation, "status": KnowledgeStatus(status),
              "reviewer_id": reviewer.id}
    if entry.version != version or not _locked_update(KnowledgeEntry, entry_id, version, values,
                                                      session=session):
        who = session.get(Reviewer, entry.reviewer_id) if entry.reviewer_id else None
        return ReviewResult(False, f"IKI entry {entry_id} was changed by "
                            f"{who.name if who else 'the sync'} at {entry.updated_at:%Y-%m-%d %H:%M:%S}"
                            " since you opened it; nothing was saved.", entity_id=entry_id)
    _add_event(reviewer.id, "knowledge", entry_id, action, before,
               {**before, **values, "status": KnowledgeStatus(status).value,
                "version": version + 1}, session=session)
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
    if session.exec(select(KnowledgeEntry.id).where(KnowledgeEntry.category == category,
                                                    KnowledgeEntry.subclass == subclass)).first():
        return ReviewResult(False, f"{category} already has an entry for {subclass}.")
    entry = KnowledgeEntry(category=category, subclass=subclass, explanation=explanation,
                           source=KnowledgeSource.written, status=KnowledgeStatus.draft,
                           reviewer_id=reviewer.id)
    session.add(entry)
    session.flush()
    _add_event(reviewer.id, "knowledge", entry.id, "add", None, _knowledge_snapshot(entry),
               session=session)
    return ReviewResult(True, f"Added {category} {subclass} (draft).", True, entry.id)


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


# --- llm cache ------------------------------------------------------------------------------
# Response cache and usage ledger of pipeline.llm, keyed by LLMCall.cache_key.


def get_llm_responses(cache_keys: list[str], *, session: Session) -> dict[str, LLMCall]:
    """Cached calls by key, for the keys that have one (looked up 500 at a time)."""
    found: dict[str, LLMCall] = {}
    for i in range(0, len(cache_keys), 500):
        chunk = cache_keys[i:i + 500]
        for row in session.exec(select(LLMCall).where(LLMCall.cache_key.in_(chunk))):
            found[row.cache_key] = row
    return found


def add_llm_call(call: LLMCall, *, session: Session) -> bool:
    """Store one call; False (and nothing changed) when its cache key is already stored."""
    try:
        with session.begin_nested():
            session.add(call)
    except IntegrityError:
        return False
    return True


def count_llm_calls(*, session: Session) -> int:
    return session.exec(select(func.count()).select_from(LLMCall)).one()
