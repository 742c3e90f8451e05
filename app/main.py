"""The Streamlit app: assistant builder and chat with your documents.

Run with `streamlit run app/main.py` or `archivist ui`. Pages only call services.
"""

from __future__ import annotations

import streamlit as st

from app.ui.login import logged_out, require_login

st.set_page_config(page_title="Archivist", page_icon=":books:", layout="wide")
page = st.navigation(
    [
        st.Page("ui/chat.py", title="Chat", icon=":material/chat:", default=True),
        st.Page("ui/assistants.py", title="Assistants", icon=":material/smart_toy:"),
        st.Page("ui/knowledge.py", title="Knowledge", icon=":material/folder:"),
        st.Page("ui/models.py", title="Models", icon=":material/memory:"),
        st.Page("ui/arena.py", title="Arena", icon=":material/sports_mma:"),
        st.Page("ui/settings.py", title="Settings", icon=":material/settings:"),
    ],
    position="hidden" if logged_out() else "sidebar",  # no page list before the login
)
require_login()  # served beyond this machine: an API key first (the page asked for opens after it)
page.run()
