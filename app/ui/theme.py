"""The app's colours, chosen for WCAG AA contrast (4.5:1 for text) on every text Streamlit draws.

Streamlit's light theme draws captions and help text in its text colour at 60% opacity; with its
default text colour (#31333F) that is 3.9:1 on white, and its red primary colour under white button
text is 3.6:1, and its green inline code inside a caption 3.05:1. A darker text colour (captions
then 4.9:1, and inline code drawn in it) and a darker blue primary (white on it 6.2:1) pass. Passed to Streamlit as command-line options by `archivist ui` (and by the browser tests'
launcher, which checks the contrast of every visible text)."""

from __future__ import annotations

THEME = {
    "base": "light",
    "textColor": "#111318",
    "primaryColor": "#1f5fbf",
    "linkColor": "#1a55ad",
    "codeTextColor": "#111318",  # inline code inside a caption (drawn at 60%) stays readable
}


# The builder puts unsaved edits back into its fields through the Session State API, on purpose.
OPTIONS = {"global.disableWidgetStateDuplicationWarning": "true"}


def app_flags() -> list[str]:
    """The theme and options as `streamlit run` options."""
    return [f"--theme.{key}={value}" for key, value in THEME.items()] + [f"--{k}={v}" for k, v in OPTIONS.items()]
