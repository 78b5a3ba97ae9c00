"""Agreement: how the extractor fares against reviewers, and how reviewers agree with each other.

Definitions are in ``pipeline/agreement.py``'s docstring.
"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from curation_app import state
from db import queries
from pipeline import agreement

OUTCOME_COLOURS = {"accepted": "#2ca02c", "edited": "#1f77b4", "rejected": "#d62728",
                   "added": "#9467bd"}


def _fmt(value: float | None, pct: bool = True) -> str:
    if value is None:
        return "—"
    return f"{value:.1%}" if pct else f"{value:.3f}"


def _extractor_section(rows: list[dict]) -> None:
    st.subheader("Extractor vs reviewers")
    st.caption("Of each extractor version's reviewed findings: the share accepted as-is, edited, "
               "rejected; 'added': findings reviewers added that it missed. Recall proxy = kept "
               "/ (kept + added).")
    if not any(r["reviewed"] or r["added"] for r in rows):
        st.info("No finding has been reviewed yet.")
        return
    df = pd.DataFrame(rows)
    st.dataframe(df[["extractor", "version", "category", "reviewed", "accepted_share",
                     "edited_share", "rejected_share", "added", "recall_proxy", "proposed"]],
                 hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="percent") for c in
                                ("accepted_share", "edited_share", "rejected_share",
                                 "recall_proxy")})
    long = df.melt(id_vars=["version", "category"],
                   value_vars=["accepted", "edited", "rejected", "added"],
                   var_name="outcome", value_name="findings")
    long = long[long.findings > 0]
    fig = px.bar(long, x="findings", y="category", color="outcome", orientation="h",
                 facet_col="version", color_discrete_map=OUTCOME_COLOURS,
                 height=80 + 22 * long.category.nunique())
    fig.update_layout(margin={"l": 0, "r": 0, "t": 30})
    st.plotly_chart(fig, width="stretch")


def _category_section(rows: list[dict]) -> None:
    st.subheader("Per category (CheXpert fold)")
    st.caption("On fully reviewed reports, what each extractor version first proposed and what "
               "review settled, each folded to one answer per category (present > uncertain > "
               "absent); agreement = share of the reports naming the category where the two "
               "answers agree.")
    if not rows:
        st.info("No report has been fully reviewed yet.")
        return
    st.dataframe(pd.DataFrame(rows)[["extractor", "version", "category", "reports", "agreement",
                                     "extractor_only", "review_only", "other_presence"]],
                 hide_index=True, width="stretch",
                 column_config={"agreement": st.column_config.NumberColumn(format="percent")})


def _reviewer_section(result: agreement.ReviewerAgreement, names: dict[int, str]) -> None:
    st.subheader("Reviewer vs reviewer")
    st.caption("Findings decided by two or more reviewers; label: accepted as-is vs not "
               "(edited or rejected). Every pair of reviewers on a finding is one item.")
    c = st.columns(4)
    c[0].metric("Findings with ≥2 reviewers", f"{result.n_findings:,}")
    c[1].metric("Reviewer pairs", f"{result.n_items:,}")
    c[2].metric("Percent agreement", _fmt(result.percent))
    c[3].metric("Cohen's kappa", _fmt(result.kappa, pct=False))
    if result.pairs:
        st.dataframe(pd.DataFrame([{
            "reviewer A": names.get(p.reviewer_a, p.reviewer_a),
            "reviewer B": names.get(p.reviewer_b, p.reviewer_b), "findings": p.n,
            "agreement": p.percent, "kappa": p.kappa} for p in result.pairs]),
            hide_index=True, width="stretch",
            column_config={"agreement": st.column_config.NumberColumn(format="percent"),
                           "kappa": st.column_config.NumberColumn(format="%.3f")})


def main() -> None:
    st.title("Agreement")
    with state.db_session() as session:
        rows = agreement.extractor_summary(queries.review_status_counts(session=session),
                                           queries.added_finding_counts(session=session))
        categories = agreement.category_agreement(*queries.list_category_answers(session=session))
        decisions = agreement.effective_decisions(queries.list_decision_events(session=session))
        names = {r.id: r.name for r in queries.list_reviewers(session=session)}
    _extractor_section(rows)
    _category_section(categories)
    _reviewer_section(agreement.reviewer_agreement(decisions), names)


main()
