"""AppTest of the Review page: my queue, answers by button and by key, one-click edits, the edit
form (errors beside it, kept open), add from a pasted sentence, undo, blind double review."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from curation_app import state
from db.engine import get_engine, session_scope
from db.models import ReviewAnswer, ReviewEvent
from tests.factories import PAGES, assign, make_account, make_reviewable_report, make_study


@pytest.fixture
def env(app_store, data_dir):
    with session_scope(app_store) as s:
        report, findings = make_reviewable_report(s, data_dir=data_dir)
        other, _ = make_reviewable_report(s, key="other")
        make_study(s, key="plain")  # a report with no finding: never in a queue
        a, b = make_account(s, name="Dr A"), make_account(s, name="Dr B")
        assign(s, report.id, a, b)  # a blind double review
        assign(s, other.id, a)
    return SimpleNamespace(url=app_store, report=report, other=other, findings=findings, a=a,
                           b=b)


def review(actor, **query_params) -> AppTest:
    at = AppTest.from_file(str(PAGES / "review.py"), default_timeout=30)
    if actor is not None:
        at.session_state[state.KEY_REVIEWER] = actor.id
    for key, value in query_params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def answers(url, reviewer_id) -> dict[int | None, ReviewAnswer]:
    with Session(get_engine(url)) as s:
        return {a.finding_id: a for a in s.exec(select(ReviewAnswer).where(
            ReviewAnswer.reviewer_id == reviewer_id))}


def badges(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown if "-badge[" in m.value)


def test_queue_shows_my_progress_and_opens_the_next_assigned_report(env):
    at = review(env.a)
    assert "Me: 0 / 2 reports done" in at.get("progress")[0].proto.text
    assert "My reports 1–2 of 2" in " ".join(c.value for c in at.caption)
    at.button(key="review_next").click().run()
    assert at.subheader[0].value == f"Report {env.report.id}"
    assert "0 of 3 decided" in at.get("progress")[0].proto.text
    assert len(at.get("plotly_chart")) == 1  # the windowed image
    assert any("j** / **k** next" in c.value for c in at.caption)  # the keys are listed


def test_accept_reject_and_the_current_finding_moves_on(env):
    f0, f1, f2 = env.findings
    at = review(env.a, report=str(env.report.id))
    assert "▶ **pleural_effusion**" in " ".join(m.value for m in at.markdown)
    assert at.button(key=f"accept_{f0.id}").proto.shortcut == "a"
    assert at.button(key=f"accept_{f1.id}").proto.shortcut == ""
    at.button(key=f"accept_{f0.id}").click().run()
    assert "accepted" in at.success[0].value
    assert at.button(key=f"reject_{f1.id}").proto.shortcut == "x"  # current moved to the next
    at.button(key=f"reject_{f1.id}").click().run()
    mine = answers(env.url, env.a.id)
    assert (mine[f0.id].status, mine[f1.id].status) == ("accepted", "rejected")
    assert "1 of 3" not in at.get("progress")[0].proto.text
    assert "2 of 3 decided" in at.get("progress")[0].proto.text
    assert ":green-badge[accepted]" in badges(at) and ":red-badge[rejected]" in badges(at)


def test_j_and_k_move_the_current_finding(env):
    f0, f1, _ = env.findings
    at = review(env.a, report=str(env.report.id))
    at.button(key="finding_next").click().run()
    assert at.button(key=f"accept_{f1.id}").proto.shortcut == "a"
    at.button(key="finding_prev").click().run()
    assert at.button(key=f"accept_{f0.id}").proto.shortcut == "a"


def test_one_click_edit_of_severity(env):
    f0 = env.findings[0]
    at = review(env.a, report=str(env.report.id))
    at.get("button_group")[1].set_value("moderate").run()  # severity of the current finding
    assert not at.exception, at.exception
    got = answers(env.url, env.a.id)[f0.id]
    assert (got.status, got.severity, got.presence) == ("edited", "moderate", "present")


def test_edit_form_error_is_beside_the_form_which_keeps_what_was_typed(env):
    f = env.findings[1]
    at = review(env.a, report=str(env.report.id))
    at.button(key=f"edit_{f.id}").click().run()
    at.selectbox(key=f"editf_{f.id}_presence").select("uncertain")
    at.text_area(key=f"editf_{f.id}_evidence").input("No pneumothorax is seen")
    at.button(key=f"save_{f.id}").click().run()
    assert "not a verbatim part of the report" in at.error[0].value
    assert at.selectbox(key=f"editf_{f.id}_presence").value == "uncertain"  # still open
    assert f.id not in answers(env.url, env.a.id)
    at.text_area(key=f"editf_{f.id}_evidence").input(" No pneumothorax. ")
    at.button(key=f"save_{f.id}").click().run()
    got = answers(env.url, env.a.id)[f.id]
    assert (got.status, got.presence, got.evidence_text) == ("edited", "uncertain",
                                                             "No pneumothorax.")
    assert not at.error


def test_add_from_a_pasted_sentence_with_proposed_fields(env):
    at = review(env.a, report=str(env.report.id))
    at.text_area(key="addf_evidence").input("Small left pleural effusion.")
    at.button(key="add_propose").click().run()
    assert at.selectbox(key="addf_category").value == "pleural_effusion"
    assert (at.selectbox(key="addf_severity").value, at.selectbox(key="addf_side").value) == (
        "mild", "left")
    at.button(key="add_finding").click().run()
    [added] = [a for a in answers(env.url, env.a.id).values() if a.finding_id is None]
    assert (added.category, added.status, added.side) == ("pleural_effusion", "added", "left")
    assert env.report.text[added.evidence_start:added.evidence_end] == \
        "Small left pleural effusion."


def test_undo_reverts_my_last_answer(env):
    f = env.findings[2]
    at = review(env.a, report=str(env.report.id))
    at.button(key=f"reject_{f.id}").click().run()
    at.button(key="undo").click().run()
    assert "Undid your reject" in at.success[0].value
    assert answers(env.url, env.a.id) == {}
    with Session(get_engine(env.url)) as s:
        assert [e.action for e in s.exec(select(ReviewEvent).where(
            ReviewEvent.entity == "answer").order_by(ReviewEvent.id))] == ["reject", "undo"]


def test_second_reviewer_sees_no_trace_of_the_first(env):
    at = review(env.a, report=str(env.report.id))
    at.button(key="review_accept_all").click().run()
    assert "Accepted 3" in at.success[0].value
    b = review(env.b, report=str(env.report.id))
    assert badges(b).count(":gray-badge[proposed]") == 3
    assert "accepted" not in badges(b) and "Dr A" not in " ".join(
        e.value for e in (*b.markdown, *b.caption))
    assert "0 of 3 decided" in b.get("progress")[0].proto.text


def test_a_report_assigned_to_others_is_read_only(env):
    at = review(env.b, report=str(env.other.id))
    assert "assigned to other reviewers" in at.info[0].value
    assert at.button(key=f"accept_{env.findings[0].id + 3}").disabled


def test_signed_out_the_page_asks_to_sign_in(env):
    at = review(None, report=str(env.report.id))
    assert "Sign in to review" in at.warning[0].value
    assert not at.button
