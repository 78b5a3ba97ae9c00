"""AppTest fixtures: point the app at the test's store (page runners: tests/factories.py)."""

from __future__ import annotations

import pytest
import streamlit as st


@pytest.fixture
def app_store(db_url, data_dir, monkeypatch):
    """The app's settings read this test's store; per-process caches are cleared around it."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("MEDFILIP_DATA_DIR", str(data_dir))
    st.cache_resource.clear()
    yield db_url
    st.cache_resource.clear()
