"""AppTest of the Studies page: list, paginate, filter, open a study."""

from __future__ import annotations

import pytest
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from db import queries
from db.engine import session_scope
from db.models import Report
from tests.factories import make_study, run_page


@pytest.fixture
def app_env(app_store, data_dir):
    db_url = app_store
    with session_scope(db_url) as s:
        for i in range(25):
            make_study(s, key=f"a{i}", dataset="openi", split="test" if i % 5 == 0 else "train",
                       report=f"FINDINGS: Study number {i}. Small left effusion.\nIMPRESSION: Effusion {i}.",
                       data_dir=data_dir)
        for i in range(3):
            make_study(s, key=f"d{i}", dataset="demo", split="val",
                       report=f"FINDINGS: Demo {i} lungs are clear.\nIMPRESSION: Normal.")
    return db_url


def captions(at: AppTest) -> str:
    return " ".join(c.value for c in at.caption)


def test_lists_first_page_with_thumbnails(app_env):
    at = run_page("studies")
    assert "Studies 1–20 of 28" in captions(at)
    assert len([b for b in at.button if b.label == "Open"]) == 20
    assert any("**Impression:** Effusion 0." in m.value and "Study number 0." in m.value
               for m in at.markdown)
    # each listed study with an image shows its thumbnail
    assert len(at.get("image")) == 20


def test_paginates(app_env):
    at = run_page("studies")
    at.number_input[0].set_value(2).run()
    assert "Studies 21–28 of 28" in captions(at)
    assert len([b for b in at.button if b.label == "Open"]) == 8


def test_filters_by_dataset_and_split(app_env):
    at = run_page("studies")
    at.selectbox(key="studies_dataset").select("demo").run()
    assert "of 3 " in captions(at)
    at.selectbox(key="studies_dataset").select("openi").run()
    at.selectbox(key="studies_split").select("test").run()
    assert "Studies 1–5 of 5" in captions(at)


def test_search_report_text(app_env):
    at = run_page("studies")
    at.text_input(key="studies_search").input("Demo 2").run()
    assert "Studies 1–1 of 1" in captions(at)


def test_opens_a_study(app_env):
    at = run_page("studies")
    at.button(key="open_3").click().run()
    assert at.query_params.get("study") == ["3"] or at.query_params.get("study") == "3"
    assert at.subheader[0].value == "Study 3"
    assert any("Effusion 2." in m.value.replace("\\", "") for m in at.markdown)


def test_unknown_study_is_an_error(app_env):
    at = run_page("studies", study="9999")
    assert "does not exist" in at.error[0].value


def test_study_shows_evidence_highlighted_by_presence(app_env):
    report = ("FINDINGS: Small left pleural effusion. No pneumothorax. Possible *early* edema.\n"
              "IMPRESSION: Effusion.")
    with session_scope(app_env) as s:
        study = make_study(s, key="hl", report=report)
        report_id = s.exec(select(Report.id).where(Report.study_id == study.id)).one()
        rows = [{"category": c, "presence": p, "evidence_start": report.index(q),
                 "evidence_end": report.index(q) + len(q), "evidence_text": q}
                for c, p, q in [("pleural_effusion", "present", "Small left pleural effusion."),
                                ("pneumothorax", "absent", "No pneumothorax."),
                                ("edema", "uncertain", "Possible *early* edema.")]]
        queries.replace_proposed_findings(report_id, "rules", "1", rows, session=s)
    at = run_page("studies", study=str(study.id))
    [body] = [m.value for m in at.markdown if "background[" in m.value]
    assert ":red-background[Small left pleural effusion\\.]" in body
    assert ":green-background[No pneumothorax\\.]" in body
    # report text is shown literally: its markdown characters are escaped
    assert ":orange-background[Possible \\*early\\* edema\\.]" in body
    assert len(at.dataframe[0].value) == 3
