"""AppTest of the Review page: queue, accept, edit (bad quote refused), add, undo, conflicts."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from curation_app import state
from db import queries
from db.engine import get_engine, session_scope
from db.models import Finding, Reviewer, ReviewEvent
from tests.factories import PAGES, make_reviewable_report, make_reviewer, make_study


@pytest.fixture
def env(app_store, data_dir):
    with session_scope(app_store) as s:
        report, findings = make_reviewable_report(s, data_dir=data_dir)
        make_study(s, key="plain")  # a report with no finding: never in the queue
        a, b = make_reviewer(s, name="Dr A"), make_reviewer(s, name="Dr B")
    return SimpleNamespace(url=app_store, report=report, findings=findings, a=a, b=b)


def review(reviewer_id: int | None, **query_params) -> AppTest:
    at = AppTest.from_file(str(PAGES / "review.py"), default_timeout=30)
    if reviewer_id is not None:
        at.session_state[state.KEY_REVIEWER] = reviewer_id
    for key, value in query_params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def finding(url, finding_id) -> Finding | None:
    with Session(get_engine(url)) as s:
        return s.get(Finding, finding_id)


def badges(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown if "-badge[" in m.value)


def test_queue_lists_reports_with_proposed_findings_and_opens_one(env):
    at = review(env.a.id)
    assert "Reports 1–1 of 1" in " ".join(c.value for c in at.caption)
    at.button(key=f"review_open_{env.report.id}").click().run()
    assert at.subheader[0].value == f"Report {env.report.id}"
    assert len(at.get("image")) == 1
    assert len([b for b in at.button if b.key and b.key.startswith("accept_")]) == 3


def test_next_unreviewed_opens_the_report(env):
    at = review(env.a.id)
    at.button(key="review_next").click().run()
    assert at.subheader[0].value == f"Report {env.report.id}"


def test_accept_a_finding(env):
    f = env.findings[0]
    at = review(env.a.id, report=str(env.report.id))
    assert ":gray-badge[proposed]" in badges(at)
    at.button(key=f"accept_{f.id}").click().run()
    assert not at.exception
    assert "accepted" in at.success[0].value
    got = finding(env.url, f.id)
    assert (got.status, got.reviewer_id, got.version) == ("accepted", env.a.id, 2)
    assert ":green-badge[accepted]" in badges(at)
    assert any("decided by Dr A" in c.value for c in at.caption)


def test_edit_with_a_bad_quote_is_refused_then_a_good_one_saves(env):
    f = env.findings[1]
    at = review(env.a.id, report=str(env.report.id))
    at.button(key=f"edit_{f.id}").click().run()
    at.selectbox(key=f"editf_{f.id}_presence").select("uncertain")
    at.text_area(key=f"editf_{f.id}_evidence").input("No pneumothorax is seen")
    at.button(key=f"save_{f.id}").click().run()
    assert "not a verbatim part of the report" in at.error[0].value
    assert finding(env.url, f.id).status == "proposed"
    # the form stays open with what was typed, so the quote can be fixed
    at.text_area(key=f"editf_{f.id}_evidence").input(" No pneumothorax. ")
    at.button(key=f"save_{f.id}").click().run()
    got = finding(env.url, f.id)
    assert (got.status, got.presence, got.evidence_text) == ("edited", "uncertain",
                                                             "No pneumothorax.")
    assert at.success and not at.error


def test_a_quote_pasted_from_a_rewrapped_display_saves_as_the_report_slice(env):
    f = env.findings[2]
    at = review(env.a.id, report=str(env.report.id))
    at.button(key=f"edit_{f.id}").click().run()
    at.text_area(key=f"editf_{f.id}_evidence").input("Mild cardiomegaly.  IMPRESSION: Left\n"
                                                      "effusion.")
    at.button(key=f"save_{f.id}").click().run()
    assert at.success and not at.error
    got = finding(env.url, f.id)
    assert got.evidence_text == "Mild cardiomegaly.\nIMPRESSION: Left effusion."
    assert env.report.text[got.evidence_start:got.evidence_end] == got.evidence_text


def test_add_a_finding(env):
    at = review(env.a.id, report=str(env.report.id))
    at.selectbox(key="addf_category").select("atelectasis")
    at.selectbox(key="addf_side").select("left")
    at.text_area(key="addf_evidence").input("Left effusion.")
    at.button(key="add_finding").click().run()
    assert "added" in at.success[0].value
    with Session(get_engine(env.url)) as s:
        [added] = s.exec(select(Finding).where(Finding.extractor == "human")).all()
    assert (added.category, added.status, added.side, added.reviewer_id) == (
        "atelectasis", "added", "left", env.a.id)
    assert env.report.text[added.evidence_start:added.evidence_end] == "Left effusion."
    assert len([b for b in at.button if b.key and b.key.startswith("accept_")]) == 4


def test_undo_reverts_the_last_change(env):
    f = env.findings[2]
    at = review(env.a.id, report=str(env.report.id))
    at.button(key=f"reject_{f.id}").click().run()
    assert finding(env.url, f.id).status == "rejected"
    at.button(key="undo").click().run()
    assert "Undid your reject" in at.success[0].value
    assert finding(env.url, f.id).status == "proposed"
    with Session(get_engine(env.url)) as s:
        assert [e.action for e in s.exec(select(ReviewEvent).order_by(ReviewEvent.id))] == [
            "reject", "undo"]


def test_conflict_names_who_changed_it_and_shows_current_state(env):
    f = env.findings[0]
    at = review(env.a.id, report=str(env.report.id))  # A sees version 1
    with session_scope(env.url) as s:  # meanwhile B rejects it
        assert queries.decide_finding(f.id, "reject", version=1, reviewer=env.b, session=s).ok
    at.button(key=f"accept_{f.id}").click().run()
    [error] = at.error
    assert "changed by Dr B" in error.value and "nothing was saved" in error.value
    assert (finding(env.url, f.id).status, finding(env.url, f.id).reviewer_id) == (
        "rejected", env.b.id)
    assert ":red-badge[rejected]" in badges(at)


def test_second_opinion_is_recorded_and_shown_beside_the_first(env):
    f = env.findings[0]
    with session_scope(env.url) as s:
        assert queries.decide_finding(f.id, "accept", version=1, reviewer=env.a, session=s).ok
    at = review(env.b.id, report=str(env.report.id))
    at.button(key=f"reject_{f.id}").click().run()
    assert "second opinion" in at.warning[0].value
    assert (finding(env.url, f.id).status, finding(env.url, f.id).reviewer_id) == (
        "accepted", env.a.id)
    assert any("Opinions: Dr A accept · Dr B reject" in c.value for c in at.caption)


def test_accept_all_remaining(env):
    at = review(env.a.id, report=str(env.report.id))
    at.button(key="review_accept_all").click().run()
    assert "Accepted 3" in at.success[0].value
    assert {finding(env.url, f.id).status for f in env.findings} == {"accepted"}


def test_without_a_reviewer_the_page_is_read_only(env):
    at = review(None, report=str(env.report.id))
    assert "Pick or add your reviewer" in at.warning[0].value
    assert at.button(key=f"accept_{env.findings[0].id}").disabled
    assert at.button(key="undo").disabled


def test_agreement_page_shows_kappa_and_extractor_shares(env):
    f0, f1, _ = env.findings
    with session_scope(env.url) as s:
        for f, a_action, b_action in ((f0, "accept", "accept"), (f1, "accept", "reject")):
            queries.decide_finding(f.id, a_action, version=1, reviewer=env.a, session=s)
            queries.decide_finding(f.id, b_action, version=2, reviewer=env.b, session=s)
    at = AppTest.from_file(str(PAGES / "agreement.py"), default_timeout=30).run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Findings with ≥2 reviewers"] == "2"
    assert metrics["Percent agreement"] == "50.0%"
    assert metrics["Cohen's kappa"] == "0.000"  # A accepts all: p_e = .5 = p_o
    extractor, pairs = (df.value for df in at.dataframe)
    shares = extractor.set_index("category")
    # the row keeps A's decisions (B's reject was a second opinion only)
    assert shares.loc["pleural_effusion", "accepted_share"] == 1.0
    assert shares.loc["pneumothorax", "accepted_share"] == 1.0
    assert shares.loc["cardiomegaly", "reviewed"] == 0
    assert list(pairs["reviewer A"]) == ["Dr A"] and list(pairs["findings"]) == [2]
    assert len(at.get("plotly_chart")) == 1


def test_sidebar_adds_and_picks_a_reviewer(env):
    app = PAGES.parents[1] / "streamlit_app.py"
    at = AppTest.from_file(str(app), default_timeout=30).run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key=state.KEY_REVIEWER_PICK).value is None
    at.sidebar.text_input(key=state.KEY_NEW_REVIEWER_NAME).input("Dr Carol")
    at.sidebar.selectbox(key=state.KEY_NEW_REVIEWER_ROLE).select("adjudicator")
    at.sidebar.button(key="add_reviewer").click().run()
    with Session(get_engine(env.url)) as s:
        carol = s.exec(select(Reviewer).where(Reviewer.name == "Dr Carol")).one()
    assert carol.role == "adjudicator"
    assert at.session_state[state.KEY_REVIEWER] == carol.id
    assert at.sidebar.selectbox(key=state.KEY_REVIEWER_PICK).value == carol.id
    # a duplicate name is refused with a message
    at.sidebar.text_input(key=state.KEY_NEW_REVIEWER_NAME).input("Dr A")
    at.sidebar.button(key="add_reviewer").click().run()
    assert any("already exists" in e.value for e in at.sidebar.error)
    at.sidebar.selectbox(key=state.KEY_REVIEWER_PICK).select(env.b.id).run()
    assert at.session_state[state.KEY_REVIEWER] == env.b.id
