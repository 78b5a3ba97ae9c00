"""AppTest helpers: point the app at the test's store and run one page file."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

PAGES = Path(__file__).resolve().parents[2] / "curation_app" / "pages"


@pytest.fixture
def app_store(db_url, data_dir, monkeypatch):
    """The app's settings read this test's store; per-process caches are cleared around it."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("MEDFILIP_DATA_DIR", str(data_dir))
    st.cache_resource.clear()
    yield db_url
    st.cache_resource.clear()


def run_page(name: str, **query_params) -> AppTest:
    at = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=30)
    for key, value in query_params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at
