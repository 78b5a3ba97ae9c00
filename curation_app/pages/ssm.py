"""SSM: the soft label matrix a run trains towards, read off its index.

The label-by-label similarity S of a subset of labels in clustered order; the image-by-text
targets of one sample training batch; and MedFILIP's open question 3 on this store: does the
label texts' similarity track the similarity of their images? (``pipeline/index/ssmview.py``.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from curation_app import analysis, state
from db import queries
from pipeline.index import ssmview

SUBSETS = ("All labels", "Category", "Reviewer", "Training batch")
MAX_LABELS = 1500  # heatmap side; a larger subset keeps the labels carried by most studies
SCATTER_POINTS = 4000  # pairs drawn (the Spearman figures use every pair)
WORST = 15


def _subset(index):
    """(label rows, a caption, the sample batch when it is the subset) of the subset picked."""
    kind = st.radio("Labels", SUBSETS, horizontal=True, key=state.KEY_SSM_SUBSET)
    if kind == "Category":
        groups = sorted(set(index.labels.groups))
        group = st.selectbox("Category (SSM group)", groups, key=state.KEY_SSM_CATEGORY)
        return ssmview.label_subset(index, category=group), f"group {group}", None
    if kind == "Reviewer":
        with state.db_session() as session:
            reviewers = {r.id: r.name for r in queries.list_reviewers(session=session)}
            if not reviewers:
                st.info("No reviewer has decided a finding yet.")
                return np.zeros(0, np.int64), "", None
            rid = st.selectbox("Reviewer", list(reviewers), format_func=reviewers.get,
                               key=state.KEY_SSM_REVIEWER)
            studies = queries.list_reviewer_study_ids(rid, session=session)
        return (ssmview.label_subset(index, study_ids=studies),
                f"labels of the {len(studies)} studies {reviewers[rid]} decided", None)
    if kind == "Training batch":
        batch = _batch(index)
        return np.unique(batch.text_rows), "the text columns of the sample batch below", batch
    return np.arange(len(index.labels.texts)), "every label", None


def _train_studies() -> list[int]:
    with state.db_session() as session:
        return queries.list_split_studies(session=session, split="train")


def _batch(index):
    c = st.columns(2)
    seed = int(c[0].number_input("Batch seed", min_value=0, step=1, key=state.KEY_SSM_SEED))
    size = int(c[1].number_input("Images", min_value=2, max_value=64, value=16, step=1,
                                 key=state.KEY_SSM_BATCH))
    return ssmview.sample_batch(index, _train_studies(), size=size, seed=seed)


def _largest(index, rows: np.ndarray) -> np.ndarray:
    if len(rows) <= MAX_LABELS:
        return rows
    counts = np.bincount(index.labels.pair_label, minlength=len(index.labels.texts))[rows]
    return np.sort(rows[np.argsort(-counts, kind="stable")[:MAX_LABELS]])


def _heatmap(run, rows: np.ndarray) -> None:
    block = state.ssm_block(str(run.run_dir), state.index_version(run.run_dir),
                            tuple(int(r) for r in rows))
    # the texts are the axes (distinct by construction), so a hover names both labels without
    # sending a K x K grid of strings
    # built unvalidated: plotly's validation copies the K x K array (0.4 s at K = 1,000); the
    # trace is plain arrays and constants
    heat = go.Heatmap(z=block.matrix, x=block.texts, y=block.texts, zmin=0, zmax=1,
                      colorscale="Viridis", _validate=False,
                      hovertemplate="%{y}<br>%{x}<br>S = %{z:.3f}<extra></extra>")
    fig = go.Figure(heat, _validate=False)
    fig.update_layout(height=620, margin={"l": 0, "r": 0, "t": 10, "b": 0},
                      xaxis={"showticklabels": False}, yaxis={"showticklabels": False,
                                                              "autorange": "reversed"})
    st.plotly_chart(fig, width="stretch", key="ssm_heatmap")


def _targets(index, batch) -> None:
    if not len(batch.study_ids):
        st.info("No training-split study carries a label in this index.")
        return
    texts = [index.labels.texts[r] for r in batch.text_rows]
    fig = go.Figure(go.Heatmap(z=batch.target, x=texts, y=[f"study {s}" for s in batch.study_ids],
                               zmin=0, zmax=1, colorscale="Viridis",
                               hovertemplate="%{y}<br>%{x}<br>target %{z:.3f}<extra></extra>"))
    fig.update_layout(height=120 + 18 * len(batch.study_ids),
                      margin={"l": 0, "r": 0, "t": 10, "b": 0},
                      xaxis={"showticklabels": False}, yaxis={"autorange": "reversed"})
    st.caption(f"{len(batch.study_ids)} images × {len(texts)} texts: target = max over the "
               "image's labels of S[label, text] (model/ssm.py, batch_targets).")
    st.plotly_chart(fig, width="stretch", key="ssm_targets")


def _question3(run, index, rows: np.ndarray) -> None:
    st.subheader("Does text similarity track image similarity?")
    pairs, table = state.text_image_pairs(str(run.run_dir), state.index_version(run.run_dir),
                                          tuple(int(r) for r in rows))
    if len(pairs.text) < 3:
        st.info("Too few labels with indexed studies in this subset for pairs.")
        return
    rng = np.random.default_rng(0)
    show = np.sort(rng.choice(len(pairs.text), min(SCATTER_POINTS, len(pairs.text)),
                              replace=False))
    texts = index.labels.texts
    df = pd.DataFrame({"text similarity": pairs.text[show], "image similarity": pairs.image[show],
                       "pair": np.where(pairs.same_group[show], "same category", "different"),
                       "a": [texts[i] for i in pairs.left[show]],
                       "b": [texts[i] for i in pairs.right[show]]})
    fig = px.scatter(df, x="text similarity", y="image similarity", color="pair",
                     hover_data={"a": True, "b": True}, opacity=0.6, height=420,
                     render_mode="webgl")
    fig.update_layout(margin={"l": 0, "r": 0, "t": 10, "b": 0})
    st.plotly_chart(fig, width="stretch", key="ssm_q3")
    c = st.columns(2)
    c[0].metric("Spearman, same-category pairs", _fmt(table["same_group"]["spearman"]),
                help=f"{table['same_group']['pairs']} pairs: the ones the SSM links")
    c[1].metric("Spearman, all pairs", _fmt(table["all"]["spearman"]),
                help=f"{table['all']['pairs']} pairs")
    per = [{"category": g, "pairs": v["pairs"], "spearman": _fmt(v["spearman"])}
           for g, v in table["per_group"].items()]
    if per:
        st.dataframe(pd.DataFrame(per), hide_index=True, width="stretch")
    worst = ssmview.worst_pairs(pairs, WORST)
    if worst:
        st.markdown("**Where the SSM teaches noise**: same-category pairs whose text similarity "
                    "ranks far above their image similarity")
        st.dataframe(pd.DataFrame([{"label A": texts[pairs.left[p]], "label B": texts[pairs.right[p]],
                                    "text sim": round(float(pairs.text[p]), 3),
                                    "image sim": round(float(pairs.image[p]), 3)}
                                   for p in worst]), hide_index=True, width="stretch")


def _fmt(v) -> str:
    return "—" if v is None else f"{v:.3f}"


def main() -> None:
    st.title("SSM")
    run = analysis.pick_run()
    if run is None:
        return
    index = state.run_index(run.run_dir)
    if not index.labels.texts:
        st.info("This index holds no label text (no curated labels when it was built).")
        return
    rows, what, batch = _subset(index)
    if len(rows) == 0:
        st.info("No label in this subset.")
        return
    shown = _largest(index, rows)
    st.caption(f"S of {len(shown)} labels ({what}"
               + (f"; the {MAX_LABELS} carried by most studies" if len(shown) < len(rows) else "")
               + "), clustered (average linkage); hover a cell for both label texts.")
    _heatmap(run, shown)
    st.subheader("Targets of a sample training batch")
    _targets(index, batch or _batch(index))
    _question3(run, index, shown)


main()
