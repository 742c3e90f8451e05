"""What the builder's sections share: a choice shown in words, the places for field messages,
and a model's tool support read from its file."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app.ui.common import plain

OTHER = "Another model (type its name below)"


def pick(col: Any, label: str, choices: dict[str, str], current: str, key: str, help: str) -> str:
    """A selectbox over a setting's choices, each shown in words."""
    options = list(choices)
    index = options.index(current) if current in options else 0
    return str(col.selectbox(label, options, index=index, format_func=choices.__getitem__, key=key, help=help))


_SLOTS: list[tuple[str, Any]] = []  # (field path, its message slot) of the run being drawn


def field_errors(prefix: str) -> None:
    """A place under a field for its messages, filled by `show_problems` once the whole draft is
    checked, so a fixed field loses its message in the same run."""
    _SLOTS.append((prefix, st.empty()))


# The field paths of an assistant's YAML as the builder labels them.
LABELS = {
    "name": "Name",
    "display_name": "Display name",
    "description": "Description",
    "instructions": "Instructions",
    "knowledge": "Knowledge",
    "knowledge.collections": "Knowledge",
    "starters": "Conversation starters",
    "refusal": "Reply when the documents don't answer",
    "model": "Model",
    "model.path": "Model",
    "retrieval": "Finding passages",
    "tools": "Tools",
    "tools.web.allow_private": "Web reader may also read (private addresses)",
}


def field_label(path: str) -> str:
    """A problem's field as the builder names it: 'model.temperature' -> 'Model: temperature'."""
    if path in LABELS:
        return LABELS[path]
    head, _, rest = path.partition(".")
    return f"{LABELS.get(head, head.replace('_', ' ').capitalize())}: {rest.replace('_', ' ')}" if rest else path


def show_problems(problems: dict[str, list[str]]) -> None:
    """Each field's messages, in plain words, in its slot; a message for a field the form has no slot
    for goes to the first slot, so nothing marked is ever hidden."""
    owned = {prefix: [p for p in problems if p == prefix or p.startswith(prefix + ".")] for prefix, _ in _SLOTS}
    shown = {p for paths in owned.values() for p in paths}
    rest = [p for p in problems if p not in shown]
    for i, (prefix, slot) in enumerate(_SLOTS):
        paths = owned[prefix] + (rest if i == 0 else [])
        lines = [f"{field_label(path)}: {m}" for path in paths for m in problems[path]]
        if lines:
            slot.error(plain("; ".join(lines)), icon=":material/error:")
        else:
            slot.empty()


@st.cache_data(show_spinner=False)
def tool_support_of(spec: str, models_dir: str) -> tuple[bool, str]:
    """Read from the GGUF's metadata (its chat template), not by loading the model."""
    from pathlib import Path

    from runtime.toolcalls import model_tool_support

    return model_tool_support(spec, Path(models_dir))


def new_draw() -> None:
    """A new run draws the fields again: forget the last run's message places."""
    _SLOTS.clear()
