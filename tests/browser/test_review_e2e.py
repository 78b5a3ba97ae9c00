"""End to end: a reviewer picks their name, opens a report's review page in chromium, accepts one
finding, edits another's presence, reloads and sees the statuses persisted."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from db.engine import get_engine, session_scope
from db.models import Finding
from tests.factories import make_reviewable_report, make_reviewer, settled, wait_idle

pytestmark = pytest.mark.browser


def test_accept_edit_reload(streamlit_server, page, db_url, data_dir, tmp_path):
    with session_scope(db_url) as s:
        report, findings = make_reviewable_report(s, data_dir=data_dir)
        make_reviewer(s, name="Dr Alice")
    effusion, pneumothorax = findings[0].id, findings[1].id

    # from the study view, "Review findings" opens the report's review page
    page.goto(f"{streamlit_server}/?study={report.study_id}", wait_until="domcontentloaded")
    settled(page, f"review_report_{report.id}").click()
    page.get_by_role("heading", name=f"Report {report.id}").wait_for(timeout=30_000)
    assert f"review?report={report.id}" in page.url
    wait_idle(page)
    # read-only until a reviewer is picked in the sidebar
    assert page.locator(f".st-key-accept_{effusion} button").is_disabled()
    settled(page, "reviewer_pick", "input").click()
    page.get_by_role("option", name="Dr Alice (reviewer)").click()
    settled(page, f"accept_{effusion}").click()  # enabled once the rerun has a reviewer
    page.get_by_text(f"Finding {effusion}: accepted.").first.wait_for(timeout=30_000)

    settled(page, f"edit_{pneumothorax}").click()
    presence = settled(page, f"editf_{pneumothorax}_presence", "input")
    presence.click()
    presence.fill("uncertain")  # the selectbox filters its options as one types
    page.get_by_role("option", name="uncertain", exact=True).click()
    settled(page, f"save_{pneumothorax}").click()
    page.get_by_text(f"Finding {pneumothorax}: edited.").first.wait_for(timeout=30_000)
    wait_idle(page)
    page.screenshot(path=str(tmp_path / "review.png"))

    page.reload(wait_until="domcontentloaded")
    page.get_by_role("heading", name=f"Report {report.id}").wait_for(timeout=30_000)
    wait_idle(page)
    assert "accepted" in page.locator(f".st-key-finding_{effusion}").inner_text()
    edited = page.locator(f".st-key-finding_{pneumothorax}").inner_text()
    assert "edited" in edited and "uncertain" in edited
    with Session(get_engine(db_url)) as s:
        assert s.get(Finding, effusion).status == "accepted"
        assert (s.get(Finding, pneumothorax).status,
                s.get(Finding, pneumothorax).presence) == ("edited", "uncertain")
