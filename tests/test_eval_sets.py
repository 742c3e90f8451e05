"""The question sets shipped for benches and `archivist eval` load, and each answerable question
carries what its measures need."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retriever import load_questions

SETS = sorted((Path(__file__).resolve().parent.parent / "bench" / "eval").glob("*.jsonl"))


def test_the_sets_are_found() -> None:
    assert {p.name for p in SETS} >= {
        "second-dev.jsonl",
        "third-dev.jsonl",
        "fourth-dev.jsonl",
        "r-manuals-unanswerable.jsonl",
    }


@pytest.mark.parametrize("path", SETS, ids=lambda p: p.name)
def test_each_set_loads_with_unique_ids_and_evidence_for_every_answerable_question(path: Path) -> None:
    questions = load_questions(path)
    ids = [q.id for q in questions]
    assert len(ids) == len(set(ids)), f"{path.name}: repeated ids"
    for q in questions:
        assert q.question.strip() and q.document, q.id
        if q.unanswerable:
            continue
        assert q.evidence and q.answer, f"{path.name}: {q.id} lacks evidence or an answer"
        # a PDF question names the page(s) that answer it; an HTML page has none
        assert bool(q.pages) == q.document.lower().endswith(".pdf"), f"{path.name}: {q.id} pages {q.pages}"
    for line in path.read_text(encoding="utf-8").splitlines():
        assert set(json.loads(line)) <= {"id", "document", "question", "answer", "pages", "evidence", "unanswerable"}
