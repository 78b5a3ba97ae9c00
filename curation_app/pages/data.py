"""Data: what the store holds, how far extraction got, and every recorded error."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from curation_app import state
from db import queries

PRESENCE_COLOURS = {"present": "#d62728", "uncertain": "#ff7f0e", "absent": "#2ca02c"}


def _metrics(counts: dict[str, int]) -> None:
    shown = [("Studies", "study"), ("Images", "image"), ("Reports", "report"),
             ("Findings", "finding"), ("IKI entries", "knowledgeentry"),
             ("Ingest errors", "ingesterror"), ("Extraction errors", "extractionerror")]
    for col, (label, table) in zip(st.columns(len(shown)), shown, strict=True):
        col.metric(label, f"{counts[table]:,}")


def _findings_chart(rows: list[tuple[str, str, int]]) -> None:
    if not rows:
        st.info("No findings yet: run `python -m pipeline.extract --db …`.")
        return
    df = pd.DataFrame(rows, columns=["category", "presence", "findings"])
    fig = px.bar(df, x="findings", y="category", color="presence", orientation="h",
                 color_discrete_map=PRESENCE_COLOURS, height=40 + 22 * df.category.nunique())
    fig.update_layout(yaxis={"categoryorder": "total ascending"}, margin={"l": 0, "r": 0, "t": 10})
    st.plotly_chart(fig, use_container_width=True)


def main() -> None:
    st.title("Data")
    with state.db_session() as session:
        _metrics(queries.count_rows(session=session))
        st.subheader("Extraction coverage")
        coverage = queries.extraction_coverage(session=session)
        if coverage:
            st.dataframe(pd.DataFrame(coverage), hide_index=True, use_container_width=True)
        else:
            st.caption("No extraction has run on this store.")
        st.subheader("Findings by category")
        _findings_chart(queries.findings_by_category(session=session))
        st.subheader("Ingest errors")
        ingest = queries.list_ingest_errors(session=session)  # open ones: see IngestError
        if ingest:
            st.dataframe(pd.DataFrame([{"dataset": e.dataset, "item": e.item, "error": e.message,
                                        "at": e.created_at} for e in ingest]),
                         hide_index=True, use_container_width=True)
        else:
            st.caption("None open (errors of studies a later run stored whole are resolved).")
        st.subheader("Extraction errors")
        extraction = queries.list_extraction_errors(session=session)
        if extraction:
            st.dataframe(pd.DataFrame([{"report": e.report_id, "extractor": e.extractor,
                                        "version": e.extractor_version, "error": e.message,
                                        "at": e.created_at} for e in extraction]),
                         hide_index=True, use_container_width=True)
        else:
            st.caption("None recorded.")


main()
