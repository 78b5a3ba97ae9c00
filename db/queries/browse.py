"""Browsing queries: the studies list, one study, and the store's health (Data page)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, func, select

from db.models import (
    ExtractionError,
    Finding,
    Image,
    IngestError,
    KnowledgeEntry,
    LLMCall,
    Report,
    ReportExtraction,
    Study,
)

__all__ = [
    "count_rows",
    "count_studies",
    "extraction_coverage",
    "findings_by_category",
    "get_study",
    "list_datasets",
    "list_extraction_errors",
    "list_ingest_errors",
    "list_splits",
    "list_studies",
    "StudyDetail",
    "StudyRow",
]

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


def list_ingest_errors(*, session: Session, dataset: str | None = None, limit: int = 200,
                       include_resolved: bool = False) -> list[IngestError]:
    """The latest ingest errors, newest first; open ones only unless ``include_resolved``."""
    stmt = select(IngestError).order_by(IngestError.id.desc()).limit(limit)
    if not include_resolved:
        stmt = stmt.where(IngestError.resolved_at.is_(None))
    if dataset:
        stmt = stmt.where(IngestError.dataset == dataset)
    return list(session.exec(stmt).all())



# --- store health (the Data page) ----------------------------------------------------------


def count_rows(*, session: Session) -> dict[str, int]:
    """Row counts of the main tables, by table name; "ingesterror" counts open errors only."""
    tables = (Study, Image, Report, Finding, KnowledgeEntry, IngestError, ExtractionError, LLMCall)
    counts = {t.__tablename__: session.exec(select(func.count()).select_from(t)).one()
              for t in tables}
    counts["ingesterror"] = session.exec(select(func.count()).select_from(IngestError)
                                         .where(IngestError.resolved_at.is_(None))).one()
    return counts


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
