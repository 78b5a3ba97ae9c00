"""The Streamlit curation app: pages, widgets and app state."""
