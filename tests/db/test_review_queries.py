"""Review writes (accept / edit / reject / add / undo), optimistic locking, the audit trail, the
second-reviewer rule, the queue, IKI review, and the agreement figures."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from sqlmodel import Session, select

from db import queries
from db.engine import get_engine, session_scope
from db.models import (
    Finding,
    KnowledgeEntry,
    KnowledgeSource,
    KnowledgeStatus,
    Presence,
    ReportExtraction,
    ReviewerRole,
    ReviewEvent,
)
from db.queries._common import locked_update
from pipeline import agreement
from pipeline.knowledge.sync import plan_action
from tests.factories import REVIEW_REPORT, make_reviewable_report, make_reviewer


@pytest.fixture
def store(db_url):
    """A report with three proposed findings and reviewers A, B (reviewers) and C (adjudicator)."""
    with session_scope(db_url) as s:
        report, findings = make_reviewable_report(s)
        a, b = make_reviewer(s, name="Dr A"), make_reviewer(s, name="Dr B")
        c = make_reviewer(s, name="Dr C", role=ReviewerRole.adjudicator)
    return SimpleNamespace(url=db_url, report=report, findings=findings, a=a, b=b, c=c)


def queries_engine(url):
    return get_engine(url)


def row(url, finding_id) -> Finding:
    with Session(queries_engine(url)) as s:
        return s.get(Finding, finding_id)


def events(url, finding_id=None) -> list[ReviewEvent]:
    with Session(queries_engine(url)) as s:
        stmt = select(ReviewEvent).where(ReviewEvent.entity == "finding").order_by(ReviewEvent.id)
        if finding_id is not None:
            stmt = stmt.where(ReviewEvent.entity_id == finding_id)
        return list(s.exec(stmt))


def decide(store, finding, action, reviewer, version=None, changes=None):
    with session_scope(store.url) as s:
        return queries.decide_finding(finding.id, action, version=version or row(
            store.url, finding.id).version, reviewer=reviewer, changes=changes, session=s)


def test_accept_sets_status_reviewer_version_and_audits(store):
    f = store.findings[0]
    result = decide(store, f, "accept", store.a, version=1)
    assert result.ok and result.applied
    got = row(store.url, f.id)
    assert (got.status, got.reviewer_id, got.version) == ("accepted", store.a.id, 2)
    [event] = events(store.url, f.id)
    before, after = json.loads(event.before_json), json.loads(event.after_json)
    assert (event.action, event.reviewer_id) == ("accept", store.a.id)
    assert (before["status"], before["version"], before["reviewer_id"]) == ("proposed", 1, None)
    assert (after["status"], after["version"], after["_applied"]) == ("accepted", 2, True)
    assert after["evidence_text"] == "Small left pleural effusion."


def test_edit_changes_fields_and_checks_evidence(store):
    f = store.findings[1]
    quote = "No pneumothorax."
    start = REVIEW_REPORT.index(quote)
    bad = decide(store, f, "edit", store.a, changes={"presence": "uncertain",
                                                      "evidence_start": 0, "evidence_end": 5,
                                                      "evidence_text": "not in it"})
    assert not bad.ok and "verbatim" in bad.message
    assert row(store.url, f.id).version == 1 and events(store.url, f.id) == []
    ok = decide(store, f, "edit", store.a, changes={
        "presence": "uncertain", "severity": "mild", "side": "left", "region": "apical",
        "evidence_start": start, "evidence_end": start + len(quote), "evidence_text": quote})
    assert ok.ok
    got = row(store.url, f.id)
    assert (got.status, got.presence, got.severity, got.side, got.region) == (
        "edited", Presence.uncertain, "mild", "left", "apical")
    after = json.loads(events(store.url, f.id)[0].after_json)
    assert (after["presence"], after["region"]) == ("uncertain", "apical")


def test_reject_then_undo_restores_proposed(store):
    f = store.findings[2]
    decide(store, f, "reject", store.a)
    assert row(store.url, f.id).status == "rejected"
    with session_scope(store.url) as s:
        undo = queries.undo_last(store.report.id, reviewer=store.a, session=s)
    assert undo.ok and "reject" in undo.message
    got = row(store.url, f.id)
    assert (got.status, got.reviewer_id, got.version) == ("proposed", None, 3)
    last = events(store.url, f.id)[-1]
    assert last.action == "undo"
    assert json.loads(last.after_json)["_undoes"] == events(store.url, f.id)[0].id
    assert json.loads(last.before_json)["status"] == "rejected"


def test_undo_walks_back_one_event_at_a_time_then_runs_out(store):
    f0, f1 = store.findings[:2]
    decide(store, f0, "accept", store.a)
    decide(store, f1, "reject", store.a)
    for expected in ((f1.id, "proposed"), (f0.id, "proposed")):
        with session_scope(store.url) as s:
            assert queries.undo_last(store.report.id, reviewer=store.a, session=s).ok
        assert row(store.url, expected[0]).status == expected[1]
    with session_scope(store.url) as s:
        result = queries.undo_last(store.report.id, reviewer=store.a, session=s)
    assert not result.ok and "no change" in result.message


def test_add_and_undo_add_deletes(store):
    quote = "Left effusion."
    start = REVIEW_REPORT.index(quote)
    with session_scope(store.url) as s:
        bad = queries.add_finding(store.report.id, {"category": "edema", "presence": "present",
                                                    "evidence_text": "Edema.", "evidence_start": 0,
                                                    "evidence_end": 6}, reviewer=store.a, session=s)
        assert not bad.ok
        added = queries.add_finding(store.report.id, {
            "category": "pleural_effusion", "presence": "present", "side": "left",
            "evidence_start": start, "evidence_end": start + len(quote), "evidence_text": quote},
            reviewer=store.a, session=s)
    got = row(store.url, added.entity_id)
    assert (got.status, got.extractor, got.reviewer_id, got.side) == (
        "added", "human", store.a.id, "left")
    assert events(store.url, got.id)[0].action == "add"
    with session_scope(store.url) as s:
        assert queries.undo_last(store.report.id, reviewer=store.a, session=s).ok
    assert row(store.url, added.entity_id) is None


def test_optimistic_lock_conflict_between_two_sessions(store):
    """Two reviewers open the same finding at version 1; the second write is refused."""
    f = store.findings[0]
    with session_scope(store.url) as s1, session_scope(store.url) as s2:
        seen1 = s1.get(Finding, f.id).version
        seen2 = s2.get(Finding, f.id).version
        assert queries.decide_finding(f.id, "accept", version=seen1, reviewer=store.a,
                                      session=s1).ok
        s1.commit()
        late = queries.decide_finding(f.id, "reject", version=seen2, reviewer=store.c,
                                      session=s2)
    assert not late.ok
    assert "Dr A" in late.message and "changed" in late.message
    got = row(store.url, f.id)
    assert (got.status, got.version) == ("accepted", 2)
    assert [e.action for e in events(store.url, f.id)] == ["accept"]


def test_locked_update_refuses_a_stale_version_even_past_the_read_check(store):
    f = store.findings[0]
    decide(store, f, "accept", store.a)
    with session_scope(store.url) as s:
        assert not locked_update(Finding, f.id, 1, {"region": "apical"}, session=s)
    assert row(store.url, f.id).region is None


def test_second_reviewer_is_recorded_but_does_not_overwrite(store):
    f = store.findings[0]
    decide(store, f, "accept", store.a)
    second = decide(store, f, "reject", store.b)
    assert second.ok and not second.applied and "second opinion" in second.message
    got = row(store.url, f.id)
    assert (got.status, got.reviewer_id, got.version) == ("accepted", store.a.id, 2)
    last = events(store.url, f.id)[-1]
    assert (last.action, last.reviewer_id) == ("reject", store.b.id)
    assert json.loads(last.after_json)["_applied"] is False
    # the first reviewer may still change their own decision
    assert decide(store, f, "reject", store.a).applied
    # an adjudicator's decision overwrites
    adjudicated = decide(store, f, "accept", store.c)
    assert adjudicated.applied
    got = row(store.url, f.id)
    assert (got.status, got.reviewer_id) == ("accepted", store.c.id)


def test_undo_is_refused_after_someone_else_changed_the_row(store):
    f = store.findings[0]
    decide(store, f, "accept", store.a)
    decide(store, f, "reject", store.c)  # the adjudicator overrides
    with session_scope(store.url) as s:
        result = queries.undo_last(store.report.id, reviewer=store.a, session=s)
    assert not result.ok and "Dr C" in result.message
    assert row(store.url, f.id).status == "rejected"


def test_accept_all_remaining_and_queue(store):
    with session_scope(store.url) as s:
        assert queries.count_review_queue(session=s, status="proposed") == 1
        assert queries.next_unreviewed_report(session=s) == store.report.id
    decide(store, store.findings[0], "reject", store.a)
    with session_scope(store.url) as s:
        assert queries.accept_all_remaining(store.report.id, reviewer=store.a, session=s) == 2
    statuses = sorted(row(store.url, f.id).status for f in store.findings)
    assert statuses == ["accepted", "accepted", "rejected"]
    with session_scope(store.url) as s:
        assert queries.count_review_queue(session=s, status="proposed") == 0
        assert queries.next_unreviewed_report(session=s) is None
        [qrow] = queries.list_review_queue(session=s, status="accepted", category="cardiomegaly")
        assert (qrow.report_id, qrow.n_findings, qrow.n_proposed) == (store.report.id, 1, 0)
        assert queries.count_review_queue(session=s, status="accepted", category="edema") == 0


def test_knowledge_edit_approve_conflict_and_sync_respects_it(store):
    with session_scope(store.url) as s:
        entry = KnowledgeEntry(category="edema", explanation="Draft text.",
                               source=KnowledgeSource.written, status=KnowledgeStatus.draft)
        s.add(entry)
        s.flush()
        edited = queries.update_knowledge(entry.id, version=1, explanation="Better  text.",
                                          status=KnowledgeStatus.draft, reviewer=store.a, session=s)
        assert edited.ok
    with session_scope(store.url) as s:
        stale = queries.update_knowledge(entry.id, version=1, explanation="x",
                                         status=KnowledgeStatus.approved, reviewer=store.b,
                                         session=s)
        assert not stale.ok and "Dr A" in stale.message
        assert queries.update_knowledge(entry.id, version=2, explanation="Better text.",
                                        status=KnowledgeStatus.approved, reviewer=store.b,
                                        session=s).ok
    with Session(queries_engine(store.url)) as s:
        got = s.get(KnowledgeEntry, entry.id)
        acts = [e.action for e in s.exec(select(ReviewEvent).where(
            ReviewEvent.entity == "knowledge").order_by(ReviewEvent.id))]
    assert (got.explanation, got.status, got.version, got.reviewer_id) == (
        "Better text.", KnowledgeStatus.approved, 3, store.b.id)
    assert acts == ["edit", "approve"]
    # the IKI sync now leaves it alone, even when it matches what the sync last wrote
    assert plan_action(got, "yaml text", "Better text.") == "kept-reviewed"


def test_add_knowledge_subclass_validates(store):
    with session_scope(store.url) as s:
        assert not queries.add_knowledge_subclass("edema", "big", "x", reviewer=store.a,
                                                  session=s).ok
        assert queries.add_knowledge_subclass("edema", "severity:severe", "Bat wing.",
                                              reviewer=store.a, session=s).ok
        assert not queries.add_knowledge_subclass("edema", "severity:severe", "Again.",
                                                  reviewer=store.a, session=s).ok
        [entry] = queries.list_knowledge(session=s, category="edema")
    assert (entry.subclass, entry.status, entry.source) == (
        "severity:severe", KnowledgeStatus.draft, KnowledgeSource.written)


# --- agreement ----------------------------------------------------------------------------


def test_kappa_hand_computed():
    # 10 items: both accept 4, both not 3, A only 2, B only 1 -> p_o = 0.7,
    # p_A = 0.6, p_B = 0.5, p_e = 0.3 + 0.2 = 0.5, kappa = 0.2 / 0.5 = 0.4
    items = [(1, 1)] * 4 + [(0, 0)] * 3 + [(1, 0)] * 2 + [(0, 1)]
    assert agreement.percent_agreement(items) == pytest.approx(0.7)
    assert agreement.cohen_kappa(items) == pytest.approx(0.4)
    # perfect disagreement on a balanced set: p_o = 0, p_e = 0.5 -> kappa = -1
    assert agreement.cohen_kappa([(1, 0), (0, 1)]) == pytest.approx(-1.0)
    # all-accept by both: chance agreement 1, kappa undefined
    assert agreement.cohen_kappa([(1, 1), (1, 1)]) is None
    assert agreement.cohen_kappa([]) is None and agreement.percent_agreement([]) is None


def test_reviewer_agreement_from_events_with_undo(store):
    f0, f1, f2 = store.findings
    decide(store, f0, "accept", store.a)
    decide(store, f0, "accept", store.b)  # agree
    decide(store, f1, "accept", store.a)
    decide(store, f1, "reject", store.b)  # disagree
    decide(store, f2, "reject", store.a)  # one reviewer only: not counted
    decide(store, f2, "accept", store.b)
    with session_scope(store.url) as s:  # B's accept of f2 is undone: f2 has one decider left
        assert queries.undo_last(store.report.id, reviewer=store.b, session=s).ok
        decisions = agreement.effective_decisions(queries.list_decision_events(session=s))
    assert (f2.id, store.b.id) not in decisions
    result = agreement.reviewer_agreement(decisions)
    assert (result.n_findings, result.n_items) == (2, 2)
    assert result.percent == pytest.approx(0.5)
    # A accepts both, B one of two: p_A = 1, p_B = .5, p_e = .5, p_o = .5 -> kappa 0
    assert result.kappa == pytest.approx(0.0)
    assert [(p.reviewer_a, p.reviewer_b, p.n) for p in result.pairs] == [
        (store.a.id, store.b.id, 2)]


def test_extractor_summary_numbers(store):
    f0, f1, f2 = store.findings
    decide(store, f0, "accept", store.a)
    decide(store, f1, "edit", store.a, changes={"presence": "uncertain"})
    decide(store, f2, "reject", store.a)
    quote = "Left effusion."
    start = REVIEW_REPORT.index(quote)
    with session_scope(store.url) as s:
        s.add(ReportExtraction(report_id=store.report.id, extractor="rules",
                               extractor_version="rules-1", n_findings=3))
        queries.add_finding(store.report.id, {
            "category": "atelectasis", "presence": "present", "evidence_start": start,
            "evidence_end": start + len(quote), "evidence_text": quote}, reviewer=store.a,
            session=s)
    with session_scope(store.url) as s:
        rows = agreement.extractor_summary(queries.review_status_counts(session=s),
                                           queries.added_finding_counts(session=s))
    by_cat = {r["category"]: r for r in rows}
    assert by_cat["pleural_effusion"]["accepted_share"] == 1.0
    assert by_cat["pneumothorax"]["edited_share"] == 1.0
    assert by_cat["cardiomegaly"]["rejected_share"] == 1.0
    assert by_cat["cardiomegaly"]["recall_proxy"] is None
    assert (by_cat["atelectasis"]["added"], by_cat["atelectasis"]["recall_proxy"]) == (1, 0.0)
    assert all(r["version"] == "rules-1" for r in rows)


def test_extractor_summary_shares_hand_computed():
    counts = [("rules", "v1", "edema", "accepted", 6), ("rules", "v1", "edema", "edited", 2),
              ("rules", "v1", "edema", "rejected", 2), ("rules", "v1", "edema", "proposed", 5)]
    [r] = agreement.extractor_summary(counts, [("rules", "v1", "edema", 2)])
    assert (r["reviewed"], r["proposed"]) == (10, 5)
    assert (r["accepted_share"], r["edited_share"], r["rejected_share"]) == (0.6, 0.2, 0.2)
    assert r["recall_proxy"] == pytest.approx(8 / 10)


# --- the audit trail equals the rows -------------------------------------------------------


def _assert_last_event_matches_row(url, finding_id, action):
    """The latest event's ``after`` (metadata keys aside) is the row as stored now."""
    last = events(url, finding_id)[-1]
    assert last.action == action
    after = {k: v for k, v in json.loads(last.after_json).items() if not k.startswith("_")}
    got = row(url, finding_id)
    if got is None:  # an undone add deleted the row, and the event says so
        assert after == {"deleted": True}
        return
    assert after == queries.finding_snapshot(got)


