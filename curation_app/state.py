"""App state in one place: cached resources, session-state keys, query-param names.

``st.cache_resource`` holds the engine (one pool per process); pages open short sessions per run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import streamlit as st
from sqlalchemy.engine import Engine
from sqlmodel import Session

from db.engine import init_db
from pipeline.settings import Settings, get_settings

# query parameters (shareable links: ?study=12)
QP_STUDY = "study"

# session-state keys
KEY_PAGE = "studies_page"
KEY_DATASET = "studies_dataset"
KEY_SPLIT = "studies_split"
KEY_SEARCH = "studies_search"
KEY_PAGE_SIZE = "studies_page_size"

ALL = "All"


@st.cache_resource
def settings() -> Settings:
    return get_settings()


@st.cache_resource
def engine(url: str) -> Engine:
    """Migrated engine for ``url``: the app never runs on a schema behind the code."""
    return init_db(url)


@contextmanager
def db_session() -> Iterator[Session]:
    with Session(engine(settings().database_url), expire_on_commit=False) as session:
        yield session


def data_path(relative: str | None) -> Path | None:
    """Absolute path of a stored pixel file, or None when it is missing on disk."""
    if not relative:
        return None
    path = settings().data_dir / relative
    return path if path.is_file() else None
