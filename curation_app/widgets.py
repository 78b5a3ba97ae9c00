"""Small rendering helpers shared by pages."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from curation_app import state
from db.models import Report
from db.queries import StudyDetail

SNIPPET_CHARS = 280


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
        for rep in detail.reports:
            for title, body in (("Indication", rep.indication), ("Comparison", rep.comparison),
                                ("Findings", rep.findings), ("Impression", rep.impression)):
                if body:
                    st.markdown(f"**{title}**")
                    st.write(body)
            if not any((rep.findings, rep.impression, rep.indication, rep.comparison)):
                st.write(rep.text)
        if detail.findings:
            st.markdown("**Findings extracted**")
            st.dataframe(pd.DataFrame([{
                "category": f.category, "presence": f.presence.value,
                "severity": f.severity.value if f.severity else None,
                "side": f.side.value if f.side else None, "region": f.region,
                "evidence": f.evidence_text, "status": f.status.value, "extractor": f.extractor,
            } for f in detail.findings]), hide_index=True, use_container_width=True)
