"""End to end: a reviewer opens the app in chromium, pages through studies and opens one."""

from __future__ import annotations

import pytest

from db.engine import session_scope
from tests.factories import make_study, wait_idle

pytestmark = pytest.mark.browser


def test_browse_and_open_study(streamlit_server, page, db_url, data_dir, tmp_path):
    with session_scope(db_url) as s:
        for i in range(23):
            make_study(s, key=f"b{i}", dataset="openi", data_dir=data_dir,
                       report=f"FINDINGS: Patient {i} has a small right pleural effusion.\n"
                              f"IMPRESSION: Right effusion {i}.")
    page.goto(streamlit_server, wait_until="domcontentloaded")
    page.get_by_text("Studies 1–20 of 23").wait_for(timeout=30_000)
    wait_idle(page)
    # thumbnails are real <img> elements served by streamlit's media endpoint
    page.locator("img").nth(19).wait_for()
    srcs = [page.locator("img").nth(i).get_attribute("src") for i in range(20)]
    assert all("/media/" in (s or "") for s in srcs), srcs

    # keyed widgets carry the CSS class st-key-<key>
    page.locator(".st-key-open_5").get_by_role("button", name="Open", exact=True).click()
    page.get_by_role("heading", name="Study 5").wait_for(timeout=30_000)
    assert "study=5" in page.url
    page.get_by_text("Right effusion 4.").wait_for()
    page.screenshot(path=str(tmp_path / "study.png"))

    wait_idle(page)
    page.get_by_role("button", name="← All studies").click()
    page.get_by_text("Studies 1–20 of 23").wait_for(timeout=30_000)
    assert "study=" not in page.url

    wait_idle(page)
    page.get_by_test_id("stSidebarNav").get_by_text("Data").click()
    page.get_by_role("heading", name="Extraction coverage").wait_for(timeout=30_000)
    assert page.get_by_test_id("stMetric").first.inner_text().split() == ["Studies", "23"]
