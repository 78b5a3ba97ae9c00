"""Evaluation queries: a split's labelled studies and their findings, training runs, and the
evaluation results stored on a run (``python -m pipeline.evaluate``, the Runs page)."""

from __future__ import annotations

import json

from sqlmodel import Session, func, select

from db.models import (
    Assignment,
    Finding,
    FindingStatus,
    Image,
    Report,
    ReportExtraction,
    Study,
    TrainingRun,
)
from db.queries._common import chunks as _chunks
from db.queries.training import REVIEWED_STATUSES, LabelRow, get_training_run_by_name

__all__ = [
    "label_statuses", "list_labelled_studies", "list_split_findings", "count_positive_findings",
    "studies_with_images", "list_training_runs", "get_training_run", "set_run_evaluation",
]

# --- labels of a split ----------------------------------------------------------------------


def label_statuses(include_proposed: bool) -> tuple[str, ...]:
    """The statuses whose findings are labels, the training's rule (``REVIEWED_STATUSES``:
    accepted, edited, added); rejected findings never count, proposed ones on request."""
    return REVIEWED_STATUSES + ((FindingStatus.proposed.value,) if include_proposed else ())


def _labelled_reports(include_proposed: bool):
    """Report ids whose findings are a label, absences included (a report with no finding is a
    normal study, not an unknown one).

    With proposed findings: every report the extractor has done (or that holds any finding).
    Curated only: every fully reviewed report, i.e. one with no proposed finding left and at
    least one decision on it (accepted, edited, rejected, added), or one whose assignment a
    reviewer completed (a normal report has nothing to decide)."""
    if include_proposed:
        return select(ReportExtraction.report_id).union(select(Finding.report_id))
    open_ = select(Finding.report_id).where(Finding.status == FindingStatus.proposed)
    decided = (select(Finding.report_id).where(Finding.status != FindingStatus.proposed)
               .where(Finding.report_id.not_in(open_)))
    completed = select(Assignment.report_id).where(Assignment.completed_at.is_not(None))
    return decided.union(completed.where(Assignment.report_id.not_in(open_)))


def list_labelled_studies(split: str, *, session: Session, include_proposed: bool = False
                          ) -> list[int]:
    """Ids of the split's studies that have an image and a labelled report, ordered by id."""
    labelled = _labelled_reports(include_proposed).subquery()
    stmt = (select(Study.id).where(Study.split == split)
            .where(Study.id.in_(select(Report.study_id).where(Report.id.in_(select(labelled)))))
            .where(Study.id.in_(select(Image.study_id))).order_by(Study.id))
    return list(session.exec(stmt).all())


def list_split_findings(study_ids: list[int], *, session: Session, include_proposed: bool = False
                        ) -> list[LabelRow]:
    """The label findings of these studies' labelled reports, by study and finding id."""
    labelled = _labelled_reports(include_proposed).subquery()
    out: list[LabelRow] = []
    for chunk in _chunks(list(study_ids)):
        stmt = (select(Report.study_id, Finding.category, Finding.presence, Finding.severity,
                       Finding.side, Finding.region, Finding.status)
                .join(Report, Report.id == Finding.report_id)
                .where(Report.study_id.in_(chunk), Finding.report_id.in_(select(labelled)),
                       Finding.status.in_(label_statuses(include_proposed)))
                .order_by(Report.study_id, Finding.id))
        out += [LabelRow(sid, cat, str(p), s and str(s), side and str(side), region, str(st))
                for sid, cat, p, s, side, region, st in session.exec(stmt)]
    return out


def count_positive_findings(split: str, *, session: Session, include_proposed: bool = False
                            ) -> dict[str, int]:
    """category -> present findings that count as labels in ``split`` (what a model trained on
    that split has seen as a positive)."""
    stmt = (select(Finding.category, func.count()).join(Report, Report.id == Finding.report_id)
            .join(Study, Study.id == Report.study_id)
            .where(Study.split == split, Finding.presence == "present",
                   Finding.status.in_(label_statuses(include_proposed)))
            .group_by(Finding.category))
    return dict(session.exec(stmt).all())


def studies_with_images(study_ids: list[int], *, session: Session) -> set[int]:
    out: set[int] = set()
    for chunk in _chunks(list(study_ids)):
        out.update(session.exec(select(Image.study_id).where(Image.study_id.in_(chunk))
                                .distinct()).all())
    return out


# --- training runs --------------------------------------------------------------------------


def list_training_runs(*, session: Session) -> list[TrainingRun]:
    """Every run, newest first."""
    return list(session.exec(select(TrainingRun).order_by(TrainingRun.started_at.desc(),
                                                          TrainingRun.id.desc())).all())


def get_training_run(*, session: Session, run_id: int | None = None, name: str | None = None
                     ) -> TrainingRun | None:
    """The run with this id, else the one with this name; None when there is none."""
    if run_id is not None:
        return session.get(TrainingRun, run_id)
    if name is not None:
        return get_training_run_by_name(name, session=session)
    return None


def set_run_evaluation(run_id: int, evaluation: dict, *, session: Session) -> TrainingRun:
    """Store ``evaluation`` under the "evaluation" key of the run's metrics JSON, keeping the
    training's own figures (final_loss, steps...) beside it."""
    run = session.get(TrainingRun, run_id)
    if run is None:
        raise LookupError(f"no training run with id {run_id}")
    metrics = json.loads(run.metrics_json) if run.metrics_json else {}
    metrics["evaluation"] = evaluation
    run.metrics_json = json.dumps(metrics)
    session.add(run)
    session.flush()
    return run
