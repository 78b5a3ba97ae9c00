"""Dashboard: review progress per reviewer and per category, throughput per day, kappa per
category and the extractor's precision / recall against the settled labels (plotly)."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from curation_app import charts, state
from db import queries
from pipeline import agreement


def _progress(rows: list[queries.Progress], categories: list[tuple[str, int, int]]) -> None:
    c = st.columns(2)
    with c[0]:
        st.markdown("**Reports done / assigned, per reviewer**")
        if rows:
            df = pd.DataFrame([{"reviewer": p.name, "done": p.done,
                                "to do": p.assigned - p.done} for p in rows])
            fig = px.bar(df, x=["done", "to do"], y="reviewer", orientation="h",
                         height=80 + 30 * len(rows))
            fig.update_layout(margin={"l": 0, "r": 0, "t": 10}, legend_title=None)
            st.plotly_chart(fig, width="stretch")
        else:
            st.info("Nothing assigned yet.")
    with c[1]:
        st.markdown("**Proposals settled / total, per category**")
        if categories:
            df = pd.DataFrame([{"category": c, "settled": d, "open": n - d}
                               for c, n, d in categories])
            fig = px.bar(df, x=["settled", "open"], y="category", orientation="h",
                         height=80 + 22 * len(categories))
            fig.update_layout(margin={"l": 0, "r": 0, "t": 10}, legend_title=None)
            st.plotly_chart(fig, width="stretch")
        else:
            st.info("No proposals yet.")


def main() -> None:
    st.title("Dashboard")
    with state.db_session() as session:
        mine_team = queries.progress_by_reviewer(session=session)
        categories = queries.category_progress(session=session)
        per_day = queries.answers_per_day(session=session)
        pairs = queries.double_review_pairs(session=session)
        validation = queries.extractor_validation_data(session=session)
    _progress(mine_team, categories)
    st.markdown("**Answers per day**")
    if per_day:
        fig = px.bar(pd.DataFrame(per_day, columns=["day", "reviewer", "answers"]), x="day",
                     y="answers", color="reviewer", height=280)
        fig.update_layout(margin={"l": 0, "r": 0, "t": 10})
        st.plotly_chart(fig, width="stretch")
    else:
        st.info("No answer recorded yet.")
    figures, _ = agreement.double_review_figures(pairs)
    st.markdown("**Cohen's kappa per category** (double reviews; 95% bootstrap interval)")
    if any(f.readable for f in figures[1:]):
        st.plotly_chart(charts.kappa_chart(figures[1:]), width="stretch")
    else:
        st.info(f"Too few finished double reviews to read kappa (n = {figures[0].n} < "
                f"{agreement.MIN_PAIRS}).")
    rows = agreement.extractor_validation(validation)
    st.markdown("**Extractor precision / recall vs the settled labels**")
    if rows:
        st.plotly_chart(charts.validation_chart(rows), width="stretch")
    else:
        st.info("No report is settled yet.")


main()
