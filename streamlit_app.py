"""MedFILIP Curation Studio: ``streamlit run streamlit_app.py`` (or ``make demo``)."""

import streamlit as st

from curation_app import auth, state
from curation_app.auth import Permission

st.set_page_config(page_title="MedFILIP Curation Studio", page_icon="🩻", layout="wide")

actor = auth.current_actor()
if actor is None:
    auth.flush_cookie()  # a sign-out's cookie expiry
    st.navigation([st.Page(auth.sign_in_page, title="Sign in", icon=":material/login:")]).run()
    st.stop()

pages = [
    st.Page(state.PAGE_REVIEW, title="Review", icon=":material/fact_check:", default=True),
    st.Page("curation_app/pages/studies.py", title="Studies", icon=":material/photo_library:"),
    st.Page("curation_app/pages/knowledge.py", title="Knowledge", icon=":material/menu_book:"),
    st.Page("curation_app/pages/dashboard.py", title="Dashboard", icon=":material/insights:"),
    st.Page("curation_app/pages/agreement.py", title="Agreement", icon=":material/handshake:"),
    st.Page("curation_app/pages/export.py", title="Export", icon=":material/download:"),
    st.Page("curation_app/pages/data.py", title="Data", icon=":material/monitoring:"),
    st.Page("curation_app/pages/runs.py", title="Runs", icon=":material/model_training:"),
    st.Page("curation_app/pages/similarity.py", title="Similarity", icon=":material/image_search:"),
    st.Page("curation_app/pages/errors.py", title="Error analysis", icon=":material/rule:"),
    st.Page("curation_app/pages/ssm.py", title="SSM", icon=":material/grid_on:"),
]
if actor.can(Permission.adjudicate):
    pages.insert(1, st.Page("curation_app/pages/adjudicate.py", title="Adjudication",
                            icon=":material/gavel:"))
if actor.can(Permission.manage_accounts):
    pages.append(st.Page("curation_app/pages/admin.py", title="Accounts & assignments",
                         icon=":material/admin_panel_settings:"))
nav = st.navigation(pages)

with st.sidebar:
    st.caption("MedFILIP Curation Studio")
    auth.sidebar(actor)
    st.caption(f"Store: `{state.settings().database_url.split('@')[-1]}`")

nav.run()
