"""Accounts & assignments (admins only, checked in db too): create accounts, change roles,
disable; assign studies to reviewers with a share of blind double reviews.

Every change is an audit event (entity "reviewer" / "assignment"). The same is available from
the command line: ``python -m db reviewers ...`` and ``python -m pipeline.assign ...``.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from curation_app import reviewer as rv
from curation_app import state
from db import queries
from db.models import ReviewerRole
from db.queries import Permission
from pipeline.assign.plan import assign_studies

ROLES = [r.value for r in ReviewerRole]
KEY_ERROR = "admin_error"  # (form, message) of the last refused change


def _refused(form: str, err: Exception) -> None:
    st.session_state[KEY_ERROR] = (form, str(err))


def _write(form: str, write, ok) -> None:
    """Run ``write(session, actor)``; its ValueError / refusal stays beside ``form``."""
    st.session_state.pop(KEY_ERROR, None)
    try:
        result = rv.as_actor(write)
    except ValueError as err:
        _refused(form, err)
        return
    if result is not None:
        state.flash("success", ok(result))
    else:  # a PermissionDenied, flashed by as_actor
        _refused(form, Exception(st.session_state.pop(state.KEY_FLASH, ("", ""))[1]))


def _form_error(form: str) -> None:
    pending = st.session_state.get(KEY_ERROR)
    if pending and pending[0] == form:
        st.error(pending[1])


def _create() -> None:
    name, role = st.session_state["acct_name"], st.session_state["acct_role"]
    password = st.session_state["acct_password"]
    _write("create", lambda s, a: queries.create_account(
        name, ReviewerRole(role), password=password, actor=a, session=s),
        lambda r: f"Account {r.name} created.")
    if KEY_ERROR not in st.session_state:
        st.session_state["acct_name"] = st.session_state["acct_password"] = ""


def _change(action: str) -> None:
    name = st.session_state["acct_pick"]
    if action == "role":
        role = ReviewerRole(st.session_state["acct_new_role"])
        _write("change", lambda s, a: queries.set_role(name, role, actor=a, session=s),
               lambda r: f"{r.name} is now {role.value}.")
    else:
        _write("change", lambda s, a: queries.disable_account(
            name, disabled=action == "disable", actor=a, session=s),
            lambda r: f"{r.name}: {action}d.")


def _accounts(session) -> list:
    accounts = queries.list_accounts(session=session)
    st.dataframe(pd.DataFrame([{"name": r.name, "role": ReviewerRole(r.role).value,
                                "state": "disabled" if r.disabled else "active",
                                "sign-in": "password" if r.password_hash else
                                ("oidc" if r.oidc_subject else "none")} for r in accounts]),
                 hide_index=True, width="stretch")
    left, right = st.columns(2)
    with left, st.form("acct_create"):
        st.markdown("**New account**")
        st.text_input("Name", key="acct_name")
        st.selectbox("Role", ROLES, key="acct_role")
        st.text_input("Password (at least 8 characters)", type="password", key="acct_password")
        st.form_submit_button("Create account", key="acct_create_btn", on_click=_create)
    with left:
        _form_error("create")
    with right, st.container(border=True):
        st.markdown("**Change an account**")
        st.selectbox("Account", [r.name for r in accounts], key="acct_pick")
        st.selectbox("New role", ROLES, key="acct_new_role")
        c = st.columns(3)
        c[0].button("Set role", key="acct_set_role", on_click=_change, args=("role",))
        c[1].button("Disable", key="acct_disable", on_click=_change, args=("disable",))
        c[2].button("Enable", key="acct_enable", on_click=_change, args=("enable",))
        _form_error("change")
    return accounts


def _assign() -> None:
    reviewers = st.session_state["assign_reviewers"]
    share = st.session_state["assign_share"] / 100
    dataset = st.session_state["assign_dataset"]
    split = st.session_state["assign_split"]
    _write("assign", lambda s, a: assign_studies(
        s, reviewers=reviewers, actor=a, double_share=share,
        dataset=None if dataset == state.ALL else dataset,
        split=None if split == state.ALL else split), lambda r: f"Assigned: {r.line()}")


def _assignments(session, accounts: list) -> None:
    active = [r.name for r in accounts if not r.disabled]
    with st.form("assign_form"):
        st.multiselect("Reviewers", active, key="assign_reviewers")
        st.slider("Double-reviewed share (%)", 0, 100, 20, step=5, key="assign_share")
        c = st.columns(2)
        c[0].selectbox("Dataset", [state.ALL, *queries.list_datasets(session=session)],
                       key="assign_dataset")
        c[1].selectbox("Split", [state.ALL, *queries.list_splits(session=session)],
                       key="assign_split")
        st.form_submit_button("Assign unassigned studies", key="assign_btn", type="primary",
                              on_click=_assign)
    _form_error("assign")
    st.caption("Balanced and idempotent: studies already assigned keep their reviewers.")
    progress = queries.progress_by_reviewer(session=session)
    if progress:
        st.dataframe(pd.DataFrame([{"reviewer": p.name, "done": p.done, "assigned": p.assigned}
                                   for p in progress]), hide_index=True, width="stretch")


def main() -> None:
    st.title("Accounts & assignments")
    state.show_flash()
    actor = rv.require_actor(Permission.manage_accounts, "manage accounts")
    if actor is None:
        return
    with state.db_session() as session:
        st.subheader("Accounts")
        accounts = _accounts(session)
        st.subheader("Assign studies")
        _assignments(session, accounts)


main()
