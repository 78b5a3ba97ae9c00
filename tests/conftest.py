"""Shared fixtures: a temporary migrated SQLite store per test, and a data dir beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from db.engine import get_engine, init_db


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """URL of a fresh SQLite file, migrated to head (the real file, WAL and all)."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    init_db(url)
    return url


@pytest.fixture
def engine(db_url: str):
    return get_engine(db_url)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d
