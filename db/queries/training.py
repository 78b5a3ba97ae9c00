"""Training queries: the settled labels of a split, the image each study trains on, approved
IKI text, and the TrainingRun rows of ``pipeline.train``."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlmodel import Session, func, select

from db.models import (
    Finding,
    FindingStatus,
    Image,
    KnowledgeEntry,
    KnowledgeStatus,
    Report,
    ReportExtraction,
    Study,
    TrainingRun,
    utcnow,
)
from db.queries._common import chunks

__all__ = ["LabelRow", "StudyImage", "FRONTAL_VIEWS", "list_label_rows",
           "list_extracted_studies_without_findings", "list_study_images", "list_split_studies",
           "approved_explanations", "count_findings_by_status", "get_training_run_by_name",
           "start_training_run", "finish_training_run", "set_training_run_status",
           "REVIEWED_STATUSES"]

FRONTAL_VIEWS = ("PA", "AP")  # what the IKI texts describe; a study trains on its first frontal
# The settled, reviewed labels training reads by default (rejected ones never train)
REVIEWED_STATUSES = (FindingStatus.accepted.value, FindingStatus.edited.value,
                     FindingStatus.added.value)


@dataclass(frozen=True)
class LabelRow:
    """One finding of a study, as training reads it."""

    study_id: int
    category: str
    presence: str
    severity: str | None
    side: str | None
    region: str | None
    status: str


@dataclass(frozen=True)
class StudyImage:
    """The one image a study trains and embeds with."""

    study_id: int
    image_id: int
    path: str  # training pixel file, relative to the data dir
    pixel_sha256: str
    window_center: float | None
    window_width: float | None


def list_label_rows(*, session: Session, splits: tuple[str, ...]) -> list[LabelRow]:
    """Every finding of every study in ``splits``, any status (callers choose), by study id."""
    stmt = (select(Report.study_id, Finding.category, Finding.presence, Finding.severity,
                   Finding.side, Finding.region, Finding.status)
            .join(Report, Report.id == Finding.report_id)
            .join(Study, Study.id == Report.study_id)
            .where(Study.split.in_(splits))
            .order_by(Report.study_id, Finding.id))
    return [LabelRow(sid, cat, str(pres), sev and str(sev), side and str(side), region, str(st))
            for sid, cat, pres, sev, side, region, st in session.exec(stmt)]


def list_extracted_studies_without_findings(*, session: Session,
                                            splits: tuple[str, ...]) -> list[int]:
    """Studies of ``splits`` whose reports an extractor read and found nothing in (normal
    reports): unreviewed "no finding" labels."""
    has_finding = select(Finding.id).join(Report, Report.id == Finding.report_id).where(
        Report.study_id == Study.id).exists()
    stmt = (select(Study.id).join(Report, Report.study_id == Study.id)
            .join(ReportExtraction, ReportExtraction.report_id == Report.id)
            .where(Study.split.in_(splits), ~has_finding).distinct().order_by(Study.id))
    return list(session.exec(stmt))


def list_split_studies(*, session: Session, split: str) -> list[int]:
    """Ids of the studies of one split, in id order."""
    return list(session.exec(select(Study.id).where(Study.split == split).order_by(Study.id)))


def list_study_images(*, session: Session, study_ids: list[int]) -> dict[int, StudyImage]:
    """Each study's first frontal image (PA/AP), else its first image; studies without one are
    absent from the result."""
    chosen: dict[int, tuple[int, Image]] = {}
    for part in chunks(sorted(set(study_ids))):
        for img in session.exec(select(Image).where(Image.study_id.in_(part)).order_by(Image.id)):
            rank = 0 if (img.view or "").upper() in FRONTAL_VIEWS else 1
            if img.study_id not in chosen or rank < chosen[img.study_id][0]:
                chosen[img.study_id] = (rank, img)
    return {sid: StudyImage(sid, img.id, img.path, img.pixel_sha256, img.window_center,
                            img.window_width) for sid, (_, img) in chosen.items()}


def approved_explanations(*, session: Session) -> dict[tuple[str, str], str]:
    """(category, subclass) -> explanation of every APPROVED IKI entry (subclass "" for the
    category itself)."""
    stmt = select(KnowledgeEntry).where(KnowledgeEntry.status == KnowledgeStatus.approved)
    return {(e.category, e.subclass): e.explanation for e in session.exec(stmt)}


def count_findings_by_status(*, session: Session, splits: tuple[str, ...]) -> dict[str, int]:
    """status -> findings of the studies in ``splits`` with that status."""
    stmt = (select(Finding.status, func.count()).join(Report, Report.id == Finding.report_id)
            .join(Study, Study.id == Report.study_id).where(Study.split.in_(splits))
            .group_by(Finding.status))
    return {str(status): n for status, n in session.exec(stmt)}


def get_training_run_by_name(name: str, *, session: Session) -> TrainingRun | None:
    return session.exec(select(TrainingRun).where(TrainingRun.name == name)).first()


def start_training_run(name: str, *, config: dict, snapshot_sha256: str,
                       session: Session) -> int:
    """Create the run's row (status running), or mark an existing one running again (resume)."""
    run = get_training_run_by_name(name, session=session)
    if run is None:
        run = TrainingRun(name=name, config_json=json.dumps(config, sort_keys=True),
                          snapshot_sha256=snapshot_sha256)
    run.status, run.finished_at = "running", None
    session.add(run)
    session.flush()
    return run.id


def finish_training_run(run_id: int, *, checkpoint_path: str, metrics: dict,
                        session: Session) -> None:
    """Record the final checkpoint and metrics, keeping metrics other stages added (evaluation)."""
    run = session.get(TrainingRun, run_id)
    merged = {**json.loads(run.metrics_json or "{}"), **metrics}
    run.checkpoint_path, run.metrics_json = checkpoint_path, json.dumps(merged, sort_keys=True)
    run.status, run.finished_at = "finished", utcnow()
    session.add(run)


def set_training_run_status(run_id: int, status: str, *, session: Session) -> None:
    run = session.get(TrainingRun, run_id)
    run.status = status
    session.add(run)

