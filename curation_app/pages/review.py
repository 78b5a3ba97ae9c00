"""Review: answer a report's machine-proposed findings, by keyboard or mouse.

``review?report=ID`` opens one report; without it the page lists your assigned reports. You
see the proposals and your own answers only (blind double review: db/queries/answers.py). One
finding is current at a time; the keys are the page's own buttons (``st.button(shortcut=...)``):
j / k next / previous finding, a accept, x reject (Streamlit reserves r), e edit, n / p next /
previous assigned report, u undo. Presence, severity and side are one click on the current
finding, the region two.
"""

from __future__ import annotations

import streamlit as st

from curation_app import reviewer as rv
from curation_app import state, viewer
from curation_app.widgets import escape_markdown, highlight_evidence, pager
from db import queries
from db.evidence import locate_quote
from db.models import Presence, Severity, Side
from db.queries import Actor, AnswerItem, MyReview
from pipeline import vocab

PAGE_SIZE = 20
NONE = "—"
STATUS_COLOUR = {"proposed": "gray", "accepted": "green", "edited": "blue", "rejected": "red",
                 "added": "violet"}
KEYS = ("**j** / **k** next / previous finding · **a** accept · **x** reject · **e** edit · "
        "**n** / **p** next / previous report · **u** undo")
KEY_CURRENT = "review_current"  # index of the current finding in the report's list
KEY_FORM_ERROR = "review_form_error"  # (form name, message) shown beside that form


def _choice(label: str | None) -> str | None:
    return None if label in (None, state.ALL, NONE) else label


# --- my queue -------------------------------------------------------------------------------


def _open(report_id: int | None) -> None:
    if report_id is None:
        state.flash("success", "Nothing left to review in your queue.")
        return
    for key in (state.KEY_EDITING, KEY_CURRENT):
        st.session_state.pop(key, None)
    st.query_params[state.QP_REPORT] = str(report_id)


def _progress(actor: Actor, session) -> None:
    mine, team = queries.review_progress(actor.id, session=session)
    c = st.columns(2)
    for col, p, who in ((c[0], mine, "Me"), (c[1], team, "Team")):
        col.progress(p.done / p.assigned if p.assigned else 0.0,
                     text=f"{who}: {p.done} / {p.assigned} reports done")


def _rows(rows, prefix: str) -> None:
    for row in rows:
        with st.container(border=True, horizontal=True, vertical_alignment="center"):
            st.markdown(f"**Report {row.report_id}** · study {row.study_id} · {row.dataset} · "
                        f"{row.split or '—'}{' · done' if row.done else ''}")
            st.button("Open", key=f"{prefix}_{row.report_id}", on_click=_open,
                      args=(row.report_id,))


def _queue(actor: Actor, session) -> None:
    _progress(actor, session)
    first = queries.neighbour_assignment(actor.id, 0, session=session)
    st.button("Next assigned report", key="review_next", type="primary", shortcut="N",
              on_click=_open, args=(first,), disabled=first is None)
    done = st.toggle("Show the reports I finished", key="review_show_done")
    total = queries.count_my_assignments(actor.id, session=session, done=None if done else False)
    if total:
        page = pager(total, PAGE_SIZE, state.KEY_Q_PAGE)
        rows = queries.list_my_assignments(actor.id, session=session,
                                           done=None if done else False,
                                           offset=page.offset, limit=PAGE_SIZE)
        page.caption("My reports", len(rows))
        _rows(rows, "review_open")
    else:
        st.info("No report assigned to you is waiting. An admin assigns work on the "
                "Accounts & assignments page or with `python -m pipeline.assign`.")
    # no exact count: at 100k reports it would scan them all on every rerun
    free = queries.list_unassigned_reports(session=session, limit=PAGE_SIZE)
    if free:
        with st.expander("Unassigned reports: your first answer claims one"):
            _rows(free, "review_claim")


# --- one report ------------------------------------------------------------------------------


def _set_current(i: int) -> None:
    st.session_state[KEY_CURRENT] = i
    st.session_state.pop(state.KEY_EDITING, None)


def _answer(finding_id: int, action: str, version: int, advance_to: int | None) -> None:
    result = rv.on_answer(finding_id, action, version)
    if result is not None and result.ok and advance_to is not None:
        st.session_state[KEY_CURRENT] = advance_to


def _quick(finding_id: int, version: int, field: str, key: str) -> None:
    """One-click edit of presence / severity / side / region of the current finding."""
    rv.on_answer(finding_id, "edit", version, {field: _choice(st.session_state.get(key))})


def _start_edit(finding_id: int) -> None:
    for key in [k for k in st.session_state if str(k).startswith(f"editf_{finding_id}_")]:
        del st.session_state[key]
    st.session_state[state.KEY_EDITING] = finding_id


