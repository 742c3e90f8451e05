"""The Streamlit app through streamlit.testing, on the real model and embedder."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

MAIN = str(Path(__file__).parent.parent / "app" / "main.py")


@pytest.mark.slow
def test_example_assistant_answers_a_starter_with_a_citation(home: Path) -> None:
    at = AppTest.from_file(MAIN, default_timeout=240)
    at.run()
    assert not at.exception
    assert at.title[0].value.endswith("archivist-guide")
    starter = next(b for b in at.button if "GPU" in b.label)
    starter.click().run()
    assert not at.exception
    messages = at.chat_message
    assert [m.name for m in messages] == ["user", "assistant"]
    labels = [e.label for e in at.expander]
    assert labels and labels[0].startswith("[1] ") and ".md" in labels[0]
    assert any("models.md" in label for label in labels)
