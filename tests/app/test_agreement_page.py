"""The Agreement page's per-category section (CheXpert fold of instance findings)."""

from __future__ import annotations

from db import queries
from db.engine import session_scope
from tests.factories import make_reviewable_report, make_reviewer, run_page


def test_per_category_agreement_after_a_report_is_fully_reviewed(app_store):
    with session_scope(app_store) as s:
        _, (eff, ptx, heart) = make_reviewable_report(s)
        a = make_reviewer(s, name="Dr A")
    at = run_page("agreement")
    assert any("No report has been fully reviewed" in i.value for i in at.info)
    with session_scope(app_store) as s:
        for f, action in ((eff, "accept"), (ptx, "accept"), (heart, "reject")):
            queries.decide_finding(f.id, action, version=f.version, reviewer=a, session=s)
    at = run_page("agreement")
    tables = [df.value for df in at.dataframe]
    per_cat = next(t for t in tables if "extractor_only" in t.columns).set_index("category")
    assert per_cat.loc["pleural_effusion", "agreement"] == 1.0
    assert per_cat.loc["pneumothorax", "agreement"] == 1.0
    assert per_cat.loc["cardiomegaly", "extractor_only"] == 1
