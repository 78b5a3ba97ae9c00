"""Error analysis: the curated labels the model doubts, and findings the reports may lack.

The run's zero-shot scores (its index) are set against the store's curated labels as they are
now (``pipeline/index/errors.py`` defines every figure). A row lists a label the calibrated
model finds more likely wrong than right; "Review" opens its report on the review page, and a
label fixed there leaves the list the next time this page runs.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from curation_app import analysis, state
from curation_app.widgets import pager
from db import queries
from pipeline import vocab
from pipeline.evaluate.labels import LabelError
from pipeline.index import errors

PAGE_SIZE = 20


def _fmt(v) -> str:
    return "—" if v is None else f"{v:.3f}"


def _category_table(a, flags, oos: bool) -> None:
    rows = errors.category_table(a, out_of_sample_only=oos)
    keep = ~a.in_sample if oos else slice(None)
    for j, row in enumerate(rows):
        row["cleanlab flags"] = int(flags[keep, j].sum())
    df = pd.DataFrame(rows)
    df["auc"] = df["auc"].map(_fmt)
    st.dataframe(df.rename(columns={"n_pos": "positives", "n_neg": "negatives", "tp": "TP",
                                    "fp": "FP", "fn": "FN", "tn": "TN"}),
                 hide_index=True, width="stretch")


def _suspect_rows(a, flags, kind: str, category: str | None, oos: bool, page_key: str) -> None:
    found = errors.suspects(a, kind=kind, category=category, out_of_sample_only=oos)
    if not found:
        st.success("The model agrees with every label here.")
        return
    page = pager(len(found), PAGE_SIZE, page_key)
    shown = found[page.offset:page.offset + PAGE_SIZE]
    page.caption("Rows", len(shown))
    with state.db_session() as session:
        cards = queries.list_study_cards([s.study_id for s in shown], session=session)
    col_of = {c: j for j, c in enumerate(a.categories)}
    row_of = {int(s): i for i, s in enumerate(a.study_ids)}
    for s in shown:
        card = cards.get(s.study_id)
        key = f"err_{kind}_{s.study_id}_{s.category}"
        with st.container(border=True, key=key):
            thumb, info, action = st.columns([1, 6, 1])
            with thumb:
                analysis.thumbnail(card, width=80)
            label = ("present" if s.label == 1 else "absent" if s.mentioned else
                     "not mentioned")
            cl = " · cleanlab flags it" if flags[row_of[s.study_id], col_of[s.category]] else ""
            info.markdown(f"**Study {s.study_id}** · **{s.category}** curated *{label}* · "
                          f"model {s.prob:.2f} (raw {s.score:.2f}) · suspicion "
                          f"{s.suspicion:.2f}{cl}")
            info.caption(f"{s.split} split{' · trained on' if s.in_sample else ''} · "
                         f"{analysis.findings_line(card)}")
            with action:
                analysis.review_button(card, key=f"review_{kind}_{s.study_id}_{s.category}")


def main() -> None:
    st.title("Error analysis")
    run = analysis.pick_run()
    if run is None:
        return
    index = state.run_index(run.run_dir)
    c = st.columns([2, 2, 3])
    category = c[0].selectbox("Category", [state.ALL, *vocab.category_ids()],
                              key=state.KEY_ERR_CATEGORY)
    oos = c[1].toggle("Only studies the run did not train on", key=state.KEY_ERR_SCOPE)
    proposed = c[2].toggle("Count unreviewed extractions as labels", key=state.KEY_ERR_PROPOSED)
    with state.db_session() as session:
        splits = queries.list_splits(session=session)
    try:
        labels, label_splits = errors.store_labels(state.settings().database_url, splits,
                                                   proposed)
    except LabelError as exc:
        st.info(f"Nothing to analyse: {exc}.")
        return
    a = errors.analyse(labels, label_splits, index)
    if not a.categories:
        st.info("No category has both a positive and a negative label among the indexed studies.")
        return
    flags = state.cleanlab_flags(a.y, a.score)
    st.caption(f"{len(a.study_ids)} labelled studies ({int(a.in_sample.sum())} trained on: "
               "their scores are in-sample, weaker evidence) · per-category AUC of the "
               "zero-shot score against the curated labels; counts of the model's answer "
               "(calibrated probability ≥ 0.5)")
    _category_table(a, flags, oos)
    pick = None if category == state.ALL else category
    if pick is not None and pick not in a.categories:
        st.info(f"{pick}: no positive and negative labels to compare among the indexed studies.")
        return
    st.subheader("Label-error candidates")
    st.caption("Curated findings the model disagrees with, most suspicious first.")
    _suspect_rows(a, flags, "label", pick, oos, state.KEY_ERR_PAGE)
    st.subheader("Possibly missed findings")
    st.caption("Categories the report's findings never mention, where the image scores high.")
    _suspect_rows(a, flags, "missed", pick, oos, state.KEY_ERR_MISSED_PAGE)


main()
