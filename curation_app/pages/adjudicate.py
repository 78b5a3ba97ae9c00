"""Adjudication: reports whose two reviewers disagree, both answers side by side with the image
and the evidence; pick one, or write a third. Adjudicators and admins only (checked in db too).

``adjudicate?report=ID`` opens one dispute. The decision is an audit event, settles the label
(final) and takes the report off the queue.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from curation_app import reviewer as rv
from curation_app import state, viewer
from curation_app.widgets import highlight_evidence, pager
from db import queries
from db.evidence import locate_quote
from db.models import Presence, Severity, Side
from db.queries import Actor, Dispute, Permission
from pipeline import vocab

PAGE_SIZE = 20
KEY_PAGE = "adjudicate_page"
KEY_ERROR = "adjudicate_error"
COLUMNS = ["finding_id", "category", "presence", "severity", "side", "region", "evidence_text"]


def _open(report_id: int | None) -> None:
    if report_id is None:
        st.query_params.clear()
    else:
        st.query_params[state.QP_REPORT] = str(report_id)


def _queue(session) -> None:
    total = queries.count_disputes(session=session)
    if total == 0:
        st.info("No disputed report: every double review so far agreed or is settled.")
        return
    page = pager(total, PAGE_SIZE, KEY_PAGE)
    rows = queries.list_disputes(session=session, offset=page.offset, limit=PAGE_SIZE)
    page.caption("Disputed reports", len(rows))
    for row in rows:
        with st.container(border=True, horizontal=True, vertical_alignment="center"):
            st.markdown(f"**Report {row.report_id}** · study {row.study_id} · {row.dataset} · "
                        f"{row.split or '—'} · disputed since {row.since:%Y-%m-%d %H:%M}")
            st.button("Open", key=f"adj_open_{row.report_id}", on_click=_open,
                      args=(row.report_id,))


def _table(answers) -> pd.DataFrame:
    return pd.DataFrame([{"category": a.category, "presence": str(a.presence),
                          "severity": str(a.severity) if a.severity else None,
                          "side": str(a.side) if a.side else None, "region": a.region,
                          "status": str(a.status), "evidence": a.evidence_text}
                         for a in answers], columns=["category", "presence", "severity", "side",
                                                     "region", "status", "evidence"])


def _decided(result) -> None:
    if result is None:
        return
    if result.ok:
        st.session_state.pop(KEY_ERROR, None)
        st.query_params.clear()
    else:
        st.session_state[KEY_ERROR] = result.message
        st.session_state.pop(state.KEY_FLASH, None)


def _pick(report_id: int, reviewer_id: int, version: int) -> None:
    _decided(rv.as_actor(lambda s, a: queries.adjudicate_pick(
        report_id, reviewer_id, seen_version=version, actor=a, session=s)))


def _own(report_id: int, version: int, text: str, key: str) -> None:
    edited: pd.DataFrame = st.session_state[f"{key}_value"]
    rows = []
    for rec in edited.to_dict("records"):
        quote = rec.get("evidence_text") or ""
        span = locate_quote(text, quote) or (None, None)
        clean = {k: (None if pd.isna(v) else v) for k, v in rec.items()}
        fid = clean.get("finding_id")
        rows.append({**clean, "finding_id": int(fid) if fid is not None else None,
                     "evidence_start": span[0], "evidence_end": span[1],
                     "evidence_text": text[span[0]:span[1]] if span[0] is not None else quote})
    _decided(rv.as_actor(lambda s, a: queries.adjudicate_own(
        report_id, rows, seen_version=version, actor=a, session=s)))


def _third(d: Dispute) -> None:
    first = next(iter(d.answers.values()), [])
    seed = pd.DataFrame([{c: (str(getattr(a, c)) if getattr(a, c) is not None else None)
                          if c != "finding_id" else a.finding_id for c in COLUMNS}
                         for a in first if str(a.status) != "rejected"], columns=COLUMNS)
    key = f"adj_third_{d.report.id}_v{d.settlement.version}"
    st.markdown("**Or write a third answer** (starts from the first reviewer's; add or delete "
                "rows; the evidence must be a verbatim quote)")
    options = {"category": list(vocab.category_ids()), "presence": [p.value for p in Presence],
               "severity": [s.value for s in Severity], "side": [s.value for s in Side],
               "region": list(vocab.load_locations().regions)}
    value = st.data_editor(seed, key=key, num_rows="dynamic", hide_index=True, width="stretch",
                           column_config={
                               "finding_id": st.column_config.NumberColumn("proposal",
                                                                           disabled=True),
                               **{c: st.column_config.SelectboxColumn(c, options=o)
                                  for c, o in options.items()},
                               "evidence_text": st.column_config.TextColumn("evidence")})
    st.session_state[f"{key}_value"] = value
    st.button("Settle on this answer", key="adj_own", type="primary", on_click=_own,
              args=(d.report.id, d.settlement.version, d.report.text, key))


def _dispute(actor: Actor, session, report_id: int) -> None:
    d = queries.get_dispute(report_id, actor=actor, session=session)
    if d is None or d.settlement.state != "disputed":
        st.info(f"Report {report_id} is not disputed (settled, or not double-reviewed).")
        st.button("← Queue", key="adj_back", on_click=_open, args=(None,))
        return
    st.subheader(f"Report {report_id}")
    st.button("← Queue", key="adj_back", on_click=_open, args=(None,))
    left, right = st.columns([1, 1])
    with left:
        viewer.show_images(d.images, f"adj_{report_id}")
    with right:
        st.markdown(highlight_evidence(d.report.text, d.findings))
        st.caption(f"{len(d.findings)} machine proposal(s) highlighted")
    sides = st.columns(len(d.answers) or 1)
    for col, (rid, answers) in zip(sides, d.answers.items(), strict=False):
        with col:
            st.markdown(f"**{d.names[rid]}**")
            st.dataframe(_table(answers), hide_index=True, width="stretch")
            st.button(f"Settle on {d.names[rid]}'s answer", key=f"adj_pick_{rid}",
                      on_click=_pick, args=(report_id, rid, d.settlement.version))
    if error := st.session_state.get(KEY_ERROR):
        st.error(error)
    _third(d)


def main() -> None:
    st.title("Adjudication")
    state.show_flash()
    actor = rv.require_actor(Permission.adjudicate, "adjudicate")
    if actor is None:
        return
    with state.db_session() as session:
        report_id = st.query_params.get(state.QP_REPORT)
        if report_id and report_id.isdigit():
            _dispute(actor, session, int(report_id))
        else:
            _queue(session)


main()
