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


def show_problems(problems: dict[str, list[str]]) -> None:
    """Each field's messages, in plain words, in its slot."""
    for prefix, slot in _SLOTS:
        lines = [
            f"{path}: {m}"
            for path, msgs in problems.items()
            if path == prefix or path.startswith(prefix + ".")
            for m in msgs
        ]
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
