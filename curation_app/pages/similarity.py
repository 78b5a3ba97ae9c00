"""Similarity: a study's nearest images, images matching a free-text query, and a 2-D map of
every image embedding of a run's index (``python -m pipeline.index``).

Cosines are between L2-normalised embeddings of the run's image tower (a text query goes through
its text tower). Selecting a point on the map opens that study.
"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from curation_app import analysis, state
from db import queries

K_CHOICES = (5, 10, 20, 50)
PER_ROW = 5
EXAMPLE_QUERY = "small left pleural effusion"
COLOURS = ("category", "review status", "split")


def _cards(ids: list[int]) -> dict:
    with state.db_session() as session:
        return queries.list_study_cards(ids, session=session)


def _grid(hits: list[tuple[int, float]], key: str) -> None:
    """Result cards, PER_ROW a row: thumbnail, cosine, curated findings, open button."""
    cards = _cards([s for s, _ in hits])
    for start in range(0, len(hits), PER_ROW):
        cols = st.columns(PER_ROW)
        for col, (sid, cosine) in zip(cols, hits[start:start + PER_ROW], strict=False):
            with col, st.container(border=True, key=f"{key}_hit_{sid}"):
                card = cards.get(sid)
                analysis.thumbnail(card)
                st.markdown(f"**Study {sid}** · cos {cosine:.3f}")
                st.caption(f"{card.split or '—' if card else '—'} · "
                           f"{analysis.findings_line(card)}")
                analysis.open_study_button(sid, key=f"{key}_open_{sid}")


def _by_study(index, k: int) -> None:
    wanted = st.query_params.get(state.QP_STUDY)
    if wanted and wanted.isdigit() and state.KEY_SIM_STUDY not in st.session_state:
        st.session_state[state.KEY_SIM_STUDY] = int(wanted)  # a shared link ?study=ID
    if state.KEY_SIM_STUDY not in st.session_state:
        st.session_state[state.KEY_SIM_STUDY] = int(index.study_ids[0])
    sid = int(st.number_input("Study id", min_value=1, step=1, key=state.KEY_SIM_STUDY))
    if sid not in index.row_of:
        st.warning(f"Study {sid} is not in this index (no image, or ingested after the index "
                   "was built).")
        return
    card = _cards([sid]).get(sid)
    left, right = st.columns([1, 3])
    with left:
        analysis.thumbnail(card, width=180)
    with right:
        st.markdown(f"**Study {sid}** · split {card.split if card else '—'}")
        st.caption(f"Curated findings: {analysis.findings_line(card)}")
        near = index.nearest_labels(index.vectors[index.row_of[sid]], 3)
        if near:
            st.caption("Closest label texts: " + " · ".join(f"{t} ({c:.2f})" for t, c in near))
    st.markdown(f"**{k} nearest images**")
    _grid(index.neighbours(sid, k), "near")


def _by_text(index, run, k: int) -> None:
    text = st.text_input("Describe a finding", key=state.KEY_SIM_TEXT,
                         placeholder=f"e.g. {EXAMPLE_QUERY}").strip()
    if not text:
        st.caption("Type a description: the run's text tower embeds it and the index returns "
                   "the best-matching images.")
        return
    vector = state.embed_query(str(run.run_dir), index.manifest.checkpoint, text)
    st.markdown(f"**{k} images best matching** “{text}”")
    _grid(index.search_vector(vector, k), "text")


def _map_colours(cards: dict, ids: list[int]) -> dict[str, list[str]]:
    category, status, split = [], [], []
    for sid in ids:
        card = cards.get(sid)
        present = sorted({f.category for f in (card.findings if card else ())
                          if f.presence == "present" and f.status != "rejected"})
        category.append(present[0] if len(present) == 1 else "several" if present else
                        "no finding")
        if card is None or not card.findings:
            status.append("no findings")
        else:
            status.append("unreviewed" if not card.n_decided else
                          "in review" if card.n_proposed else "reviewed")
        split.append((card.split if card else None) or "—")
    return {"category": category, "review status": status, "split": split}


def _map(index) -> None:
    if index.map_xy is None:
        st.info("This index has no 2-D map.")
        return
    ids = index.study_ids.tolist()
    colour = st.radio("Colour by", COLOURS, horizontal=True, key=state.KEY_SIM_COLOUR)
    df = pd.DataFrame({"x": index.map_xy[:, 0], "y": index.map_xy[:, 1], "study": ids,
                       **_map_colours(_cards(ids), ids)})
    fig = px.scatter(df, x="x", y="y", color=colour, custom_data=["study"], height=560,
                     hover_data={"study": True, "x": False, "y": False},
                     render_mode="webgl" if len(df) > 2000 else "auto")
    fig.update_traces(marker={"size": 6})
    fig.update_layout(margin={"l": 0, "r": 0, "t": 10, "b": 0}, dragmode="select",
                      xaxis={"visible": False}, yaxis={"visible": False})
    st.caption(f"{index.manifest.map_method.upper()} map of {len(df)} image embeddings; "
               "select a point (click, or box-select) to open its study.")
    event = st.plotly_chart(fig, on_select="rerun", selection_mode=("points", "box"),
                            key=state.KEY_SIM_MAP, width="stretch")
    picked = analysis.selected_study(event)
    if picked is not None:
        st.switch_page(state.PAGE_STUDIES, query_params={state.QP_STUDY: str(picked)})


def main() -> None:
    st.title("Similarity")
    run = analysis.pick_run()
    if run is None:
        return
    index = state.run_index(run.run_dir)
    if not len(index.study_ids):
        st.info("The index holds no image yet.")
        return
    k = st.select_slider("Neighbours", K_CHOICES, value=10, key=state.KEY_SIM_K)
    st.caption(f"{len(index.study_ids)} images · {index.manifest.images['kind']} index · "
               f"{len(index.labels.texts)} label texts")
    by_study, by_text, on_map = st.tabs(["By study", "By text", "Map"])
    with by_study:
        _by_study(index, k)
    with by_text:
        _by_text(index, run, k)
    with on_map:
        _map(index)


main()
