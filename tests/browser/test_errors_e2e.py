"""End to end: from an Error-analysis row to that study's review page in chromium; the reviewer
rejects the doubted finding there, goes back, and the row is gone."""

from __future__ import annotations

import pytest
from sqlmodel import select

from db.engine import session_scope
from db.models import Finding, Report
from pipeline.index import errors
from pipeline.index.files import load_run_index
from tests.factories import make_indexed_run, make_reviewer, settled, wait_idle

pytestmark = pytest.mark.browser
PAGE_SIZE = 20  # the page's rows per page


def _doubted_present_finding(db_url, run) -> tuple[int, str]:
    """(study, category) of the highest-ranked doubt about a present finding on page one."""
    labels, splits = errors.store_labels(db_url, ["test", "train"])
    ranked = errors.suspects(errors.analyse(labels, splits, load_run_index(run)), "label")
    top = next(s for s in ranked[:PAGE_SIZE] if s.label == 1)
    return top.study_id, top.category


def test_a_row_opens_review_and_a_fixed_label_leaves(streamlit_server, page, db_url, data_dir,
                                                     tmp_path):
    run = make_indexed_run(db_url, data_dir, tmp_path / "runs" / "tiny")
    with session_scope(db_url) as s:
        make_reviewer(s, name="Dr Alice")
    sid, category = _doubted_present_finding(db_url, run)
    with session_scope(db_url) as s:
        report_id, finding_id = s.exec(
            select(Report.id, Finding.id).join(Finding, Finding.report_id == Report.id)
            .where(Report.study_id == sid, Finding.category == category,
                   Finding.presence == "present")).first()
    row = f"review_label_{sid}_{category}"

    page.goto(f"{streamlit_server}/errors", wait_until="domcontentloaded")
    # the first run imports torch, FAISS, scikit-learn and cleanlab: slow on a busy machine
    page.get_by_role("heading", name="Label-error candidates").wait_for(timeout=180_000)
    settled(page, row, timeout_s=120).click()
    page.get_by_role("heading", name=f"Report {report_id}").wait_for(timeout=30_000)
    assert f"review?report={report_id}" in page.url

    # the reviewer names themself and rejects the finding the model doubts
    settled(page, "reviewer_pick", "input").click()
    page.get_by_role("option", name="Dr Alice (reviewer)").click()
    settled(page, f"reject_{finding_id}").click()
    page.get_by_text(f"Finding {finding_id}: rejected.").first.wait_for(timeout=30_000)

    page.goto(f"{streamlit_server}/errors", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Label-error candidates").wait_for(timeout=60_000)
    wait_idle(page)
    page.get_by_role("heading", name="Possibly missed findings").wait_for(timeout=30_000)
    assert page.locator(f".st-key-{row}").count() == 0
    with session_scope(db_url) as s:
        assert s.get(Finding, finding_id).status == "rejected"
