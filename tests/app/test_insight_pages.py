"""AppTest of the Agreement, Dashboard and Export pages on a reviewed store."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from curation_app import state
from db.engine import get_engine, session_scope
from pipeline.export.write import ExportFilter, load, render
from tests.factories import PAGES, make_reviewed_corpus


@pytest.fixture
def corpus(app_store, data_dir):
    with session_scope(app_store) as s:
        a, b, reports = make_reviewed_corpus(s, n=24, data_dir=data_dir)
    return a


def page(name: str, actor=None) -> AppTest:
    at = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=60)
    if actor is not None:
        at.session_state[state.KEY_REVIEWER] = actor.id
    at.run()
    assert not at.exception, at.exception
    return at


def test_agreement_page_kappa_per_category_with_interval(corpus):
    at = page("agreement")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Double reviews finished"] == "12"
    assert metrics["Presence agreement"] == f"{30 / 36:.1%}"
    kappas, validation = (df.value for df in at.dataframe)
    cardio = kappas.set_index("category").loc["cardiomegaly"]
    assert cardio["pairs"] == 12 and cardio["agreement"] == pytest.approx(0.5)
    assert any("95% CI" in c.value for c in at.caption)
    rules = validation.set_index("category")
    # 24 reports, 6 disputed: 18 settled; B's rejected cardiomegaly never settles
    assert rules.loc["pleural_effusion", "precision"] == 1.0
    assert rules.loc["pleural_effusion", "tp"] == 18
    assert len(at.get("plotly_chart")) == 2


def test_agreement_with_few_pairs_says_too_few(app_store):
    with session_scope(app_store) as s:
        make_reviewed_corpus(s, n=6)
    at = page("agreement")
    assert {m.label: m.value for m in at.metric}["Cohen's kappa (all categories)"] == "too few"
    assert any("too few pairs to read" in c.value for c in at.caption)


def test_dashboard_charts(corpus):
    at = page("dashboard")
    assert len(at.get("plotly_chart")) == 5
    assert not at.info


def test_export_page_offers_the_csv(corpus):
    at = page("export", corpus)
    assert "18 settled report(s) match" in at.caption[0].value
    assert not at.get("download_button")[0].proto.disabled
    with Session(get_engine(state.settings().database_url)) as s:
        data = render("chexpert", *load(s, ExportFilter()))
    assert len(pd.read_csv(io.BytesIO(data))) == 18


def test_export_needs_sign_in(corpus):
    at = page("export")
    assert "Sign in to export" in at.warning[0].value and not at.get("download_button")
