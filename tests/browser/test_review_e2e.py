"""End to end in chromium: reviewer A signs in and reviews an assigned study with the keyboard
(accept, one-click edit, undo), staying signed in across a reload; reviewer B, on the same
double-reviewed study, sees none of A's answers; an adjudicator settles the dispute. A
screenshot of every page is saved under the test's output folder."""

from __future__ import annotations

import time

import pytest
from sqlmodel import Session, select

from db.engine import get_engine, session_scope
from db.models import ReviewAnswer, ReviewerRole, Settlement
from tests.factories import (
    assign,
    make_account,
    make_reviewable_report,
    settled,
    sign_in,
    wait_idle,
)

pytestmark = pytest.mark.browser


def answers(db_url, reviewer_id) -> dict:
    with Session(get_engine(db_url)) as s:
        return {a.finding_id: (str(a.status), a.severity and str(a.severity)) for a in s.exec(
            select(ReviewAnswer).where(ReviewAnswer.reviewer_id == reviewer_id))}


def until(check, timeout_s: float = 20):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.2)
    raise AssertionError("condition never held")


def shoot(page, path) -> None:
    """A screenshot once the rerun has painted (charts render a moment after the script)."""
    wait_idle(page)
    page.wait_for_timeout(4000)
    page.screenshot(path=str(path), full_page=True)


def press(page, key: str) -> None:
    """A key press once no rerun is in flight (one during a rerun can be dropped)."""
    page.wait_for_timeout(300)
    wait_idle(page)
    page.get_by_role("heading", level=1).first.click()  # focus off any input
    page.keyboard.press(key)
    page.wait_for_timeout(300)
    wait_idle(page)


def test_keyboard_review_blind_second_reader_and_adjudication(streamlit_server, page, db_url,
                                                              data_dir, tmp_path):
    with session_scope(db_url) as s:
        report, (eff, ptx, cardio) = make_reviewable_report(s, data_dir=data_dir)
        a, b = make_account(s, name="Dr Alice"), make_account(s, name="Dr Bob")
        make_account(s, name="Dr Judge", role=ReviewerRole.adjudicator)
        make_account(s, name="Ada", role=ReviewerRole.admin)
        assign(s, report.id, a, b)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    base = streamlit_server

    page.goto(base, wait_until="domcontentloaded")
    settled(page, "login_name", "input")
    shoot(page, shots / "sign-in.png")
    sign_in(page, base, "Dr Alice")
    settled(page, "review_next").click()
    page.get_by_role("heading", name=f"Report {report.id}").wait_for(timeout=30_000)
    wait_idle(page)
    shoot(page, shots / "review.png")
    press(page, "a")  # accept the current finding (the effusion)
    until(lambda: answers(db_url, a.id).get(eff.id) == ("accepted", None))
    press(page, "x")  # reject the next one
    until(lambda: answers(db_url, a.id).get(ptx.id) == ("rejected", None))
    press(page, "u")  # undo it
    until(lambda: ptx.id not in answers(db_url, a.id))
    press(page, "k")  # back to the undone finding; then a one-click edit of its severity
    wait_idle(page)
    page.locator(f".st-key-quick_{ptx.id}_severity_v0 button", has_text="severe").click()
    until(lambda: answers(db_url, a.id).get(ptx.id) == ("edited", "severe"))
    press(page, "j")
    press(page, "a")
    until(lambda: answers(db_url, a.id).get(cardio.id) == ("accepted", None))
    # still signed in after a reload (the session cookie)
    page.reload(wait_until="domcontentloaded")
    page.get_by_text("Signed in as Dr Alice").wait_for(timeout=30_000)
    page.get_by_text("3 of 3 decided").wait_for(timeout=30_000)

    context = page.context.browser.new_context(viewport={"width": 1400, "height": 1000})
    bob = context.new_page()
    sign_in(bob, base, "Dr Bob")
    bob.goto(f"{base}/?report={report.id}", wait_until="domcontentloaded")
    bob.get_by_text("0 of 3 decided").wait_for(timeout=30_000)
    wait_idle(bob)
    text = bob.get_by_test_id("stMain").inner_text()
    assert "accepted" not in text and "edited" not in text and "Alice" not in text
    for _ in range(3):
        press(bob, "a")
    until(lambda: len(answers(db_url, b.id)) == 3)
    context.close()

    judge_ctx = page.context.browser.new_context(viewport={"width": 1400, "height": 1000})
    judge = judge_ctx.new_page()
    sign_in(judge, base, "Dr Judge")
    judge.get_by_role("link", name="Adjudication").click()
    settled(judge, f"adj_open_{report.id}").click()
    settled(judge, f"adj_pick_{a.id}")
    shoot(judge, shots / "adjudication.png")
    settled(judge, f"adj_pick_{a.id}").click()
    with Session(get_engine(db_url)) as s:
        until(lambda: s.exec(select(Settlement.how).where(
            Settlement.report_id == report.id)).first() == "adjudicated")
    judge_ctx.close()

    admin_ctx = page.context.browser.new_context(viewport={"width": 1400, "height": 1000})
    admin = admin_ctx.new_page()
    sign_in(admin, base, "Ada")
    # by URL: with more than ten pages the sidebar folds some links under "View more"
    for name, path in (("Studies", "studies"), ("Dashboard", "dashboard"),
                       ("Agreement", "agreement"), ("Export", "export"),
                       ("Knowledge", "knowledge"), ("Data", "data"),
                       ("Accounts & assignments", "admin")):
        admin.goto(f"{base}/{path}", wait_until="domcontentloaded")
        admin.get_by_role("heading", name=name).first.wait_for(timeout=60_000)
        wait_idle(admin)
        shoot(admin, shots / f"{name.split()[0].lower()}.png")
    admin.goto(f"{base}/studies?study={report.study_id}", wait_until="domcontentloaded")
    admin.get_by_text("settled · adjudicated").wait_for(timeout=30_000)
    shoot(admin, shots / "study.png")
    admin_ctx.close()
    assert len(list(shots.glob("*.png"))) == 11
