"""App state in one place: cached resources, session-state keys, query-param names.

``st.cache_resource`` holds the engine (one pool per process); pages open short sessions per run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st
from sqlalchemy.engine import Engine
from sqlmodel import Session

from db.engine import init_db, session_scope
from pipeline.settings import Settings, get_settings

if TYPE_CHECKING:  # the index and model code (torch, FAISS) load when an index page needs them
    from pipeline.index.files import RunIndex
    from pipeline.index.ssmview import LabelBlock, PairTable
    from pipeline.index.status import IndexStatus
    from pipeline.train.inference import LoadedRun

# query parameters (shareable links: ?study=12, review?report=7)
QP_STUDY = "study"
QP_REPORT = "report"

# page files, for st.switch_page (paths relative to streamlit_app.py)
PAGE_REVIEW = "curation_app/pages/review.py"
PAGE_ADJUDICATE = "curation_app/pages/adjudicate.py"
PAGE_STUDIES = "curation_app/pages/studies.py"

# session-state keys
KEY_PAGE = "studies_page"
KEY_DATASET = "studies_dataset"
KEY_SPLIT = "studies_split"
KEY_SEARCH = "studies_search"
KEY_PAGE_SIZE = "studies_page_size"

# the signed-in account's Reviewer.id (absent: nobody signed in, read-only); set by
# curation_app.auth at sign-in, and by tests to act as an account
KEY_REVIEWER = "reviewer_id"

# review page: queue paging, the finding whose edit form is open, and the message a
# write callback leaves for the rerun that follows it
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

# index pages (Similarity, Error analysis, SSM): the run whose index they read, shared by all
KEY_INDEX_RUN = "index_run"
KEY_SIM_STUDY = "similar_study"  # the study whose neighbours are shown
KEY_SIM_K = "similar_k"
KEY_SIM_TEXT = "similar_text"  # the free-text query
KEY_SIM_COLOUR = "similar_colour"  # what colours the 2-D map
KEY_SIM_MAP = "similar_map"  # the map chart (its selection opens a study)
KEY_ERR_CATEGORY = "errors_category"
KEY_ERR_SCOPE = "errors_out_of_sample"  # only studies the run did not train on
KEY_ERR_PROPOSED = "errors_include_proposed"  # unreviewed extractions count as labels
KEY_ERR_PAGE = "errors_page"
KEY_ERR_MISSED_PAGE = "errors_missed_page"
KEY_SSM_SUBSET = "ssm_subset"  # all | category | reviewer | training batch
KEY_SSM_CATEGORY = "ssm_category"
KEY_SSM_REVIEWER = "ssm_reviewer"
KEY_SSM_SEED = "ssm_batch_seed"
KEY_SSM_BATCH = "ssm_batch_size"

ALL = "All"


@st.cache_resource
def settings() -> Settings:
    return get_settings()


@st.cache_resource
def rule_extractor():
    """The offline rule extractor, for proposing a pasted sentence's fields (Review page)."""
    from pipeline.extract.rules.engine import RuleExtractor

    return RuleExtractor()


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


# --- indexes (python -m pipeline.index): loaded once per index version -----------------------


def index_version(run_dir: Path) -> int:
    """Changes whenever ``python -m pipeline.index`` rewrites the run's index (its manifest)."""
    from pipeline.index.files import MANIFEST, index_dir

    path = index_dir(run_dir) / MANIFEST
    return path.stat().st_mtime_ns if path.exists() else 0


@st.cache_resource(max_entries=4, show_spinner="Loading the index…")
def _run_index(path: str, version: int) -> RunIndex:
    from pipeline.index.files import load_run_index

    return load_run_index(Path(path))


def run_index(run_dir: Path) -> RunIndex:
    """The run's index; a rebuild or update (a new manifest) loads the new one."""
    return _run_index(str(run_dir), index_version(run_dir))


@st.cache_data(ttl=30, show_spinner=False)
def index_state(run_dir: str, version: int) -> IndexStatus:
    """The stale check (checkpoint and label snapshot), rechecked at most every 30 s."""
    from pipeline.index.status import index_status

    return index_status(Path(run_dir), settings().database_url)


@st.cache_resource(max_entries=2, show_spinner="Loading the model…")
def _loaded_run(path: str, checkpoint: str) -> LoadedRun:
    from pipeline.train.inference import load_run

    return load_run(Path(path))


@st.cache_data(max_entries=64, show_spinner=False)
def embed_query(run_dir: str, checkpoint: str, text: str) -> np.ndarray:
    """(D,) the run's text-tower embedding of a free-text query."""
    from pipeline.train.inference import embed_texts

    return embed_texts(_loaded_run(run_dir, checkpoint), [text])[0]


@st.cache_data(max_entries=16, show_spinner=False)
def ssm_block(run_dir: str, version: int, rows: tuple[int, ...]) -> LabelBlock:
    """S of a label subset in clustered order (the SSM page's heatmap)."""
    from pipeline.index.ssmview import similarity_block

    return similarity_block(run_index(Path(run_dir)), np.asarray(rows, np.int64))


@st.cache_data(max_entries=16, show_spinner=False)
def text_image_pairs(run_dir: str, version: int, rows: tuple[int, ...]) -> tuple[PairTable, dict]:
    """Open question 3 of a label subset: its pairs and their Spearman table."""
    from pipeline.index.ssmview import spearman_table, text_vs_image

    pairs = text_vs_image(run_index(Path(run_dir)), np.asarray(rows, np.int64))
    return pairs, spearman_table(pairs)


@st.cache_data(max_entries=8, show_spinner=False)
def cleanlab_flags(y: np.ndarray, score: np.ndarray) -> np.ndarray:
    """(N, C) cells cleanlab's per-class confident learning flags."""
    from pipeline.index.errors import cleanlab_cell_flags_of

    return cleanlab_cell_flags_of(y, score)
