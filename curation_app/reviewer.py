"""The write callbacks of the review pages, run as the signed-in account.

Writes run as widget callbacks (``on_click``) with the entity's ``version`` bound when the button
was drawn: that is the version the reviewer saw, so optimistic locking compares against it rather
than against a fresh read in the rerun. A callback leaves its outcome with ``state.flash``. The
db write functions check the account's role themselves; a refusal comes back as the message.
"""

from __future__ import annotations

import streamlit as st

from curation_app import auth, state
from db import queries
from db.models import KnowledgeStatus
from db.queries import Actor, Permission


def require_actor(permission: Permission = Permission.review,
                  what: str = "review") -> Actor | None:
    """The signed-in actor when it holds ``permission``; else a note (the page stays read-only)."""
    actor = auth.current_actor()
    if actor is None:
        st.warning(f"Sign in to {what}; read-only until then.")
    elif not actor.can(permission):
        st.info(f"Your role ({actor.role}) may not {permission.value}: read-only.")
        return None
    return actor


# --- write callbacks ----------------------------------------------------------------------


def _report(result: queries.ReviewResult) -> None:
    state.flash("success" if result.ok and result.applied else
                "warning" if result.ok else "error", result.message)


def as_actor(write):
    """Run ``write(session, actor)`` in one transaction as the signed-in account."""
    actor = auth.current_actor()
    try:
        with state.db_write() as session:
            result = write(session, actor)
    except queries.PermissionDenied as err:
        state.flash("error", str(err))
        return None
    if isinstance(result, queries.ReviewResult):
        _report(result)
    return result


def on_answer(finding_id: int, action: str, seen_version: int,
              changes: dict | None = None) -> queries.ReviewResult | None:
    result = as_actor(lambda s, a: queries.answer_finding(
        finding_id, action, seen_version=seen_version, actor=a, changes=changes, session=s))
    if result is not None and result.ok:
        st.session_state.pop(state.KEY_EDITING, None)
    return result


def on_add(report_id: int, fields: dict) -> queries.ReviewResult | None:
    return as_actor(lambda s, a: queries.add_answer(report_id, fields, actor=a, session=s))


def on_accept_all(report_id: int) -> None:
    as_actor(lambda s, a: queries.accept_remaining(report_id, actor=a, session=s))


def on_undo(report_id: int) -> None:
    as_actor(lambda s, a: queries.undo_last_answer(report_id, actor=a, session=s))


def on_done(report_id: int) -> None:
    as_actor(lambda s, a: queries.mark_report_done(report_id, actor=a, session=s))


def on_save_knowledge(entry_id: int, version: int, explanation_key: str,
                      status_key: str | None) -> None:
    """Save the entry's edited text with the status picked at ``status_key`` (None: approve)."""
    explanation = st.session_state.get(explanation_key, "")
    status = KnowledgeStatus(st.session_state[status_key] if status_key
                             else KnowledgeStatus.approved)
    as_actor(lambda s, a: queries.update_knowledge(
        entry_id, version=version, explanation=explanation, status=status, reviewer=a,
        session=s))


def on_add_knowledge(category: str, subclass_key: str, explanation_key: str) -> None:
    subclass = st.session_state.get(subclass_key, "").strip()
    explanation = st.session_state.get(explanation_key, "")
    as_actor(lambda s, a: queries.add_knowledge_subclass(
        category, subclass, explanation, reviewer=a, session=s))