def _quick_edit(item: AnswerItem) -> None:
    f, shown, v = item.finding, item.shown, item.version
    with st.container(horizontal=True, wrap=True):
        for field, options in (("presence", [p.value for p in Presence]),
                               ("severity", [NONE, *(s.value for s in Severity)]),
                               ("side", [NONE, *(s.value for s in Side)])):
            value = getattr(shown, field)
            key = f"quick_{f.id}_{field}_v{v}"
            st.segmented_control(field.capitalize(), options, key=key,
                                 default=str(value) if value is not None else NONE,
                                 on_change=_quick, args=(f.id, v, field, key))
        regions = [NONE, *vocab.load_locations().regions]
        key = f"quick_{f.id}_region_v{v}"
        st.selectbox("Region", regions, key=key, width=170,
                     index=regions.index(shown.region) if shown.region in regions else 0,
                     on_change=_quick, args=(f.id, v, "region", key))


def _fields_form(prefix: str, shown) -> None:
    """Widgets of a finding's fields, keyed ``{prefix}_<field>``, preset from ``shown``."""
    def pick(col, label, options, field):
        value = getattr(shown, field, None) if shown is not None else None
        current = str(value) if value is not None else NONE
        key = f"{prefix}_{field}"
        kwargs = {} if key in st.session_state else {
            "index": options.index(current) if current in options else 0}
        col.selectbox(label, options, key=key, **kwargs)

    c = st.columns(5)
    pick(c[0], "Category", list(vocab.category_ids()), "category")
    pick(c[1], "Presence", [p.value for p in Presence], "presence")
    pick(c[2], "Severity", [NONE, *(s.value for s in Severity)], "severity")
    pick(c[3], "Side", [NONE, *(s.value for s in Side)], "side")
    pick(c[4], "Region", [NONE, *vocab.load_locations().regions], "region")


def _read_fields(prefix: str, text: str, form: str) -> dict | None:
    """The form's fields with the quote's offsets; None (error kept beside the form) when the
    quote is not a verbatim part of the report."""
    quote = st.session_state.get(f"{prefix}_evidence", "")
    span = locate_quote(text, quote)
    if span is None:
        st.session_state[KEY_FORM_ERROR] = (form, f"The evidence {quote.strip()[:80]!r} is not "
                                            "a verbatim part of the report text; copy it "
                                            "exactly from the report. Nothing saved.")
        return None
    fields = {f: _choice(st.session_state.get(f"{prefix}_{f}"))
              for f in ("category", "presence", "severity", "side", "region")}
    return {**fields, "evidence_start": span[0], "evidence_end": span[1],
            "evidence_text": text[span[0]:span[1]]}


def _form_error(form: str) -> None:
    pending = st.session_state.get(KEY_FORM_ERROR)
    if pending and pending[0] == form:
        st.error(pending[1])


def _keep_error(form: str, result) -> None:
    if result is not None and not result.ok:
        st.session_state[KEY_FORM_ERROR] = (form, result.message)
        st.session_state.pop(state.KEY_FLASH, None)  # shown beside the form instead
    else:
        st.session_state.pop(KEY_FORM_ERROR, None)


def _on_edit(finding_id: int, version: int, text: str) -> None:
    form = f"edit_{finding_id}"
    if (fields := _read_fields(f"editf_{finding_id}", text, form)) is not None:
        _keep_error(form, rv.on_answer(finding_id, "edit", version, fields))


def _finding_row(i: int, item: AnswerItem, view: MyReview, can_write: bool, current: int,
                 next_open: int | None) -> None:
    shown, f = item.shown, item.finding
    is_current = i == current
    with st.container(border=True, key=f"finding_{f.id if f else 'a' + str(item.answer.id)}"):
        st.markdown(
            f"{'▶ ' if is_current else ''}**{shown.category}** · {shown.presence} · severity "
            f"{shown.severity or '—'} · side {shown.side or '—'} · region {shown.region or '—'}"
            f" · :{STATUS_COLOUR[item.status]}-badge[{item.status}]")
        source = f"{f.extractor} {f.extractor_version}" if f else "added by you"
        st.caption(f"“{escape_markdown(shown.evidence_text or '')}” · {source}")
        if f is None:
            return
        keys = {"accept": "A", "reject": "X", "edit": "E"} if is_current and can_write else {}
        with st.container(horizontal=True):
            st.button("Accept", key=f"accept_{f.id}", disabled=not can_write,
                      shortcut=keys.get("accept"), on_click=_answer,
                      args=(f.id, "accept", item.version, next_open))
            st.button("Reject", key=f"reject_{f.id}", disabled=not can_write,
                      shortcut=keys.get("reject"), on_click=_answer,
                      args=(f.id, "reject", item.version, next_open))
            st.button("Edit", key=f"edit_{f.id}", disabled=not can_write,
                      shortcut=keys.get("edit"), on_click=_start_edit, args=(f.id,))
        if is_current and can_write:
            _quick_edit(item)
        if can_write and st.session_state.get(state.KEY_EDITING) == f.id:
            with st.form(f"edit_form_{f.id}"):
                _fields_form(f"editf_{f.id}", shown)
                st.text_area("Evidence (a verbatim quote of the report)",
                             key=f"editf_{f.id}_evidence", value=shown.evidence_text or "",
                             height=68)
                st.form_submit_button("Save edit", key=f"save_{f.id}", type="primary",
                                      on_click=_on_edit, args=(f.id, item.version,
                                                               view.report.text))
            _form_error(f"edit_{f.id}")


