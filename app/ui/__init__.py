"""Streamlit pages. Each page only calls services; shared objects come from `ui.common`."""
