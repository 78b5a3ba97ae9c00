"""Widgets the index pages share (Similarity, Error analysis, SSM): the run picker with its
stale banner, and study cards with a link to the study or its review page."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from curation_app import state
from db import queries
from db.queries import StudyCard

REVIEWED = ("accepted", "edited", "added")


@dataclass(frozen=True)
class IndexedRun:
    name: str
    run_dir: Path
    training_run_id: int | None


def indexed_runs() -> list[IndexedRun]:
    """Runs with an index on disk, newest index first (EmbeddingIndex rows of ``pipeline.index``)."""
    from pipeline.index.files import MANIFEST

    with state.db_session() as session:
        rows = queries.list_embedding_indexes(session=session)
    seen, out = set(), []
    for row in rows:
        folder = Path(row.path)
        if row.kind != "image" or folder in seen or not (folder / MANIFEST).is_file():
            continue
        seen.add(folder)
        out.append(IndexedRun(folder.parent.name, folder.parent, row.training_run_id))
    return out


def pick_run() -> IndexedRun | None:
    """The run picker every index page starts with, and whether its index is current."""
    runs = indexed_runs()
    if not runs:
        st.info("No indexed run yet: train one (`python -m pipeline.train --out runs/NAME`), "
                "then `python -m pipeline.index --run runs/NAME`.")
        return None
    names = [r.name for r in runs]
    if st.session_state.get(state.KEY_INDEX_RUN) not in names:
        st.session_state[state.KEY_INDEX_RUN] = names[0]
    name = st.selectbox("Run", names, key=state.KEY_INDEX_RUN)
    run = runs[names.index(name)]
    status = state.index_state(str(run.run_dir), state.index_version(run.run_dir))
    command = f"`python -m pipeline.index --run {run.run_dir}`"
    if status.stale:
        st.warning(f"This {status.describe()}. Figures below use the index as it was; "
                   f"{command} brings it up to date.")
    elif status.new_studies:
        st.info(f"{status.new_studies} studies were ingested after the index was built; "
                f"{command} adds them (no rebuild).")
    return run


def findings_line(card: StudyCard | None) -> str:
    """The study's curated findings as a short line (proposed ones marked, rejected left out)."""
    if card is None:
        return "not in the store"
    parts = []
    for f in card.findings:
        if f.status == "rejected":
            continue
        words = " ".join(p for p in (f.severity, f.side, f.region) if p)
        mark = "" if f.status in REVIEWED else " (proposed)"
        text = f"no {f.category}" if f.presence == "absent" else f"{words} {f.category}".strip()
        parts.append(("? " if f.presence == "uncertain" else "") + text + mark)
    return " · ".join(parts) or "no finding"


def thumbnail(card: StudyCard | None, width: int = 120) -> None:
    path = state.data_path(card.thumb_path) if card else None
    if path:
        st.image(str(path), width=width)
    else:
        st.caption("no image")


def open_study_button(study_id: int, key: str, label: str = "Open") -> None:
    if st.button(label, key=key):
        st.switch_page(state.PAGE_STUDIES, query_params={state.QP_STUDY: str(study_id)})


def review_button(card: StudyCard | None, key: str, label: str = "Review") -> None:
    """Opens the study's report on the review page (disabled without a report)."""
    report_id = card.report_id if card else None
    if st.button(label, key=key, disabled=report_id is None):
        st.switch_page(state.PAGE_REVIEW, query_params={state.QP_REPORT: str(report_id)})


def selected_study(event) -> int | None:
    """The study id of the first point picked on a plotly chart (its customdata[0])."""
    points = ((event or {}).get("selection") or {}).get("points") or []
    for point in points:
        data = point.get("customdata")
        if data is not None:
            value = data[0] if isinstance(data, list | tuple) else data
            return int(value)
    return None
