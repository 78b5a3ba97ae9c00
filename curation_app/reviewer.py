"""Who is reviewing: the sidebar picker, and the write callbacks of the review pages.

Writes run as widget callbacks (``on_click``) with the entity's ``version`` bound when the button
was drawn: that is the version the reviewer saw, so optimistic locking compares against it rather
than against a fresh read in the rerun. A callback leaves its outcome with ``state.flash``.
"""

from __future__ import annotations

import streamlit as st

from curation_app import state
from db import queries
from db.models import KnowledgeStatus, Reviewer, ReviewerRole


def current_reviewer(session) -> Reviewer | None:
    reviewer_id = st.session_state.get(state.KEY_REVIEWER)
    return session.get(Reviewer, reviewer_id) if reviewer_id is not None else None


def _picked() -> None:
    st.session_state[state.KEY_REVIEWER] = st.session_state[state.KEY_REVIEWER_PICK]


def _add_reviewer() -> None:
    name = st.session_state.get(state.KEY_NEW_REVIEWER_NAME, "")
    role = st.session_state.get(state.KEY_NEW_REVIEWER_ROLE, ReviewerRole.reviewer.value)
    try:
        with state.db_write() as session:
            reviewer = queries.add_reviewer(name, ReviewerRole(role), session=session)
    except ValueError as err:
        st.session_state[state.KEY_REVIEWER_ERROR] = str(err)
        return
    st.session_state[state.KEY_REVIEWER] = st.session_state[state.KEY_REVIEWER_PICK] = reviewer.id
    st.session_state[state.KEY_NEW_REVIEWER_NAME] = ""


def sidebar_picker() -> None:
    """Pick the current reviewer or add one; rendered once per run by streamlit_app.py."""
    with state.db_session() as session:
        reviewers = {r.id: r for r in queries.list_reviewers(session=session)}
    options = [None, *reviewers]
    current = st.session_state.get(state.KEY_REVIEWER)
    st.session_state[state.KEY_REVIEWER_PICK] = current if current in reviewers else None
    st.selectbox("Reviewer", options, key=state.KEY_REVIEWER_PICK, on_change=_picked,
                 format_func=lambda rid: "— pick who you are —" if rid is None else
                 f"{reviewers[rid].name} ({ReviewerRole(reviewers[rid].role).value})")
    with st.expander("Add reviewer"):
        with st.form("add_reviewer_form", clear_on_submit=False, border=False):
            st.text_input("Name", key=state.KEY_NEW_REVIEWER_NAME)
            st.selectbox("Role", [r.value for r in ReviewerRole], key=state.KEY_NEW_REVIEWER_ROLE)
            st.form_submit_button("Add", on_click=_add_reviewer, key="add_reviewer")
        if error := st.session_state.pop(state.KEY_REVIEWER_ERROR, None):
            st.error(error)


def require_reviewer(session) -> Reviewer | None:
    """The current reviewer, or a warning that writing needs one (the page stays read-only)."""
    reviewer = current_reviewer(session)
    if reviewer is None:
        st.warning("Pick or add your reviewer name in the sidebar to review; read-only until then.")
    return reviewer


# --- write callbacks ----------------------------------------------------------------------


def _report(result: queries.ReviewResult) -> None:
    state.flash("success" if result.ok and result.applied else
                "warning" if result.ok else "error", result.message)


def _with_reviewer(write) -> None:
    """Run ``write(session, reviewer)`` in one transaction; refuse without a reviewer."""
    with state.db_write() as session:
        reviewer = current_reviewer(session)
        if reviewer is None:
            state.flash("error", "Pick your reviewer name in the sidebar first.")
            return
        result = write(session, reviewer)
    if isinstance(result, queries.ReviewResult):
        _report(result)
    return result


def on_decide(finding_id: int, action: str, version: int, changes: dict | None = None) -> None:
    result = _with_reviewer(lambda s, r: queries.decide_finding(
        finding_id, action, version=version, reviewer=r, changes=changes, session=s))
    if result is not None and result.ok:
        st.session_state.pop(state.KEY_EDITING, None)


def on_add(report_id: int, fields: dict) -> None:
    _with_reviewer(lambda s, r: queries.add_finding(report_id, fields, reviewer=r, session=s))


def on_accept_all(report_id: int) -> None:
    n = _with_reviewer(lambda s, r: queries.accept_all_remaining(report_id, reviewer=r,
                                                                 session=s))
    if n is not None:
        state.flash("success", f"Accepted {n} remaining finding(s).")


def on_undo(report_id: int) -> None:
    _with_reviewer(lambda s, r: queries.undo_last(report_id, reviewer=r, session=s))


def on_save_knowledge(entry_id: int, version: int, explanation_key: str,
                      status_key: str | None) -> None:
    """Save the entry's edited text with the status picked at ``status_key`` (None: approve)."""
    explanation = st.session_state.get(explanation_key, "")
    status = KnowledgeStatus(st.session_state[status_key] if status_key
                             else KnowledgeStatus.approved)
    _with_reviewer(lambda s, r: queries.update_knowledge(
        entry_id, version=version, explanation=explanation, status=status, reviewer=r, session=s))


def on_add_knowledge(category: str, subclass_key: str, explanation_key: str) -> None:
    subclass = st.session_state.get(subclass_key, "").strip()
    explanation = st.session_state.get(explanation_key, "")
    _with_reviewer(lambda s, r: queries.add_knowledge_subclass(
        category, subclass, explanation, reviewer=r, session=s))
