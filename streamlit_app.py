"""MedFILIP Curation Studio: ``streamlit run streamlit_app.py`` (or ``make demo``)."""

import streamlit as st

from curation_app import reviewer, state

st.set_page_config(page_title="MedFILIP Curation Studio", page_icon="🩻", layout="wide")

pages = [
    st.Page("curation_app/pages/studies.py", title="Studies", icon=":material/photo_library:", default=True),
    st.Page(state.PAGE_REVIEW, title="Review", icon=":material/fact_check:"),
    st.Page("curation_app/pages/knowledge.py", title="Knowledge", icon=":material/menu_book:"),
    st.Page("curation_app/pages/agreement.py", title="Agreement", icon=":material/handshake:"),
    st.Page("curation_app/pages/data.py", title="Data", icon=":material/monitoring:"),
    st.Page("curation_app/pages/runs.py", title="Runs", icon=":material/model_training:"),
    st.Page("curation_app/pages/similarity.py", title="Similarity", icon=":material/image_search:"),
    st.Page("curation_app/pages/errors.py", title="Error analysis", icon=":material/rule:"),
    st.Page("curation_app/pages/ssm.py", title="SSM", icon=":material/grid_on:"),
]
nav = st.navigation(pages)

with st.sidebar:
    st.caption("MedFILIP Curation Studio")
    reviewer.sidebar_picker()  # every page that writes reads the identity picked here
    st.caption(f"Store: `{state.settings().database_url.split('@')[-1]}`")

nav.run()