def _propose(text_key: str) -> None:
    """Fill the add form from the rule extractor's reading of the pasted sentence."""
    sentence = st.session_state.get(text_key, "")
    found = state.rule_extractor().extract(sentence) if sentence.strip() else []
    if not found:
        st.session_state[KEY_FORM_ERROR] = ("add", "The rule extractor finds no finding in "
                                            "that sentence; pick the fields yourself.")
        return
    st.session_state.pop(KEY_FORM_ERROR, None)
    first = found[0]
    values = {"category": first.category, "presence": first.presence.value,
              "severity": first.severity.value if first.severity else NONE,
              "side": first.side.value if first.side else NONE,
              "region": first.location.region or NONE}
    for field, value in values.items():
        st.session_state[f"addf_{field}"] = value


def _on_add(report_id: int, text: str) -> None:
    if (fields := _read_fields("addf", text, "add")) is not None:
        result = rv.on_add(report_id, fields)
        _keep_error("add", result)
        if result is not None and result.ok:
            st.session_state["addf_evidence"] = ""


def _add_section(report_id: int, text: str) -> None:
    with st.expander("Add a finding the extractor missed", expanded=bool(
            st.session_state.get("addf_evidence"))):
        st.text_area("Evidence sentence (paste or copy it from the report)", key="addf_evidence",
                     height=68)
        st.button("Propose fields from the sentence", key="add_propose", on_click=_propose,
                  args=("addf_evidence",))
        _fields_form("addf", None)
        st.button("Add finding", key="add_finding", type="primary", on_click=_on_add,
                  args=(report_id, text))
        _form_error("add")


def _report_actions(actor: Actor, view: MyReview, can_write: bool, session) -> None:
    rid = view.report.id
    nxt = queries.neighbour_assignment(actor.id, rid, session=session)
    prev = queries.neighbour_assignment(actor.id, rid, session=session, forward=False,
                                        todo_only=False)
    with st.container(horizontal=True):
        st.button("← My queue", key="review_back", on_click=lambda: st.query_params.clear())
        st.button("Previous report", key="review_prev", shortcut="P", on_click=_open,
                  args=(prev,), disabled=prev is None)
        st.button("Next report", key="review_next_report", shortcut="N", on_click=_open,
                  args=(nxt,), disabled=nxt is None)
        st.button("Accept all remaining", key="review_accept_all", disabled=not can_write,
                  on_click=rv.on_accept_all, args=(rid,))
        st.button("Undo", key="undo", shortcut="U", disabled=not can_write,
                  on_click=rv.on_undo, args=(rid,))
        if view.n_proposed == 0:
            st.button("Done", key="review_done", disabled=not can_write, on_click=rv.on_done,
                      args=(rid,))


def _report_view(actor: Actor, session, report_id: int) -> None:
    view = queries.get_my_review(report_id, actor=actor, session=session)
    if view is None:
        st.error(f"Report {report_id} does not exist.")
        return
    can_write = not view.final and (view.assigned or view.open_to_claim)
    st.subheader(f"Report {report_id}")
    st.caption(f"study {view.study.id} · {view.study.dataset} · split {view.study.split or '—'}")
    if view.final:
        st.info("This report was adjudicated: its label is final.")
    elif not can_write:
        st.info("This report is assigned to other reviewers: read-only.")
    st.progress(view.n_decided / view.n_proposed if view.n_proposed else 1.0,
                text=f"{view.n_decided} of {view.n_proposed} decided")
    _report_actions(actor, view, can_write, session)
    _progress(actor, session)
    items = view.items
    open_idx = [i for i, it in enumerate(items) if it.finding is not None and it.answer is None]
    current = min(st.session_state.get(KEY_CURRENT, open_idx[0] if open_idx else 0),
                  max(len(items) - 1, 0))
    left, right = st.columns([1, 1])
    with left:
        viewer.show_images(view.images, f"img_{report_id}")
    with right:
        shown = [it.shown for it in items if it.status != "rejected"]
        st.markdown(highlight_evidence(view.report.text, shown))
        with st.container(horizontal=True):
            st.button("Next finding", key="finding_next", shortcut="J",
                      on_click=_set_current, args=(min(current + 1, len(items) - 1),))
            st.button("Previous finding", key="finding_prev", shortcut="K",
                      on_click=_set_current, args=(max(current - 1, 0),))
        st.caption("Keys: " + KEYS)
        st.markdown(f"**Findings** ({len(items)})")
        for i, item in enumerate(items):
            after = next((j for j in open_idx if j > i), None)
            _finding_row(i, item, view, can_write, current, after)
        if can_write:
            _add_section(report_id, view.report.text)


def main() -> None:
    st.title("Review")
    state.show_flash()
    actor = rv.require_actor()
    if actor is None:
        return
    with state.db_session() as session:
        report_id = st.query_params.get(state.QP_REPORT)
        if report_id and report_id.isdigit():
            _report_view(actor, session, int(report_id))
        else:
            _queue(actor, session)


main()
