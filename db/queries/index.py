"""Index queries: the EmbeddingIndex rows of ``python -m pipeline.index``, the studies it
embeds, and the per-study cards the Similarity, Error-analysis and SSM pages show."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlmodel import Session, select

from db.models import EmbeddingIndex, Finding, FindingStatus, Image, Report, Study, utcnow
from db.queries._common import chunks
from db.queries.training import FRONTAL_VIEWS

__all__ = ["CardFinding", "StudyCard", "record_embedding_index", "list_embedding_indexes",
           "list_image_study_ids", "list_study_cards", "list_reviewer_study_ids"]


def record_embedding_index(*, session: Session, training_run_id: int | None, kind: str,
                           path: str, dim: int, count: int, spec: dict,
                           checkpoint_sha256: str, snapshot_sha256: str,
                           rebuilt: bool) -> EmbeddingIndex:
    """The row of one index folder and kind, created or brought up to date. ``rebuilt``: the
    vectors were all embedded anew (created_at moves); otherwise an incremental add
    (updated_at moves)."""
    row = session.exec(select(EmbeddingIndex).where(EmbeddingIndex.path == path,
                                                    EmbeddingIndex.kind == kind)).first()
    if row is None:
        row = EmbeddingIndex(training_run_id=training_run_id, kind=kind, path=path, dim=dim,
                             count=count)
    elif rebuilt:
        row.created_at, row.updated_at = utcnow(), None
    else:
        row.updated_at = utcnow()
    row.training_run_id, row.dim, row.count = training_run_id, dim, count
    row.spec_json = json.dumps(spec, sort_keys=True)
    row.checkpoint_sha256, row.snapshot_sha256 = checkpoint_sha256, snapshot_sha256
    session.add(row)
    session.flush()
    return row


def list_embedding_indexes(*, session: Session, training_run_id: int | None = None
                           ) -> list[EmbeddingIndex]:
    """Index rows, newest first; only one run's with ``training_run_id``."""
    stmt = select(EmbeddingIndex)
    if training_run_id is not None:
        stmt = stmt.where(EmbeddingIndex.training_run_id == training_run_id)
    return list(session.exec(stmt.order_by(EmbeddingIndex.created_at.desc(),
                                           EmbeddingIndex.id.desc())))


def list_image_study_ids(*, session: Session) -> list[int]:
    """Every study with at least one image, by id: what an image index holds."""
    return list(session.exec(select(Image.study_id).distinct().order_by(Image.study_id)))


@dataclass(frozen=True)
class CardFinding:
    category: str
    presence: str
    severity: str | None
    side: str | None
    region: str | None
    status: str


@dataclass(frozen=True)
class StudyCard:
    """What a result row shows of a study: split, thumbnail, report and findings."""

    study_id: int
    dataset: str
    split: str | None
    thumb_path: str | None  # its first frontal image's thumbnail, else its first image's
    report_id: int | None  # the first report (the review page opens it)
    findings: tuple[CardFinding, ...]  # every finding of its reports, rejected ones included

    @property
    def n_proposed(self) -> int:
        return sum(f.status == FindingStatus.proposed for f in self.findings)

    @property
    def n_decided(self) -> int:
        return len(self.findings) - self.n_proposed


def _thumbs(ids: list[int], session: Session) -> dict[int, str | None]:
    chosen: dict[int, tuple[int, str | None]] = {}
    for img in session.exec(select(Image).where(Image.study_id.in_(ids)).order_by(Image.id)):
        rank = 0 if (img.view or "").upper() in FRONTAL_VIEWS else 1
        if img.study_id not in chosen or rank < chosen[img.study_id][0]:
            chosen[img.study_id] = (rank, img.thumb_path or img.display_path or img.path)
    return {sid: path for sid, (_, path) in chosen.items()}


def list_study_cards(study_ids: list[int], *, session: Session) -> dict[int, StudyCard]:
    """Cards of the given studies (unknown ids are absent), each with its findings."""
    out: dict[int, StudyCard] = {}
    for part in chunks(sorted(set(study_ids))):
        thumbs = _thumbs(part, session)
        reports: dict[int, int] = {}
        for sid, rid in session.exec(select(Report.study_id, Report.id)
                                     .where(Report.study_id.in_(part)).order_by(Report.id)):
            reports.setdefault(sid, rid)
        found: dict[int, list[CardFinding]] = {}
        stmt = (select(Report.study_id, Finding).join(Report, Report.id == Finding.report_id)
                .where(Report.study_id.in_(part)).order_by(Finding.id))
        for sid, f in session.exec(stmt):
            found.setdefault(sid, []).append(CardFinding(
                f.category, str(f.presence), f.severity and str(f.severity),
                f.side and str(f.side), f.region, str(f.status)))
        for study in session.exec(select(Study).where(Study.id.in_(part))):
            out[study.id] = StudyCard(study.id, study.dataset, study.split,
                                      thumbs.get(study.id), reports.get(study.id),
                                      tuple(found.get(study.id, ())))
    return out


def list_reviewer_study_ids(reviewer_id: int, *, session: Session) -> list[int]:
    """Studies with a finding this reviewer decided (the finding's current decider)."""
    stmt = (select(Report.study_id).join(Finding, Finding.report_id == Report.id)
            .where(Finding.reviewer_id == reviewer_id).distinct().order_by(Report.study_id))
    return list(session.exec(stmt))
