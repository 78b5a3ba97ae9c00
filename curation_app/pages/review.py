"""Review: accept, edit, reject and add a report's findings; a queue of reports to review.

``review?report=ID`` opens one report. Every write is optimistic-locked and audited (see the
``db/queries/review.py`` for the second-reviewer rule and undo semantics).
"""

from __future__ import annotations

import streamlit as st

from curation_app import reviewer as rv
from curation_app import state
from curation_app.widgets import escape_markdown, highlight_evidence, pager
from db import queries
from db.models import Finding, FindingStatus, Presence, Severity, Side
from pipeline import agreement, vocab

PAGE_SIZE = 20
NONE = "—"
STATUS_COLOUR = {"proposed": "gray", "accepted": "green", "edited": "blue", "rejected": "red",
                 "added": "violet"}


def _choice(label: str) -> str | None:
    return None if label in (state.ALL, NONE) else label


# --- queue --------------------------------------------------------------------------------


def _queue_filters(session) -> dict:
    statuses = [state.ALL, *(s.value for s in FindingStatus)]
    c = st.columns(5)
    picked = {
        "dataset": c[0].selectbox("Dataset", [state.ALL, *queries.list_datasets(session=session)],
                                  key=state.KEY_Q_DATASET),
        "split": c[1].selectbox("Split", [state.ALL, *queries.list_splits(session=session)],
                                key=state.KEY_Q_SPLIT),
        "category": c[2].selectbox("Category", [state.ALL, *vocab.category_ids()],
                                   key=state.KEY_Q_CATEGORY),
        # default: reports that still have undecided findings
        "status": c[3].selectbox("Finding status", statuses, key=state.KEY_Q_STATUS,
                                 index=statuses.index(FindingStatus.proposed.value)),
        "extractor": c[4].selectbox(
            "Extractor", [state.ALL, *queries.list_finding_extractors(session=session)],
            key=state.KEY_Q_EXTRACTOR),
    }
    return {k: _choice(v) for k, v in picked.items()}


def _open(report_id: int | None) -> None:
    if report_id is None:
        st.info("No report has proposed findings left: the queue is done.")
        return
    st.session_state.pop(state.KEY_EDITING, None)
    st.query_params[state.QP_REPORT] = str(report_id)
    st.rerun()


def _queue(session) -> None:
    filters = _queue_filters(session)
    if st.button("Next unreviewed", key="review_next", type="primary"):
        _open(queries.next_unreviewed_report(session=session))
    total = queries.count_review_queue(session=session, **filters)
    if total == 0:
        st.info("No report matches: nothing to review with these filters.")
        return
    page = pager(total, PAGE_SIZE, state.KEY_Q_PAGE)
    rows = queries.list_review_queue(session=session, offset=page.offset, limit=PAGE_SIZE,
                                     **filters)
    page.caption("Reports", len(rows))
    for row in rows:
        with st.container(border=True):
            meta, action = st.columns([8, 1])
            meta.markdown(f"**Report {row.report_id}** · study {row.study_id} · {row.dataset} · "
                          f"{row.split or '—'}  \n{row.n_findings} matching finding(s) · "
                          f"{row.n_proposed} still proposed")
            if action.button("Open", key=f"review_open_{row.report_id}"):
                _open(row.report_id)


# --- finding forms ------------------------------------------------------------------------


def _fields_form(prefix: str, finding: Finding | None) -> None:
    """Widgets of a finding's fields, keyed ``{prefix}_<field>``, preset from ``finding``."""
    def pick(label, options, field, current):
        index = options.index(current) if current in options else 0
        st.selectbox(label, options, index=index, key=f"{prefix}_{field}")

    def value(field):
        v = getattr(finding, field, None) if finding else None
        return str(v) if v is not None else NONE

    c = st.columns(5)
    with c[0]:
        pick("Category", list(vocab.category_ids()), "category", value("category"))
    with c[1]:
        pick("Presence", [p.value for p in Presence], "presence", value("presence"))
    with c[2]:
        pick("Severity", [NONE, *(s.value for s in Severity)], "severity", value("severity"))
    with c[3]:
        pick("Side", [NONE, *(s.value for s in Side)], "side", value("side"))
    with c[4]:
        pick("Region", [NONE, *vocab.load_locations().regions], "region", value("region"))
    st.text_area("Evidence (a verbatim quote of the report)", key=f"{prefix}_evidence",
                 value=finding.evidence_text or "" if finding else "", height=68)


def _read_form(prefix: str) -> dict:
    """The form's fields; the evidence as typed or pasted. The write locates it in the report
    (``db.evidence``: whitespace may differ, the exact report slice is stored) or refuses it."""
    fields = {f: _choice(st.session_state.get(f"{prefix}_{f}", NONE))
              for f in ("category", "presence", "severity", "side", "region")}
    return {**fields, "evidence_text": st.session_state.get(f"{prefix}_evidence", "")}


