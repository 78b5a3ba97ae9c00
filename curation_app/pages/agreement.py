"""Agreement: reviewer vs reviewer on blind double reviews, and the extractor vs the settled
labels. Definitions are in ``pipeline/agreement.py``.

Kappa is computed between the two assigned reviewers of each finished double review only (the
adjudicator is not a rater), per category on CheXpert's 1 / -1 / 0 / blank fold, with the
number of pairs and a bootstrap 95% interval; below 10 pairs a figure is marked too few to read.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from curation_app import charts, state
from db import queries
from pipeline import agreement


def _fmt(value: float | None, pct: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:.1%}" if pct else f"{value:.2f}"


def _interval(f: agreement.KappaFigure) -> str:
    if not f.readable:
        return f"too few pairs to read (n = {f.n} < {agreement.MIN_PAIRS})"
    return f"95% CI {_fmt(f.low)} – {_fmt(f.high)} · n = {f.n}"


def _reviewer_section(figures: list[agreement.KappaFigure], attributes: dict) -> None:
    st.subheader("Reviewer vs reviewer (blind double reviews)")
    overall, per_category = figures[0], figures[1:]
    c = st.columns(4)
    c[0].metric("Double reviews finished", f"{overall.n:,}")
    c[1].metric("Cohen's kappa (all categories)",
                _fmt(overall.kappa) if overall.readable else "too few",
                help="pooled over (report, category) pairs; interval by report bootstrap")
    c[2].metric("Percent agreement (categories)", _fmt(overall.percent, pct=True))
    c[3].caption(_interval(overall))
    c = st.columns(3)
    for col, name in zip(c, ("presence", "severity", "side"), strict=True):
        share, n = attributes[name]
        col.metric(f"{name.capitalize()} agreement", _fmt(share, pct=True),
                   help=f"over {n} proposal(s) both reviewers answered")
    if not per_category:
        st.info("No double review has been finished by both reviewers yet.")
        return
    st.dataframe(pd.DataFrame([{"category": f.category, "pairs": f.n,
                                "kappa": f.kappa if f.readable else None,
                                "95% low": f.low, "95% high": f.high,
                                "agreement": f.percent,
                                "note": "" if f.readable else "too few pairs to read"}
                               for f in per_category]), hide_index=True, width="stretch",
                 column_config={"agreement": st.column_config.NumberColumn(format="percent"),
                                **{k: st.column_config.NumberColumn(format="%.2f")
                                   for k in ("kappa", "95% low", "95% high")}})
    if any(f.readable and f.kappa is not None for f in per_category):
        st.plotly_chart(charts.kappa_chart(per_category), width="stretch")


def _extractor_section(rows: list[dict]) -> None:
    st.subheader("Extractor vs settled labels")
    st.caption("Per extractor version and category, at the (category, presence) level: "
               "precision = kept as proposed / proposed; recall = kept as proposed / settled "
               "findings (added or changed ones count as missed).")
    if not rows:
        st.info("No report is settled yet.")
        return
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="percent")
                                for c in ("precision", "recall")})
    st.plotly_chart(charts.validation_chart(rows), width="stretch")


def main() -> None:
    st.title("Agreement")
    with state.db_session() as session:
        pairs = queries.double_review_pairs(session=session)
        validation = queries.extractor_validation_data(session=session)
    figures, attributes = agreement.double_review_figures(pairs)
    _reviewer_section(figures, attributes)
    _extractor_section(agreement.extractor_validation(validation))


main()
