"""Blind double review: each reviewer's own answers, settlement (single / agreed / disputed),
adjudication, undo, and the settled labels that training and export read."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from sqlmodel import Session, select

from db import queries
from db.engine import get_engine, session_scope
from db.models import Assignment, Finding, ReviewAnswer, ReviewerRole, ReviewEvent, Settlement
from tests.factories import assign, make_account, make_reviewable_report


@pytest.fixture
def store(db_url):
    """One report with three proposals, reviewers A and B, adjudicator J, admin Ada."""
    with session_scope(db_url) as s:
        report, findings = make_reviewable_report(s)
        a, b = make_account(s, name="Dr A"), make_account(s, name="Dr B")
        j = make_account(s, name="Dr J", role=ReviewerRole.adjudicator)
        admin = make_account(s, name="Ada", role=ReviewerRole.admin)
    return SimpleNamespace(url=db_url, report=report, findings=findings, a=a, b=b, j=j,
                           admin=admin)


def write(store, fn, *args, **kwargs):
    with session_scope(store.url) as s:
        return fn(*args, session=s, **kwargs)


def answer(store, actor, finding, action, seen=0, **changes):
    return write(store, queries.answer_finding, finding.id, action, seen_version=seen,
                 actor=actor, changes=changes or None)


def settlement(store) -> Settlement | None:
    with Session(get_engine(store.url)) as s:
        return s.exec(select(Settlement).where(Settlement.report_id == store.report.id)).first()


def review_all(store, actor, reject_last=False):
    f0, f1, f2 = store.findings
    assert answer(store, actor, f0, "accept").ok
    assert answer(store, actor, f1, "accept").ok
    assert answer(store, actor, f2, "reject" if reject_last else "accept").ok


def test_answers_are_per_reviewer_and_leave_the_proposal_alone(store):
    with session_scope(store.url) as s:
        assign(s, store.report.id, store.a, store.b)
    f = store.findings[0]
    assert answer(store, store.a, f, "edit", severity="moderate").ok
    with Session(get_engine(store.url)) as s:
        assert s.get(Finding, f.id).severity is None  # the machine's proposal stays as it was
        mine = queries.get_my_review(store.report.id, actor=store.a, session=s)
        theirs = queries.get_my_review(store.report.id, actor=store.b, session=s)
    assert (mine.items[0].status, str(mine.items[0].shown.severity)) == ("edited", "moderate")
    # B sees the proposal only: no trace of A's answer
    assert [i.status for i in theirs.items] == ["proposed"] * 3
    assert theirs.items[0].shown.severity is None and theirs.n_decided == 0


def test_edit_equal_to_the_proposal_is_an_accept_and_a_stale_version_conflicts(store):
    f = store.findings[0]
    result = answer(store, store.a, f, "edit", category=f.category)
    assert result.ok and "accepted" in result.message
    stale = answer(store, store.a, f, "reject", seen=0)
    assert not stale.ok and "another window" in stale.message
    assert answer(store, store.a, f, "reject", seen=1).ok


def test_single_review_settles_on_its_answers_and_undo_unsettles(store):
    review_all(store, store.a, reject_last=True)  # unassigned: the first answer claims it
    s = settlement(store)
    assert (s.state, s.how, s.answer_reviewer_id) == ("settled", "single", store.a.id)
    with Session(get_engine(store.url)) as ses:
        labels = queries.settled_findings(session=ses)
    assert sorted(f.category for f in labels) == ["pleural_effusion", "pneumothorax"]
    assert write(store, queries.undo_last_answer, store.report.id, actor=store.a).ok
    assert settlement(store) is None
    with Session(get_engine(store.url)) as ses:
        assert ses.exec(select(Assignment.completed_at)).one() is None


def test_a_report_assigned_to_others_is_refused(store):
    with session_scope(store.url) as s:
        assign(s, store.report.id, store.a)
    result = answer(store, store.b, store.findings[0], "accept")
    assert not result.ok and "assigned to other reviewers" in result.message
    assert not answer(store, None, store.findings[0], "accept").ok


def test_two_agreeing_reviewers_settle_even_when_one_edited_to_the_same_answer(store):
    with session_scope(store.url) as s:
        assign(s, store.report.id, store.a, store.b)
    review_all(store, store.a)
    assert settlement(store) is None  # B has not finished
    f0, f1, f2 = store.findings
    assert answer(store, store.b, f0, "edit", evidence_start=f0.evidence_start,
                  evidence_end=f0.evidence_end, evidence_text=f0.evidence_text).ok
    answer(store, store.b, f1, "accept")
    answer(store, store.b, f2, "accept")
    s = settlement(store)
    assert (s.state, s.how) == ("settled", "agreed")


def test_disagreement_goes_to_adjudication_and_a_pick_settles_it(store):
    with session_scope(store.url) as s:
        assign(s, store.report.id, store.a, store.b)
    review_all(store, store.a)
    review_all(store, store.b, reject_last=True)
    s = settlement(store)
    assert s.state == "disputed"
    with Session(get_engine(store.url)) as ses:
        assert [d.report_id for d in queries.list_disputes(session=ses)] == [store.report.id]
        with pytest.raises(queries.PermissionDenied):
            queries.get_dispute(store.report.id, actor=store.a, session=ses)
        dispute = queries.get_dispute(store.report.id, actor=store.j, session=ses)
    assert set(dispute.answers) == {store.a.id, store.b.id}
    refused = write(store, queries.adjudicate_pick, store.report.id, store.b.id,
                    seen_version=s.version, actor=store.a)
    assert not refused.ok and "may not adjudicate" in refused.message
    assert write(store, queries.adjudicate_pick, store.report.id, store.b.id,
                 seen_version=s.version, actor=store.j).ok
    s = settlement(store)
    assert (s.state, s.how, s.answer_reviewer_id, s.adjudicator_id) == (
        "settled", "adjudicated", store.b.id, store.j.id)
    with Session(get_engine(store.url)) as ses:
        assert queries.count_disputes(session=ses) == 0
        [report] = queries.settled_reports(session=ses)
        events = [e.action for e in ses.exec(select(ReviewEvent).where(
            ReviewEvent.entity == "settlement").order_by(ReviewEvent.id))]
    assert report.reviewers == ("Dr A", "Dr B", "Dr J")
    assert events == ["dispute", "adjudicate-pick"]
    # final: nobody's answers change any more
    assert "adjudicated" in answer(store, store.a, store.findings[0], "reject", seen=1).message


def test_adjudicator_writes_a_third_answer(store):
    with session_scope(store.url) as s:
        assign(s, store.report.id, store.a, store.b)
    review_all(store, store.a)
    review_all(store, store.b, reject_last=True)
    f0 = store.findings[0]
    rows = [{"finding_id": f0.id, "category": f0.category, "presence": "uncertain",
             "severity": None, "side": "left", "region": None, "evidence_start": f0.evidence_start,
             "evidence_end": f0.evidence_end, "evidence_text": f0.evidence_text}]
    bad = [{**rows[0], "evidence_text": "not in the report"}]
    version = settlement(store).version
    assert "Row 1" in write(store, queries.adjudicate_own, store.report.id, bad,
                            seen_version=version, actor=store.j).message
    assert write(store, queries.adjudicate_own, store.report.id, rows, seen_version=version,
                 actor=store.j).ok
    with Session(get_engine(store.url)) as ses:
        [label] = queries.settled_findings(session=ses)
        statuses = sorted(str(a.status) for a in ses.exec(select(ReviewAnswer).where(
            ReviewAnswer.reviewer_id == store.j.id)))
    assert (label.category, label.presence, label.side, label.status) == (
        "pleural_effusion", "uncertain", "left", "edited")
    assert statuses == ["edited", "rejected", "rejected"]


def test_added_finding_and_undo_of_an_add(store):
    text = store.report.text
    quote = "Left effusion."
    start = text.index(quote)
    fields = {"category": "atelectasis", "presence": "present", "evidence_start": start,
              "evidence_end": start + len(quote), "evidence_text": quote}
    assert not write(store, queries.add_answer, store.report.id,
                     {**fields, "evidence_text": "nope"}, actor=store.a).ok
    assert write(store, queries.add_answer, store.report.id, fields, actor=store.a).ok
    review_all(store, store.a)
    with Session(get_engine(store.url)) as ses:
        cats = sorted(f.category for f in queries.settled_findings(session=ses))
    assert cats == ["atelectasis", "cardiomegaly", "pleural_effusion", "pneumothorax"]
    for _ in range(4):
        assert write(store, queries.undo_last_answer, store.report.id, actor=store.a).ok
    with Session(get_engine(store.url)) as ses:
        assert ses.exec(select(ReviewAnswer)).all() == []
        undo = ses.exec(select(ReviewEvent).where(ReviewEvent.action == "undo")
                        .order_by(ReviewEvent.id.desc())).first()
    assert json.loads(undo.after_json)["deleted"] is True
    assert "no answer on this report left" in write(
        store, queries.undo_last_answer, store.report.id, actor=store.a).message


def test_every_answer_write_is_audited_with_after_equal_to_the_row(store):
    f = store.findings[1]
    answer(store, store.a, f, "edit", presence="uncertain")
    with Session(get_engine(store.url)) as s:
        row = s.exec(select(ReviewAnswer)).one()
        [event] = s.exec(select(ReviewEvent).where(ReviewEvent.entity == "answer")).all()
    assert json.loads(event.after_json) == queries.answer_snapshot(row)
    assert (event.action, event.reviewer_id, event.before_json) == ("edit", store.a.id, None)
