"""Each reviewer's own answers on a report's findings (blind double review).

A reviewer sees the extractor's proposals and their own answers, never another reviewer's
(nor that one exists). Every write is optimistic-locked on the answer row's ``version`` (0: no
answer yet) and appends one ReviewEvent (entity "answer") whose ``after`` is the row written.
After each write the reviewer's assignment is marked done once every proposal has an answer,
and the report's settlement is recomputed (``db.queries.settle``).

Who may answer a report: a signed-in account assigned to it; a report nobody is assigned to is
claimed (a single-review assignment) by its first answer. An adjudicated report is final.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from db.models import (
    Assignment,
    Finding,
    FindingStatus,
    Image,
    Report,
    ReviewAnswer,
    ReviewEvent,
    Settlement,
    Study,
    utcnow,
)
from db.queries._common import add_event as _add_event
from db.queries._common import locked_update as _locked_update
from db.queries._common import resolve_evidence
from db.queries.auth import Actor, Permission, PermissionDenied, authorize
from db.queries.review import ReviewResult
from db.queries.settle import (
    ANSWER_FIELDS,
    answer_snapshot,
    answer_values,
    proposal_fields,
    resettle,
)

__all__ = ["AnswerItem", "MyReview", "accept_remaining", "add_answer", "answer_finding",
           "get_my_review", "mark_report_done", "undo_last_answer"]

DECISION_STATUS = {"accept": FindingStatus.accepted, "edit": FindingStatus.edited,
                   "reject": FindingStatus.rejected}


# --- reading one's own review ----------------------------------------------------------------


@dataclass(frozen=True)
class AnswerItem:
    """One row of a reviewer's review: a proposal with their answer (or none yet), or an
    answer of theirs without a proposal (a finding they added)."""

    finding: Finding | None
    answer: ReviewAnswer | None

    @property
    def shown(self):
        """What the reviewer sees as the finding: their answer, else the proposal."""
        return self.answer if self.answer is not None else self.finding

    @property
    def version(self) -> int:
        return self.answer.version if self.answer is not None else 0

    @property
    def status(self) -> str:
        return str(self.answer.status) if self.answer is not None else "proposed"


@dataclass(frozen=True)
class MyReview:
    report: Report
    study: Study
    images: list[Image]
    items: list[AnswerItem]
    assigned: bool  # the reviewer holds an assignment for this report
    open_to_claim: bool  # nobody is assigned: the first answer claims it
    final: bool  # adjudicated: nobody's answers change any more

    @property
    def n_decided(self) -> int:
        return sum(1 for i in self.items if i.finding is not None and i.answer is not None)

    @property
    def n_proposed(self) -> int:
        return sum(1 for i in self.items if i.finding is not None)


def get_my_review(report_id: int, *, actor: Actor, session: Session) -> MyReview | None:
    """The report as ``actor`` reviews it: proposals and only ``actor``'s own answers."""
    report = session.get(Report, report_id, populate_existing=True)
    if report is None:
        return None
    images = list(session.exec(select(Image).where(Image.study_id == report.study_id)
                               .order_by(Image.id)))
    findings = list(session.exec(select(Finding).where(Finding.report_id == report_id)
                                 .order_by(Finding.id)))
    answers = list(session.exec(select(ReviewAnswer).where(
        ReviewAnswer.report_id == report_id, ReviewAnswer.reviewer_id == actor.id)
        .order_by(ReviewAnswer.id).execution_options(populate_existing=True)))
    by_finding = {a.finding_id: a for a in answers if a.finding_id is not None}
    items = [AnswerItem(f, by_finding.get(f.id)) for f in findings]
    items += [AnswerItem(None, a) for a in answers if a.finding_id is None]
    assignees = set(session.exec(select(Assignment.reviewer_id)
                                 .where(Assignment.report_id == report_id)))
    final = session.exec(select(Settlement.id).where(Settlement.report_id == report_id,
                                                     Settlement.how == "adjudicated")).first()
    return MyReview(report, session.get(Study, report.study_id), images, items,
                    actor.id in assignees, not assignees, final is not None)


# --- writes ----------------------------------------------------------------------------------


def _may_answer(report_id: int, actor: Actor, *, session: Session) -> str | None:
    """Why ``actor`` may not answer this report (None: they may; a claim is made here)."""
    if session.exec(select(Settlement.id).where(Settlement.report_id == report_id,
                                                Settlement.how == "adjudicated")).first():
        return "This report was adjudicated: its label is final and answers no longer change."
    assignees = set(session.exec(select(Assignment.reviewer_id)
                                 .where(Assignment.report_id == report_id)))
    if actor.id in assignees:
        return None
    if assignees:
        return "This report is assigned to other reviewers; nothing was saved."
    session.add(Assignment(reviewer_id=actor.id, report_id=report_id))
    _add_event(actor.id, "assignment", report_id, "claim", None,
               {"report_id": report_id, "reviewer_id": actor.id}, session=session)
    session.flush()
    return None


