"""Small rendering helpers shared by pages."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from curation_app import state
from db.models import Finding, Presence, Report
from db.queries import StudyDetail

SNIPPET_CHARS = 280


@dataclass(frozen=True)
class Page:
    number: int  # 1-based
    count: int  # pages in all
    offset: int  # rows before this page
    total: int  # rows in all

    def caption(self, noun: str, n_rows: int) -> None:
        first = self.offset + 1
        st.caption(f"{noun} {first}–{first + n_rows - 1} of {self.total} · "
                   f"page {self.number} of {self.count}")


def pager(total: int, size: int, key: str) -> Page:
    """A page-number input over ``total`` rows, ``size`` per page (clamped when filters shrink)."""
    count = max(1, math.ceil(total / size))
    number = min(int(st.number_input("Page", min_value=1, max_value=count, step=1, key=key)), count)
    return Page(number, count, (number - 1) * size, total)


def report_snippet(report: Report | None, limit: int = SNIPPET_CHARS) -> str:
    """Impression first (what a reader scans for), then findings; the raw text if unsectioned."""
    if report is None:
        return ""
    parts = [f"**Impression:** {report.impression}" if report.impression else "",
             f"**Findings:** {report.findings}" if report.findings else ""]
    text = " ".join(" ".join(p for p in parts if p).split()) or " ".join(report.text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + " …"


def render_study(detail: StudyDetail) -> None:
    s = detail.study
    st.subheader(f"Study {s.id}")
    st.caption(f"{s.dataset} · split {s.split or '—'} · date (shifted) {s.study_date or '—'} · "
               f"key {s.study_key[:12]}")
    left, right = st.columns([1, 1])
    with left:
        if not detail.images:
            st.info("This study has no images.")
        for img in detail.images:
            path = state.data_path(img.display_path or img.path)
            caption = (f"{img.view or 'view ?'} · {img.width}×{img.height} · "
                       f"{img.bits_stored}-bit {img.source_format}")
            if path:
                st.image(str(path), caption=caption, use_container_width=True)
            else:
                st.warning(f"Pixel file missing: {caption}")
    with right:
        if not detail.reports:
            st.info("No report stored for this study: it cannot be reviewed until one is "
                    "ingested (the Data page lists ingest errors).")
        for rep in detail.reports:
            findings = [f for f in detail.findings if f.report_id == rep.id]
            if st.button("Review findings", key=f"review_report_{rep.id}"):
                st.switch_page(state.PAGE_REVIEW, query_params={state.QP_REPORT: str(rep.id)})
            if findings:
                st.caption("Evidence: :red-background[present] · :orange-background[uncertain] · "
                           ":green-background[absent]")
                st.markdown(highlight_evidence(rep.text, findings))
            else:
                st.markdown(escape_markdown(rep.text).replace("\n", "  \n"))
        if detail.findings:
            st.markdown("**Findings extracted**")
            st.dataframe(pd.DataFrame([{
                "category": f.category, "presence": f.presence.value,
                "severity": f.severity.value if f.severity else None,
                "side": f.side.value if f.side else None, "region": f.region,
                "evidence": f.evidence_text, "status": f.status.value, "extractor": f.extractor,
            } for f in detail.findings]), hide_index=True, use_container_width=True)


MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|$<>:~])")
PRESENCE_COLOUR = {Presence.present: "red", Presence.uncertain: "orange", Presence.absent: "green"}
PRESENCE_RANK = {Presence.present: 0, Presence.uncertain: 1, Presence.absent: 2}


def escape_markdown(text: str) -> str:
    """Report text shown literally: no emphasis, links, LaTeX ($) or directives from it."""
    return MARKDOWN_SPECIALS.sub(r"\\\1", text)


def highlight_evidence(text: str, findings: list[Finding]) -> str:
    """The report as markdown with each finding's evidence span coloured by its presence.

    Spans shared by several findings take the strongest presence (present > uncertain > absent);
    an overlapping later span is left plain rather than nested.
    """
    spans = sorted({(f.evidence_start, f.evidence_end, f.presence) for f in findings
                    if f.evidence_start is not None and f.evidence_end
                    and text[f.evidence_start:f.evidence_end] == f.evidence_text},
                   key=lambda s: (s[0], PRESENCE_RANK[s[2]]))
    out, pos = [], 0
    for start, end, presence in spans:
        if start < pos:
            continue
        out.append(escape_markdown(text[pos:start]))
        out.append(f":{PRESENCE_COLOUR[presence]}-background[{escape_markdown(text[start:end])}]")
        pos = end
    out.append(escape_markdown(text[pos:]))
    return "".join(out).replace("\n", "  \n")
