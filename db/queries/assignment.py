"""Assignments: which reviewer reviews which report, each reviewer's queue, and progress.

``pipeline.assign`` plans who gets what; these functions read the current state and write the
plan (admins only). A report with two assignments is a blind double review.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert
from sqlmodel import Session, func, select

from db.models import (
    Assignment,
    Finding,
    Report,
    Reviewer,
    ReviewEvent,
    Settlement,
    Study,
    utcnow,
)
from db.queries._common import add_event as _add_event
from db.queries._common import chunks
from db.queries.auth import Actor, Permission, authorize

__all__ = ["AssignedRow", "Progress", "add_assignments", "answers_per_day", "assignable_reports",
           "category_progress",
           "count_my_assignments", "list_my_assignments",
           "list_unassigned_reports", "neighbour_assignment", "progress_by_reviewer",
           "review_progress", "reviewer_loads"]


def assignable_reports(*, session: Session, dataset: str | None = None,
                       split: str | None = None) -> dict[int, list[int]]:
    """report id -> its assigned reviewer ids, for every report of the matching studies."""
    stmt = select(Report.id).join(Study, Study.id == Report.study_id)
    if dataset:
        stmt = stmt.where(Study.dataset == dataset)
    if split:
        stmt = stmt.where(Study.split == split)
    out: dict[int, list[int]] = {rid: [] for rid in session.exec(stmt.order_by(Report.id))}
    for report_id, reviewer_id in session.exec(select(Assignment.report_id, Assignment.reviewer_id)
                                               .order_by(Assignment.id)):
        if report_id in out:
            out[report_id].append(reviewer_id)
    return out


def reviewer_loads(*, session: Session) -> dict[int, int]:
    """reviewer id -> assignments held (done or not)."""
    return dict(session.exec(select(Assignment.reviewer_id, func.count())
                             .group_by(Assignment.reviewer_id)).all())


def add_assignments(pairs: list[tuple[int, int]], *, actor: Actor, session: Session,
                    summary: dict) -> int:
    """Insert (report id, reviewer id) assignments (admins / the operator only); one audit event
    with ``summary`` records the run."""
    authorize(actor, Permission.assign, session=session)
    now = utcnow()
    for part in chunks(pairs, 2000):
        session.exec(insert(Assignment), params=[
            {"report_id": rep, "reviewer_id": rev, "created_at": now} for rep, rev in part])
    _add_event(actor.id, "assignment", 0, "assign", None, {**summary, "n": len(pairs)},
               session=session)
    session.flush()
    return len(pairs)


# --- a reviewer's queue ----------------------------------------------------------------------


@dataclass(frozen=True)
class AssignedRow:
    report_id: int
    study_id: int
    dataset: str
    split: str | None
    done: bool


def _mine(reviewer_id: int, done: bool | None):
    stmt = (select(Assignment.report_id, Report.study_id, Study.dataset, Study.split,
                   Assignment.completed_at)
            .join(Report, Report.id == Assignment.report_id)
            .join(Study, Study.id == Report.study_id)
            .where(Assignment.reviewer_id == reviewer_id))
    if done is not None:
        stmt = stmt.where(Assignment.completed_at.is_not(None) if done
                          else Assignment.completed_at.is_(None))
    return stmt


def count_my_assignments(reviewer_id: int, *, session: Session, done: bool | None = None) -> int:
    sub = _mine(reviewer_id, done).subquery()
    return session.exec(select(func.count()).select_from(sub)).one()


def list_my_assignments(reviewer_id: int, *, session: Session, done: bool | None = None,
                        offset: int = 0, limit: int = 20) -> list[AssignedRow]:
    rows = session.exec(_mine(reviewer_id, done).order_by(Assignment.report_id)
                        .offset(offset).limit(limit))
    return [AssignedRow(r, s, d, sp, at is not None) for r, s, d, sp, at in rows]


def neighbour_assignment(reviewer_id: int, report_id: int, *, session: Session,
                         forward: bool = True, todo_only: bool = True) -> int | None:
    """The reviewer's next (or previous) assigned report by id, wrapping around."""
    stmt = select(func.min(Assignment.report_id) if forward else func.max(Assignment.report_id)
                  ).where(Assignment.reviewer_id == reviewer_id)
    if todo_only:
        stmt = stmt.where(Assignment.completed_at.is_(None))
    beyond = Assignment.report_id > report_id if forward else Assignment.report_id < report_id
    found = session.exec(stmt.where(beyond)).one() or session.exec(stmt).one()
    return found if found != report_id else None


def _has_findings_unassigned():
    return (select(Report.id, Report.study_id, Study.dataset, Study.split)
            .join(Study, Study.id == Report.study_id)
            .where(Report.id.in_(select(Finding.report_id)),
                   Report.id.not_in(select(Assignment.report_id))))


def list_unassigned_reports(*, session: Session, offset: int = 0,
                            limit: int = 20) -> list[AssignedRow]:
    """Reports with proposals that nobody is assigned to (the first answer claims one)."""
    rows = session.exec(_has_findings_unassigned().order_by(Report.id).offset(offset)
                        .limit(limit))
    return [AssignedRow(r, s, d, sp, False) for r, s, d, sp in rows]


# --- progress --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    name: str
    done: int
    assigned: int


def progress_by_reviewer(*, session: Session) -> list[Progress]:
    """Per reviewer: assignments finished and held (reviewers with none are left out)."""
    stmt = (select(Reviewer.name, func.count(Assignment.completed_at), func.count(Assignment.id))
            .join(Assignment, Assignment.reviewer_id == Reviewer.id)
            .group_by(Reviewer.name).order_by(Reviewer.name))
    return [Progress(*row) for row in session.exec(stmt)]


def review_progress(reviewer_id: int | None, *, session: Session) -> tuple[Progress, Progress]:
    """(mine, team): done / assigned for one reviewer and for everyone."""
    def count(stmt):
        return session.exec(stmt).one()

    done, held = func.count(Assignment.completed_at), func.count(Assignment.id)
    team = Progress("team", *count(select(done, held)))
    mine = Progress("me", *count(select(done, held).where(Assignment.reviewer_id == reviewer_id)))
    return mine, team


def category_progress(*, session: Session) -> list[tuple[str, int, int]]:
    """(category, proposals, proposals on settled reports): reviewed / total per category."""
    settled = select(Settlement.report_id).where(Settlement.state == "settled")
    total = dict(session.exec(select(Finding.category, func.count())
                              .group_by(Finding.category)).all())
    done = dict(session.exec(select(Finding.category, func.count())
                             .where(Finding.report_id.in_(settled))
                             .group_by(Finding.category)).all())
    return [(c, n, done.get(c, 0)) for c, n in sorted(total.items())]


def answers_per_day(*, session: Session) -> list[tuple[str, str, int]]:
    """(day, reviewer name, answer writes) from the audit log: review throughput."""
    day = func.date(ReviewEvent.at)
    stmt = (select(day, Reviewer.name, func.count())
            .join(Reviewer, Reviewer.id == ReviewEvent.reviewer_id)
            .where(ReviewEvent.entity == "answer", ReviewEvent.action != "undo")
            .group_by(day, Reviewer.name).order_by(day))
    return [(str(d), name, n) for d, name, n in session.exec(stmt)]