EDIT = {"presence": "uncertain", "evidence_text": "No pneumothorax."}


@pytest.mark.parametrize("action", ["accept", "edit", "reject"])
def test_every_decision_and_its_undo_audit_the_row_they_wrote(store, action):
    f = store.findings[1]
    decide(store, f, action, store.a, version=1, changes=EDIT if action == "edit" else None)
    _assert_last_event_matches_row(store.url, f.id, action)
    with session_scope(store.url) as s:
        assert queries.undo_last(store.report.id, reviewer=store.a, session=s).ok
    assert row(store.url, f.id).version == 3
    _assert_last_event_matches_row(store.url, f.id, "undo")


def test_add_accept_all_and_their_undos_audit_the_rows_they_wrote(store):
    quote = "Left effusion."
    start = REVIEW_REPORT.index(quote)
    with session_scope(store.url) as s:
        added = queries.add_finding(store.report.id, {
            "category": "pleural_effusion", "presence": "present", "evidence_text": quote,
            "evidence_start": start, "evidence_end": start + len(quote)},
            reviewer=store.a, session=s)
    assert added.ok
    _assert_last_event_matches_row(store.url, added.entity_id, "add")
    with session_scope(store.url) as s:
        assert queries.accept_all_remaining(store.report.id, reviewer=store.a, session=s) == 3
    for f in store.findings:
        _assert_last_event_matches_row(store.url, f.id, "accept")
    for f in reversed(store.findings):  # undo walks back the accepts, then the add
        with session_scope(store.url) as s:
            assert queries.undo_last(store.report.id, reviewer=store.a, session=s).ok
        _assert_last_event_matches_row(store.url, f.id, "undo")
    with session_scope(store.url) as s:
        assert queries.undo_last(store.report.id, reviewer=store.a, session=s).ok
    _assert_last_event_matches_row(store.url, added.entity_id, "undo")


def test_undoing_a_second_opinion_audits_the_untouched_row(store):
    f = store.findings[0]
    decide(store, f, "accept", store.a)
    decide(store, f, "reject", store.b)  # recorded, not applied
    with session_scope(store.url) as s:
        assert queries.undo_last(store.report.id, reviewer=store.b, session=s).ok
    _assert_last_event_matches_row(store.url, f.id, "undo")
    assert row(store.url, f.id).status == "accepted"
