"""Export: download the settled labels as a CheXpert-style CSV, JSONL or Parquet.

The same files as ``python -m pipeline.export`` (pipeline/export/write.py); only settled
reports are included, with pseudonymous keys only.
"""

from __future__ import annotations

from datetime import UTC, datetime, time

import streamlit as st

from curation_app import reviewer as rv
from curation_app import state
from db import queries
from pipeline.export.write import FORMATS, ExportFilter, load, render

STATUSES = (*queries.KEPT_STATUSES, "rejected")
MIME = {"chexpert": "text/csv", "jsonl": "application/jsonl",
        "parquet": "application/vnd.apache.parquet"}
SUFFIX = {"chexpert": "csv", "jsonl": "jsonl", "parquet": "parquet"}


def _filters(session) -> tuple[str, ExportFilter]:
    c = st.columns(3)
    fmt = c[0].selectbox("Format", FORMATS, key="export_format",
                         format_func={"chexpert": "CheXpert CSV (one row per image)",
                                      "jsonl": "JSONL (one row per finding)",
                                      "parquet": "Parquet (one row per finding)"}.get)
    statuses = c[1].multiselect("Finding status", STATUSES, default=list(queries.KEPT_STATUSES),
                                key="export_status")
    reviewers = [state.ALL, *(r.name for r in queries.list_accounts(session=session))]
    reviewer = c[2].selectbox("Reviewed by", reviewers, key="export_reviewer")
    c = st.columns(3)
    split = c[0].selectbox("Split", [state.ALL, *queries.list_splits(session=session)],
                           key="export_split")
    dataset = c[1].selectbox("Dataset", [state.ALL, *queries.list_datasets(session=session)],
                             key="export_dataset")
    since = c[2].date_input("Settled since", value=None, key="export_since")
    pick = {k: None if v == state.ALL else v for k, v in
            (("reviewer", reviewer), ("split", split), ("dataset", dataset))}
    return fmt, ExportFilter(tuple(statuses), pick["reviewer"],
                             datetime.combine(since, time(), UTC) if since else None,
                             pick["split"], pick["dataset"])


def main() -> None:
    st.title("Export")
    if rv.require_actor(what="export") is None:
        return
    with state.db_session() as session:
        fmt, flt = _filters(session)
        n = queries.count_settled_reports(session=session, dataset=flt.dataset, split=flt.split,
                                          since=flt.since, reviewer=flt.reviewer)
    st.caption(f"{n:,} settled report(s) match. Reports still in review or disputed are not "
               "exported.")
    st.download_button(f"Download {SUFFIX[fmt].upper()}", lambda: build(fmt, flt),
                       file_name=f"medfilip-labels.{SUFFIX[fmt]}", mime=MIME[fmt],
                       key="export_download", type="primary", disabled=not n)


def build(fmt: str, flt: ExportFilter) -> bytes:
    """The file, made when the button is clicked (not on every rerun of the page)."""
    with state.db_session() as session:
        return render(fmt, *load(session, flt))


main()
