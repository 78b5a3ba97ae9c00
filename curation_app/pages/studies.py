"""Studies: browse ingested studies (thumbnail, view, report), filter, open one."""

from __future__ import annotations

import streamlit as st

from curation_app import state
from curation_app.widgets import pager, render_study, report_snippet
from db import queries

PAGE_SIZES = (10, 20, 50)


def _filters(session) -> tuple[str | None, str | None, str | None, int]:
    datasets = [state.ALL, *queries.list_datasets(session=session)]
    splits = [state.ALL, *queries.list_splits(session=session)]
    c1, c2, c3, c4 = st.columns([2, 2, 4, 1])
    dataset = c1.selectbox("Dataset", datasets, key=state.KEY_DATASET)
    split = c2.selectbox("Split", splits, key=state.KEY_SPLIT)
    text = c3.text_input("Report contains", key=state.KEY_SEARCH, placeholder="e.g. effusion")
    size = c4.selectbox("Per page", PAGE_SIZES, index=1, key=state.KEY_PAGE_SIZE)
    return (None if dataset == state.ALL else dataset, None if split == state.ALL else split,
            text.strip() or None, size)


def _study_list(session) -> None:
    dataset, split, text, size = _filters(session)
    total = queries.count_studies(session=session, dataset=dataset, split=split, text=text)
    if total == 0:
        st.info("No studies match. Ingest some with `python -m pipeline.ingest` or `make demo`.")
        return
    page = pager(total, size, state.KEY_PAGE)
    rows = queries.list_studies(session=session, dataset=dataset, split=split, text=text,
                                offset=page.offset, limit=size)
    page.caption("Studies", len(rows))
    for row in rows:
        with st.container(border=True):
            thumb, meta, report, action = st.columns([1, 2, 6, 1])
            path = state.data_path(row.image.thumb_path) if row.image else None
            if path:
                thumb.image(str(path), width=96)
            else:
                thumb.caption("no image")
            meta.markdown(f"**Study {row.study.id}**  \n{row.study.dataset} · {row.study.split or '—'}")
            meta.caption(f"view {row.image.view or '—'} · {row.n_images} image(s) · "
                         f"{row.n_findings} finding(s)" if row.image else
                         f"no image · {row.n_findings} finding(s)")
            if row.report:
                report.markdown(report_snippet(row.report))
            else:  # its report failed to ingest (the Data page lists why) or never existed
                report.caption("no report stored")
            if action.button("Open", key=f"open_{row.study.id}"):
                st.query_params[state.QP_STUDY] = str(row.study.id)
                st.rerun()


def main() -> None:
    st.title("Studies")
    with state.db_session() as session:
        study_id = st.query_params.get(state.QP_STUDY)
        if study_id and study_id.isdigit():
            if st.button("← All studies"):
                del st.query_params[state.QP_STUDY]
                st.rerun()
            detail = queries.get_study(session=session, study_id=int(study_id))
            if detail is None:
                st.error(f"Study {study_id} does not exist.")
            else:
                render_study(detail)
        else:
            _study_list(session)


main()
