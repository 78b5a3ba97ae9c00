"""Plotly figures shared by the Agreement and Dashboard pages."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from pipeline.agreement import KappaFigure


def kappa_chart(figures: list[KappaFigure]) -> go.Figure:
    """Kappa per category with its bootstrap 95% interval (readable categories only)."""
    rows = [f for f in figures if f.readable and f.kappa is not None]
    df = pd.DataFrame({"category": [f.category for f in rows], "kappa": [f.kappa for f in rows],
                       "plus": [(f.high - f.kappa) if f.high is not None else 0 for f in rows],
                       "minus": [(f.kappa - f.low) if f.low is not None else 0 for f in rows],
                       "n": [f.n for f in rows]})
    fig = px.bar(df, x="kappa", y="category", orientation="h", error_x="plus",
                 error_x_minus="minus", hover_data=["n"], range_x=[-1, 1],
                 height=80 + 24 * max(len(rows), 1))
    fig.update_layout(margin={"l": 0, "r": 0, "t": 10}, yaxis={"autorange": "reversed"})
    return fig


def validation_chart(rows: list[dict]) -> go.Figure:
    """Precision and recall per category, one facet per extractor version."""
    df = pd.DataFrame(rows)
    long = df.melt(id_vars=["version", "category"], value_vars=["precision", "recall"],
                   var_name="measure", value_name="value").dropna()
    fig = px.bar(long, x="value", y="category", color="measure", barmode="group",
                 orientation="h", facet_col="version", range_x=[0, 1],
                 height=80 + 28 * max(long.category.nunique(), 1))
    fig.update_layout(margin={"l": 0, "r": 0, "t": 30})
    return fig
