"""A question about a PDF, answered end to end on the real bundled model and embedder."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.services import Services
from assistants import parse_assistant
from ingest import ingest_paths
from tests.conftest import make_pdf

PAGES = [
    "Harbor Lights Field Guide. This guide describes the lighthouses of the northern coast.",
    "Maintenance schedule. The lens of the Greywater lighthouse is cleaned every Tuesday by the keeper. "
    "The lamp runs on a 24 volt supply.",
    "Visiting hours. The museum shop sells postcards and maps. Parking is free on weekends.",
    "Wildlife. Puffins nest on the cliffs below the tower from April to August.",
]


@pytest.mark.slow
def test_pdf_question_cites_the_right_page(home: Path, tmp_path: Path, real_embedder, model_pool) -> None:
    pdf = make_pdf(tmp_path / "harbor.pdf", PAGES)
    svc = Services.create(home, embedder=real_embedder)
    svc.__dict__["models"] = model_pool  # share the session's loaded model
    report = ingest_paths([pdf], "harbor", svc.store, svc.embedder)
    assert report.results[0].status == "added" and report.results[0].pages == 4

    assistant = parse_assistant(
        {
            "name": "harbor",
            "knowledge": {"collections": ["harbor"]},
            "model": {"temperature": 0, "max_tokens": 60, "context_window": 2048},
            "retrieval": {"top_k": 3},
        },
        "test",
    )
    stream = svc.chat.ask(assistant, "How often is the Greywater lighthouse lens cleaned?")
    pieces = list(stream)
    answer = stream.result()
    assert len(pieces) > 1 and answer.text.strip()
    assert answer.citations[0].document == "harbor.pdf"
    assert answer.citations[0].page == 2
    assert answer.stats.completion_tokens > 0 and answer.stats.prompt_tokens > 0
