"""Runs: training runs with their config and label snapshot, loss and learning rate over steps,
zero-shot AUC per category (seen / unseen), ROC curves, and two runs side by side.

Runs come from ``python -m pipeline.train``; their figures from ``python -m pipeline.evaluate``
(see ``pipeline/evaluate/zeroshot.py`` for what each one means).
"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from curation_app import state
from db import queries
from pipeline.evaluate.runs import RunView, auc_rows, roc_rows, run_view, summary_row

KIND_COLOURS = {"seen": "#1f77b4", "unseen": "#ff7f0e"}
RUN_COLOURS = ("#1f77b4", "#d62728")


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _curves(view: RunView) -> None:
    if not view.history:
        st.caption("No training log (metrics.jsonl) found for this run.")
        return
    df = pd.DataFrame(view.history)
    for column, title in (("loss", "Loss"), ("lr", "Learning rate")):
        if column not in df:
            continue
        fig = px.line(df, x="step", y=column, height=220, title=title)
        fig.update_layout(margin={"l": 0, "r": 0, "t": 30, "b": 0})
        st.plotly_chart(fig, width="stretch", key=f"{column}_{view.id}")


def _auc_bars(view: RunView, rows: list[dict]) -> None:
    df = pd.DataFrame(rows).sort_values("auc")
    df["label"] = df.category + " (n+ " + df.n_pos.astype(str) + ")"
    fig = px.bar(df, x="auc", y="label", color="kind", orientation="h",
                 color_discrete_map=KIND_COLOURS, height=60 + 22 * len(df),
                 range_x=[0, 1], hover_data=["f1", "accuracy"])
    fig.add_vline(x=0.5, line_dash="dot", line_color="grey")
    fig.update_layout(margin={"l": 0, "r": 0, "t": 10, "b": 0}, yaxis_title=None)
    st.plotly_chart(fig, width="stretch", key=f"auc_{view.id}")


def _roc(view: RunView, rows: list[dict]) -> None:
    cats = [r["category"] for r in rows]
    unseen = [r["category"] for r in rows if r["kind"] == "unseen"]
    default = unseen + [c for c in cats if c not in unseen][:4]
    picked = st.multiselect("ROC curves of", cats, default=default,
                            key=f"{state.KEY_RUN_ROC}_{view.id}")
    points = roc_rows(view, picked)
    if not points:
        return
    fig = px.line(pd.DataFrame(points), x="fpr", y="tpr", color="category", height=360,
                  range_x=[0, 1], range_y=[0, 1])
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", showlegend=False,
                             line={"dash": "dot", "color": "grey"}))
    fig.update_layout(margin={"l": 0, "r": 0, "t": 10, "b": 0})
    st.plotly_chart(fig, width="stretch", key=f"roc_{view.id}")


def _evaluation(view: RunView) -> None:
    ev = view.evaluation
    if not ev:
        st.info(f"Not evaluated yet: `python -m pipeline.evaluate --run runs/{view.name}`.")
        return
    mean, ml = ev.get("mean") or {}, ev.get("multi_label") or {}
    r10 = ((ev.get("retrieval") or {}).get("image_to_text") or {}).get("R@10")
    c = st.columns(4)
    c[0].metric(f"Mean AUC (seen, n+ ≥ {mean.get('min_positives', '?')})", _fmt(mean.get("auc_seen")))
    c[1].metric("Unseen AUC", _fmt(mean.get("auc_unseen")))
    c[2].metric("Multi-label AUC", _fmt(ml.get("macro")))
    c[3].metric("Image→text R@10", _fmt(r10))
    st.caption(f"{ev.get('n_studies', '?')} {ev.get('split', '')} studies, labels from "
               f"{ev.get('labels', '?')}; evaluated {ev.get('evaluated_at', '')}")
    rows = auc_rows(view)
    if not rows:
        st.caption("No category with both classes was scored.")
        return
    _auc_bars(view, rows)
    if ev.get("unseen"):
        st.markdown("**Held-out categories** (AUC vs all images, vs abnormal images only, and "
                    "minus the nearest seen category's prompt on the same task)")
        st.dataframe(pd.DataFrame([{"category": c, **{k: u.get(k) for k in (
            "n_pos", "auc", "auc_abnormal", "nearest_seen", "nearest_auc", "vs_nearest",
            "vs_nearest_abnormal")}} for c, u in ev["unseen"].items()]),
            hide_index=True, width="stretch")
    _roc(view, rows)
    rt = ev.get("retrieval") or {}
    if rt.get("image_to_text"):
        st.dataframe(pd.DataFrame([{"direction": d.replace("_", " "), **rt[d]}
                                   for d in ("image_to_text", "text_to_image")]),
                     hide_index=True, width="stretch")


def _panel(view: RunView) -> None:
    st.subheader(view.name)
    st.caption(f"status **{view.status}** · snapshot `{view.snapshot_sha256[:12]}` · "
               f"started {view.started_at:%Y-%m-%d %H:%M}" if view.started_at else view.status)
    with st.expander("Config", expanded=False):
        st.json(view.config)
        st.caption(f"checkpoint: `{view.checkpoint_path or '—'}` · files: "
                   f"`{view.run_dir or 'not found'}`")
    _curves(view)
    _evaluation(view)


def _compare(a: RunView, b: RunView) -> None:
    rows = auc_rows(a) + auc_rows(b)
    if not rows:
        return
    st.subheader(f"{a.name} vs {b.name}")
    df = pd.DataFrame(rows)
    fig = px.bar(df, x="category", y="auc", color="run", barmode="group", pattern_shape="kind",
                 color_discrete_sequence=RUN_COLOURS, range_y=[0, 1], height=320)
    fig.update_layout(margin={"l": 0, "r": 0, "t": 10, "b": 0})
    st.plotly_chart(fig, width="stretch", key="compare_auc")


def main() -> None:
    st.title("Runs")
    with state.db_session() as session:
        rows = queries.list_training_runs(session=session)
    if not rows:
        st.info("No training run yet: `python -m pipeline.train --db … --out runs/NAME`.")
        return
    views = {r.id: run_view(r, state.run_roots()) for r in rows}
    st.dataframe(pd.DataFrame([summary_row(v) for v in views.values()]), hide_index=True,
                 width="stretch", column_config={
                     "mean_auc": st.column_config.NumberColumn(format="%.3f"),
                     "unseen_auc": st.column_config.NumberColumn(format="%.3f")})
    ids = list(views)
    left, right = st.columns(2)
    a = left.selectbox("Run", ids, format_func=lambda i: views[i].name, key=state.KEY_RUN_A)
    b = right.selectbox("Compare with", [None, *(i for i in ids if i != a)],
                        format_func=lambda i: "—" if i is None else views[i].name,
                        key=state.KEY_RUN_B)
    shown = [views[a]] + ([views[b]] if b is not None else [])
    if len(shown) == 2:
        _compare(*shown)
    for col, view in zip(st.columns(len(shown)), shown, strict=True):
        with col:
            _panel(view)


main()
