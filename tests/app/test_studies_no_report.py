"""A study whose report never made it into the store says so on the Studies page, in the list
and when opened, instead of showing a blank column."""

from __future__ import annotations

from sqlmodel import select

from db.engine import session_scope
from db.models import Report, Study
from tests.factories import run_page
from tests.factories import make_study


def test_study_without_report_says_no_report_stored(app_store, data_dir):
    with session_scope(app_store) as s:
        study = make_study(s, key="noreport", data_dir=data_dir)
        for report in s.exec(select(Report).where(Report.study_id == study.id)):
            s.delete(report)
        study_id = s.exec(select(Study.id)).one()
    at = run_page("studies")
    assert any(c.value == "no report stored" for c in at.caption)
    at = run_page("studies", study=str(study_id))
    assert any("No report stored for this study" in i.value for i in at.info)
