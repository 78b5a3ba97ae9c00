"""App state in one place: cached resources, session-state keys, query-param names.

``st.cache_resource`` holds the engine (one pool per process); pages open short sessions per run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import streamlit as st
from sqlalchemy.engine import Engine
from sqlmodel import Session

from db.engine import init_db, session_scope
from pipeline.settings import Settings, get_settings

# query parameters (shareable links: ?study=12, review?report=7)
QP_STUDY = "study"
QP_REPORT = "report"

# page files, for st.switch_page (paths relative to streamlit_app.py)
PAGE_REVIEW = "curation_app/pages/review.py"

# session-state keys
KEY_PAGE = "studies_page"
KEY_DATASET = "studies_dataset"
KEY_SPLIT = "studies_split"
KEY_SEARCH = "studies_search"
KEY_PAGE_SIZE = "studies_page_size"

# reviewer identity: KEY_REVIEWER holds the current Reviewer.id (None: nobody picked, read-only);
# the sidebar picker's own widget key is separate so pages and tests can set the identity.
KEY_REVIEWER = "reviewer_id"
KEY_REVIEWER_PICK = "reviewer_pick"
KEY_NEW_REVIEWER_NAME = "new_reviewer_name"
KEY_NEW_REVIEWER_ROLE = "new_reviewer_role"
KEY_REVIEWER_ERROR = "new_reviewer_error"  # why the last "Add reviewer" was refused

# review page: queue filters and paging, the finding whose edit form is open, and the message a
# write callback leaves for the rerun that follows it
KEY_Q_DATASET = "review_dataset"
KEY_Q_SPLIT = "review_split"
KEY_Q_CATEGORY = "review_category"
KEY_Q_STATUS = "review_status"
KEY_Q_EXTRACTOR = "review_extractor"
KEY_Q_PAGE = "review_page"
KEY_EDITING = "review_editing"
KEY_FLASH = "review_flash"

# knowledge page
KEY_K_CATEGORY = "knowledge_category"

# runs page: the run shown, the run compared with it (None: none), and per run (suffix: the
# TrainingRun id) the categories whose ROC curves are drawn
KEY_RUN_A = "runs_a"
KEY_RUN_B = "runs_b"
KEY_RUN_ROC = "runs_roc"

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


def db_write() -> AbstractContextManager[Session]:
    """A session for one write: commits on success, rolls back on error or a refused write."""
    return session_scope(engine(settings().database_url))


def flash(kind: str, message: str) -> None:
    """Leave a message (success | error | warning) for the next run of the page to show."""
    st.session_state[KEY_FLASH] = (kind, message)


def show_flash() -> None:
    kind, message = st.session_state.pop(KEY_FLASH, (None, None))
    if kind == "success":
        st.success(message)
        st.toast(message)
    elif kind == "warning":
        st.warning(message)
    elif kind:
        st.error(message)


def run_roots() -> list[Path]:
    """Where run directories are looked for: the working directory (``runs/NAME``, where
    ``python -m pipeline.train --out runs/NAME`` puts them) and the data dir."""
    return [Path.cwd(), settings().data_dir]


def data_path(relative: str | None) -> Path | None:
    """Absolute path of a stored pixel file, or None when it is missing on disk."""
    if not relative:
        return None
    path = settings().data_dir / relative
    return path if path.is_file() else None
