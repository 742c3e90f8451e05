"""The login of a shared app: served beyond this machine (`archivist ui --host 0.0.0.0`), the app
asks for one of the workspace's API keys (`archivist keys create NAME`) before it shows anything;
on loopback it opens as before. A key limited to some assistants logs in like any other (the app
does not narrow what it shows to them yet)."""

from __future__ import annotations

import os

import streamlit as st

LOGIN_ENV = "ARCHIVIST_UI_LOGIN"  # set by `archivist ui` when it binds beyond loopback


def login_required() -> bool:
    from app.api import is_loopback

    address = str(st.get_option("server.address") or "127.0.0.1")
    return os.environ.get(LOGIN_ENV) == "1" or not is_loopback(address)


def logged_out() -> bool:
    """Whether this visitor must log in before seeing anything."""
    return login_required() and not st.session_state.get("login-user")


def require_login() -> None:
    """Stop the page until the visitor has given a valid, unrevoked API key."""
    if not logged_out():
        return
    from app.api import KeyStore
    from app.ui.common import services

    st.title("Archivist")
    st.write("This app is shared: log in with an API key of this workspace.")
    secret = st.text_input("API key", type="password", key="login-key")
    if st.button("Log in", key="login-go", type="primary") and secret:
        key = KeyStore(services().store.engine).check(secret.strip())
        if key is None:
            st.error("That key is not valid here (or it was revoked).")
        else:
            st.session_state["login-user"] = key.name
            st.rerun()
    st.stop()