def _after_write(report_id: int, actor: Actor, *, session: Session) -> None:
    """Mark the actor's assignment done (or not) and recompute the report's settlement."""
    n_proposed = session.exec(select(func.count()).select_from(Finding)
                              .where(Finding.report_id == report_id)).one()
    n_answered = session.exec(select(func.count()).select_from(ReviewAnswer).where(
        ReviewAnswer.report_id == report_id, ReviewAnswer.reviewer_id == actor.id,
        ReviewAnswer.finding_id.is_not(None))).one()
    assignment = session.exec(select(Assignment).where(Assignment.report_id == report_id,
                                                       Assignment.reviewer_id == actor.id)).one()
    # a report without proposals is done only by mark_report_done, and stays so
    done = n_answered == n_proposed and (n_proposed > 0 or assignment.completed_at is not None)
    if done != (assignment.completed_at is not None):
        assignment.completed_at = utcnow() if done else None
        session.add(assignment)
    session.flush()
    resettle(report_id, actor_id=actor.id, session=session)


def _conflict(what: str) -> ReviewResult:
    return ReviewResult(False, f"Your answer on {what} was changed in another window since this "
                               "page showed it; nothing was saved. The page now shows it as "
                               "stored.")


def _guard(report_id: int, actor: Actor, *, session: Session) -> ReviewResult | None:
    try:
        authorize(actor, Permission.review, session=session)
    except PermissionDenied as err:
        return ReviewResult(False, str(err))
    if reason := _may_answer(report_id, actor, session=session):
        return ReviewResult(False, reason)
    return None


def answer_finding(finding_id: int, action: str, *, seen_version: int, actor: Actor,
                   session: Session, changes: dict | None = None) -> ReviewResult:
    """accept / edit / reject a proposal, as ``actor``'s answer seen at ``seen_version``.

    An edit whose fields equal the proposal is stored as an accept.
    """
    finding = session.get(Finding, finding_id)
    if finding is None:
        return ReviewResult(False, f"Finding {finding_id} no longer exists.")
    if refused := _guard(finding.report_id, actor, session=session):
        return refused
    existing = session.exec(select(ReviewAnswer).where(
        ReviewAnswer.finding_id == finding_id, ReviewAnswer.reviewer_id == actor.id)
        .execution_options(populate_existing=True)).first()
    if (existing.version if existing else 0) != seen_version:
        return _conflict(f"finding {finding_id}")
    proposal = proposal_fields(finding)
    base = answer_snapshot(existing) if existing and action == "edit" else proposal
    fields = {**{k: base[k] for k in ANSWER_FIELDS},
              **{k: v for k, v in (changes or {}).items() if k in ANSWER_FIELDS}}
    status = DECISION_STATUS[action]
    if action == "edit":
        resolved = resolve_evidence(finding.report_id, fields, session=session)
        if isinstance(resolved, str):
            return ReviewResult(False, resolved, entity_id=finding_id)
        fields = resolved
        if fields == proposal:
            status = FindingStatus.accepted
    values = answer_values({**fields, "status": status})
    before = answer_snapshot(existing) if existing else None
    if existing is not None:
        if not _locked_update(ReviewAnswer, existing.id, seen_version, values, session=session):
            return _conflict(f"finding {finding_id}")
        answer = session.get(ReviewAnswer, existing.id, populate_existing=True)
    else:
        answer = ReviewAnswer(report_id=finding.report_id, finding_id=finding_id,
                              reviewer_id=actor.id, **values)
        try:
            with session.begin_nested():  # a racing first answer from another window
                session.add(answer)
        except IntegrityError:
            return _conflict(f"finding {finding_id}")
    _add_event(actor.id, "answer", answer.id, action, before, answer_snapshot(answer),
               session=session)
    _after_write(finding.report_id, actor, session=session)
    return ReviewResult(True, f"Finding {finding_id}: {status.value}.", True, finding_id)