def _on_edit(finding_id: int, version: int) -> None:
    rv.on_decide(finding_id, "edit", version, _read_form(f"editf_{finding_id}"))


def _on_add(report_id: int) -> None:
    rv.on_add(report_id, _read_form("addf"))


def _start_edit(finding_id: int) -> None:
    # a fresh form each time: drop field values left from an earlier opening
    for key in [k for k in st.session_state if str(k).startswith(f"editf_{finding_id}_")]:
        del st.session_state[key]
    st.session_state[state.KEY_EDITING] = finding_id


# --- report view --------------------------------------------------------------------------


def _finding_row(f: Finding, can_write: bool, names: dict[int, str],
                 opinions: dict[int, str]) -> None:
    status = str(f.status)
    with st.container(border=True, key=f"finding_{f.id}"):
        info, buttons = st.columns([7, 3])
        info.markdown(
            f"**{f.category}** · {f.presence} · severity {f.severity or '—'} · side "
            f"{f.side or '—'} · region {f.region or '—'} · "
            f":{STATUS_COLOUR.get(status, 'gray')}-badge[{status}]")
        decided = f" · decided by {names.get(f.reviewer_id, '?')}" if f.reviewer_id else ""
        info.caption(f"“{escape_markdown(f.evidence_text or '')}” · {f.extractor} "
                     f"{f.extractor_version} · v{f.version}{decided}")
        if len(opinions) > 1:  # several reviewers decided: what each said (for adjudication)
            info.caption("Opinions: " + " · ".join(f"{names.get(r, r)} {a}"
                                                   for r, a in sorted(opinions.items())))
        a, r, e = buttons.columns(3)
        a.button("Accept", key=f"accept_{f.id}", disabled=not can_write,
                 on_click=rv.on_decide, args=(f.id, "accept", f.version))
        r.button("Reject", key=f"reject_{f.id}", disabled=not can_write,
                 on_click=rv.on_decide, args=(f.id, "reject", f.version))
        e.button("Edit", key=f"edit_{f.id}", disabled=not can_write,
                 on_click=_start_edit, args=(f.id,))
        if can_write and st.session_state.get(state.KEY_EDITING) == f.id:
            with st.form(f"edit_form_{f.id}"):
                _fields_form(f"editf_{f.id}", f)
                st.form_submit_button("Save edit", key=f"save_{f.id}", type="primary",
                                      on_click=_on_edit, args=(f.id, f.version))


def _report_actions(report_id: int, can_write: bool) -> None:
    c = st.columns([1, 1.5, 1.7, 1.7, 2])
    if c[0].button("← Queue", key="review_back"):
        del st.query_params[state.QP_REPORT]
        st.rerun()
    if c[1].button("Next unreviewed", key="review_next_report"):
        with state.db_session() as session:
            _open(queries.next_unreviewed_report(session=session, after=report_id))
    c[2].button("Accept all remaining", key="review_accept_all", disabled=not can_write,
                on_click=rv.on_accept_all, args=(report_id,))
    c[3].button("Undo last change", key="undo", disabled=not can_write,
                on_click=rv.on_undo, args=(report_id,))


def _report_view(session, report_id: int, can_write: bool) -> None:
    view = queries.get_review_report(session=session, report_id=report_id)
    if view is None:
        st.error(f"Report {report_id} does not exist.")
        return
    st.subheader(f"Report {report_id}")
    st.caption(f"study {view.study.id} · {view.study.dataset} · split {view.study.split or '—'}")
    _report_actions(report_id, can_write)
    left, right = st.columns([2, 3])
    with left:
        for img in view.images:
            path = state.data_path(img.display_path or img.path)
            if path:
                st.image(str(path), caption=img.view or None, width="stretch")
            else:
                st.warning(f"Pixel file missing: image {img.id}")
    with right:
        st.markdown(highlight_evidence(view.report.text, view.findings))
    st.markdown(f"**Findings** ({len(view.findings)})")
    names = {r.id: r.name for r in queries.list_reviewers(session=session)}
    decisions = agreement.effective_decisions(
        queries.list_decision_events(session=session, report_id=report_id))
    for f in view.findings:
        opinions = {r: a for (fid, r), a in decisions.items() if fid == f.id}
        _finding_row(f, can_write, names, opinions)
    if can_write:
        with st.expander("Add finding"), st.form("add_finding_form"):
            _fields_form("addf", None)
            st.form_submit_button("Add finding", key="add_finding", type="primary",
                                  on_click=_on_add, args=(report_id,))


def main() -> None:
    st.title("Review")
    state.show_flash()
    with state.db_session() as session:
        reviewer = rv.require_reviewer(session)
        report_id = st.query_params.get(state.QP_REPORT)
        if report_id and report_id.isdigit():
            _report_view(session, int(report_id), reviewer is not None)
        else:
            _queue(session)


main()
