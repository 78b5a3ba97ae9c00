"""Every query of the store. Pages and pipeline stages call these; nobody else builds SQL.

Functions take ``session`` keyword-only (full-stack-fastapi-template's ``crud.py`` style).
Sections: studies & images (browse), ingest, extraction, review. Keep each section together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import delete as sa_delete
from sqlalchemy import insert as sa_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from db.models import (
    ExtractionError,
    Finding,
    FindingStatus,
    Image,
    IngestError,
    KnowledgeEntry,
    LLMCall,
    Report,
    ReportExtraction,
    ReviewEvent,
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