def add_answer(report_id: int, fields: dict, *, actor: Actor, session: Session) -> ReviewResult:
    """A finding the extractor missed, as ``actor``'s own answer (status ``added``)."""
    if session.get(Report, report_id) is None:
        return ReviewResult(False, f"Report {report_id} does not exist.")
    values = answer_values({**{k: fields.get(k) for k in ANSWER_FIELDS},
                      "status": FindingStatus.added})
    resolved = resolve_evidence(report_id, values, session=session)
    if isinstance(resolved, str):
        return ReviewResult(False, resolved)
    values = resolved
    if refused := _guard(report_id, actor, session=session):
        return refused
    answer = ReviewAnswer(report_id=report_id, reviewer_id=actor.id, **values)
    session.add(answer)
    session.flush()
    _add_event(actor.id, "answer", answer.id, "add", None, answer_snapshot(answer),
               session=session)
    _after_write(report_id, actor, session=session)
    return ReviewResult(True, f"Added {answer.category} ({answer.presence}).", True, answer.id)


def accept_remaining(report_id: int, *, actor: Actor, session: Session) -> ReviewResult:
    """Accept every proposal of the report that ``actor`` has not answered yet."""
    answered = select(ReviewAnswer.finding_id).where(ReviewAnswer.report_id == report_id,
                                                     ReviewAnswer.reviewer_id == actor.id,
                                                     ReviewAnswer.finding_id.is_not(None))
    todo = session.exec(select(Finding.id).where(Finding.report_id == report_id,
                                                 Finding.id.not_in(answered))).all()
    n = 0
    for finding_id in todo:
        result = answer_finding(finding_id, "accept", seen_version=0, actor=actor,
                                session=session)
        if not result.ok:
            return result if n == 0 else ReviewResult(True, f"Accepted {n}; {result.message}")
        n += 1
    return ReviewResult(True, f"Accepted {n} remaining finding(s).", n > 0)


def mark_report_done(report_id: int, *, actor: Actor, session: Session) -> ReviewResult:
    """Finish a report without proposals (nothing to answer): a normal study, or only
    findings one added."""
    if refused := _guard(report_id, actor, session=session):
        return refused
    n_open = session.exec(select(func.count()).select_from(Finding).where(
        Finding.report_id == report_id, Finding.id.not_in(
            select(ReviewAnswer.finding_id).where(ReviewAnswer.reviewer_id == actor.id,
                                                  ReviewAnswer.finding_id.is_not(None))))).one()
    if n_open:
        return ReviewResult(False, f"{n_open} finding(s) still have no answer of yours.")
    assignment = session.exec(select(Assignment).where(Assignment.report_id == report_id,
                                                       Assignment.reviewer_id == actor.id)).one()
    assignment.completed_at = assignment.completed_at or utcnow()
    session.add(assignment)
    _add_event(actor.id, "assignment", report_id, "done", None,
               {"report_id": report_id, "reviewer_id": actor.id}, session=session)
    session.flush()
    resettle(report_id, actor_id=actor.id, session=session)
    return ReviewResult(True, f"Report {report_id} marked done.", True, report_id)


def undo_last_answer(report_id: int, *, actor: Actor, session: Session) -> ReviewResult:
    """Revert ``actor``'s latest not-yet-undone answer write on this report.

    An answer that had no earlier state (a first accept, an add) is deleted; otherwise its
    previous fields come back. Refused as a conflict when the answer changed since.
    """
    if refused := _guard(report_id, actor, session=session):
        return refused
    ids = select(ReviewAnswer.id).where(ReviewAnswer.report_id == report_id,
                                        ReviewAnswer.reviewer_id == actor.id)
    events = list(session.exec(select(ReviewEvent).where(
        ReviewEvent.entity == "answer", ReviewEvent.reviewer_id == actor.id,
        ReviewEvent.entity_id.in_(ids)).order_by(ReviewEvent.id.desc())))
    undone = {json.loads(e.after_json)["_undoes"] for e in events if e.action == "undo"}
    target = next((e for e in events if e.action != "undo" and e.id not in undone), None)
    if target is None:
        return ReviewResult(False, "You have no answer on this report left to undo.")
    answer = session.get(ReviewAnswer, target.entity_id, populate_existing=True)
    after = json.loads(target.after_json)
    if answer.version != after["version"]:
        return _conflict(f"answer {answer.id}")
    current = answer_snapshot(answer)
    if target.before_json is None:
        session.delete(answer)
        restored = {"_undoes": target.id, "deleted": True}
    else:
        before = json.loads(target.before_json)
        if not _locked_update(ReviewAnswer, answer.id, answer.version, answer_values(before),
                              session=session):
            return _conflict(f"answer {answer.id}")
        answer = session.get(ReviewAnswer, answer.id, populate_existing=True)
        restored = {**answer_snapshot(answer), "_undoes": target.id}
    _add_event(actor.id, "answer", target.entity_id, "undo", current, restored, session=session)
    session.flush()
    _after_write(report_id, actor, session=session)
    what = current["category"]
    return ReviewResult(True, f"Undid your {target.action} of {what}.", True, target.entity_id)
