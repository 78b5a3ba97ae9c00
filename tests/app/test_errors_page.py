"""AppTest of the Error-analysis page on a tiny trained run: rows are the library's ranking of
the store's labels as they are now, each opens its report on the review page, and a label fixed
there leaves the list on the next run."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from curation_app import state
from db import queries
from db.engine import session_scope
from db.models import Finding, Report
from pipeline.index import errors
from pipeline.index.files import load_run_index
from tests.factories import make_account, make_indexed_run, make_reviewer, run_page

APP = Path(__file__).resolve().parents[2] / "streamlit_app.py"


@pytest.fixture
def indexed(app_store, db_url, data_dir, tmp_path):
    return make_indexed_run(db_url, data_dir, tmp_path / "runs" / "tiny")


def _analysis(db_url, run):
    labels, splits = errors.store_labels(db_url, ["test", "train"])
    return errors.analyse(labels, splits, load_run_index(run))


def _rows(at, kind: str) -> list[tuple[int, str]]:
    prefix = f"review_{kind}_"
    return [(int(k.split("_")[2]), "_".join(k.split("_")[3:])) for k in
            (b.key for b in at.button) if k.startswith(prefix)]


def test_rows_are_the_ranking_and_a_fixed_label_leaves(indexed, db_url):
    at = run_page("errors")
    a = _analysis(db_url, indexed)
    want = [(s.study_id, s.category) for s in errors.suspects(a, "label")][:20]
    assert want and _rows(at, "label") == want
    assert all(not b.disabled for b in at.button if b.key.startswith("review_label_"))
    table = at.dataframe[0].value
    assert set(table["category"]) == set(a.categories)
    assert (table[["TP", "FP", "FN", "TN"]].sum(axis=1) == table["positives"]
            + table["negatives"]).all()
    # the reviewer fixes the top row's label to the model's answer, as the review page would
    sid, category = want[0]
    top = errors.suspects(a, "label")[0]
    with session_scope(db_url) as s:
        reviewer = make_reviewer(s)
        finding = s.exec(select(Finding).join(Report, Report.id == Finding.report_id).where(
            Report.study_id == sid, Finding.category == category)).first()
        if top.label == 1:  # a present finding the image does not show: reject it
            result = queries.decide_finding(finding.id, "reject", version=finding.version,
                                            reviewer=reviewer, session=s)
        else:  # an explicit "no X" the image shows: edit it to present
            result = queries.decide_finding(
                finding.id, "edit", version=finding.version, reviewer=reviewer, session=s,
                changes={"presence": "present", "evidence_text": "Lungs are clear"})
        assert result.ok, result.message
    at.run()
    assert (sid, category) not in _rows(at, "label")


def test_out_of_sample_only_and_one_category(indexed, db_url):
    at = run_page("errors")
    at.toggle(key="errors_out_of_sample").set_value(True).run()
    a = _analysis(db_url, indexed)
    test_ids = {int(s) for s, split in zip(a.study_ids, a.splits, strict=True) if split == "test"}
    assert {sid for sid, _ in _rows(at, "label") + _rows(at, "missed")} <= test_ids
    at.toggle(key="errors_out_of_sample").set_value(False).run()
    at.selectbox(key="errors_category").set_value("cardiomegaly").run()
    assert {c for _, c in _rows(at, "label") + _rows(at, "missed")} <= {"cardiomegaly"}
    assert _rows(at, "label") == [(s.study_id, s.category) for s in
                                  errors.suspects(a, "label", "cardiomegaly")][:20]


def test_a_row_opens_its_report_on_the_review_page(indexed, db_url):
    with session_scope(db_url) as s:
        reviewer = make_account(s, name="Dr Alice")
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.session_state[state.KEY_REVIEWER] = reviewer.id  # signed in (the sign-in form sets it)
    at.run()
    at.switch_page("curation_app/pages/errors.py").run()
    sid, _ = _rows(at, "label")[0]
    with session_scope(db_url) as s:
        report_id = s.exec(select(Report.id).where(Report.study_id == sid)).first()
    next(b for b in at.button if b.key.startswith(f"review_label_{sid}_")).click().run()
    assert not at.exception
    assert at.query_params["report"] == str(report_id)
    assert any(h.value == f"Report {report_id}" for h in at.subheader)


def test_no_labels_yet(app_store, db_url, data_dir, tmp_path):
    at = run_page("errors")
    assert "python -m pipeline.index" in at.info[0].value
