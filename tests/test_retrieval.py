"""Hybrid search, fusion, filters, de-duplication, the reranker seam, evaluation and prompt marking."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from ingest import ChunkSettings, Store, ingest_paths
from retriever import SearchFilter, evaluate, load_questions, rrf, search
from retriever.keyword import fts_query
from tests.shared import FakeEmbedder, make_pdf


def test_rrf_weights_and_ranks() -> None:
    fused = rrf([[(1, 0.9), (2, 0.8)], [(2, 5.0), (3, 4.0)]], [1.0, 0.5], k=60)
    assert [cid for cid, _ in fused] == [2, 1, 3]
    assert fused[0][1] == pytest.approx(1 / 62 + 0.5 / 61)


def test_fts_query_quotes_words_and_drops_stopwords() -> None:
    assert fts_query('What is the "NaN" value of sqrt(-1)?') == '"nan" OR "value" OR "sqrt"'
    assert fts_query("the of and") == ""


@pytest.fixture
def store(home: Path, tmp_path: Path, fake_embedder: FakeEmbedder, database_url: str | None) -> Store:
    s = Store(home, fake_embedder.name, fake_embedder.dim, database_url)
    make_pdf(tmp_path / "zoo.pdf", ["Penguins eat krill.", "Lions sleep twenty hours.", "Krill are tiny shrimp."])
    (tmp_path / "notes.txt").write_text("Krill oil is sold as a supplement. Zebra stripes confuse flies.")
    ingest_paths([tmp_path / "zoo.pdf", tmp_path / "notes.txt"], "c", s, fake_embedder)
    return s


def test_modes_find_keyword_matches(store: Store, fake_embedder: FakeEmbedder) -> None:
    for mode in ("dense", "keyword", "hybrid"):
        hits = search(store, fake_embedder, ["c"], "zebra stripes", 2, mode=mode)
        assert hits[0].document == "notes.txt", mode


def test_filters_by_document_and_pages(store: Store, fake_embedder: FakeEmbedder) -> None:
    for mode in ("dense", "keyword", "hybrid"):
        hits = search(store, fake_embedder, ["c"], "krill", 5, mode=mode, where=SearchFilter(("zoo.pdf",), 2, 3))
        assert hits and all(h.document == "zoo.pdf" and h.page in (2, 3) for h in hits), mode
        assert hits[0].page == 3, mode
        none = search(store, fake_embedder, ["c"], "krill", 5, mode=mode, where=SearchFilter(("nope.pdf",)))
        assert none == [], mode


def test_a_passage_mostly_repeating_a_better_one_is_dropped_and_a_neighbour_stays(
    home: Path, tmp_path: Path, fake_embedder: FakeEmbedder, database_url: str | None
) -> None:
    """Chunks that repeat most of a better-ranked one add nothing; a neighbour that shares only
    the overlap brings the rest of its text, which may hold the answer."""
    text = " ".join(f"Otters hold hands while sleeping number {i}." for i in range(40))
    (tmp_path / "o.txt").write_text(text)

    def spans(overlap: int) -> list[tuple[int, int]]:
        s = Store(home / str(overlap), fake_embedder.name, fake_embedder.dim, database_url)
        ingest_paths([tmp_path / "o.txt"], "c", s, fake_embedder, chunking=ChunkSettings(40, overlap))
        return sorted((h.start, h.end) for h in search(s, fake_embedder, ["c"], "otters hold hands sleeping", 10))

    def shared(a: tuple[int, int], b: tuple[int, int]) -> float:
        return max(0, min(a[1], b[1]) - max(a[0], b[0])) / min(a[1] - a[0], b[1] - b[0])

    heavy = spans(30)  # each chunk repeats three quarters of the one before
    assert len(heavy) >= 3 and all(shared(a, b) <= 0.5 for a, b in itertools.combinations(heavy, 2)), heavy
    light = spans(12)  # one sentence repeated
    assert len(light) >= 5 and any(0 < shared(a, b) <= 0.5 for a, b in itertools.pairwise(light)), light


def test_each_page_is_cited_once_before_any_page_twice(
    home: Path, tmp_path: Path, fake_embedder: FakeEmbedder, database_url: str | None
) -> None:
    """Page 1 has many passages about otters, page 2 one: the second hit is page 2's, not page 1's again."""
    s = Store(home, fake_embedder.name, fake_embedder.dim, database_url)
    page1 = " ".join(f"Otters hold hands while sleeping, note {i}, in the kelp beds of the bay." for i in range(30))
    page2 = "Otters sleeping in zoos hold hands less often. " + "Keepers feed seals at noon. " * 5
    pdf = make_pdf(tmp_path / "otters.pdf", [page1, page2, "Seals bask on the rocks at low tide."])
    ingest_paths([pdf], "c", s, fake_embedder, chunking=ChunkSettings(40, 0))
    per_page = {
        p: sum(h.page == p for h in search(s, fake_embedder, ["c"], "otters sleeping hold hands", 50)) for p in (1, 2)
    }
    assert per_page[1] >= 3 and per_page[2] >= 1  # page 1 alone has more matching passages than k
    hits = search(s, fake_embedder, ["c"], "otters sleeping hold hands", 5, mode="hybrid")
    # every page's best passage first, in rank order; a page's further passages after them
    assert [h.page for h in hits] == [1, 2, 3, 1, 1], [(h.page, h.text[:40]) for h in hits]
    # an answer reads a page's two best passages before the other pages' (its answer is often the second)
    from assistants import Assistant
    from assistants.chat import ChatService

    bot = Assistant(name="b", knowledge={"collections": ["c"]}, retrieval={"top_k": 5, "mode": "hybrid"})
    read = ChatService(s, fake_embedder, None).retrieve(bot, "otters sleeping hold hands")  # type: ignore[arg-type]
    assert [h.page for h in read] == [1, 1, 2, 3, 1], [(h.page, h.text[:40]) for h in read]
    assert [h.chunk_id for h in read if h.page == 1] == [h.chunk_id for h in hits if h.page == 1]  # same passages


def test_a_contents_page_comes_after_the_pages_it_points_to(
    home: Path, tmp_path: Path, fake_embedder: FakeEmbedder, database_url: str | None
) -> None:
    s = Store(home, fake_embedder.name, fake_embedder.dim, database_url)
    contents = (
        "Contents\n1 Otters and their habits . . . . . . . . 2\n1.1 Otters sleeping in kelp . . . . . . 2\n"
        "1.2 Otters hold hands . . . . . . . . 2\n2 Seals . . . . . . . . . . 3"
    )
    answer = "Sea otters wrap themselves in kelp and hold paws so they do not drift apart."
    pdf = make_pdf(tmp_path / "guide.pdf", [contents, answer, "Seals bask on the rocks at low tide."])
    ingest_paths([pdf], "c", s, fake_embedder)
    for mode in ("keyword", "hybrid"):
        hits = search(s, fake_embedder, ["c"], "otters sleeping kelp hold hands", 3, mode=mode)
        pages = [h.page for h in hits]
        assert 1 in pages and pages.index(2) < pages.index(1), (mode, pages)  # found, but listed after


HARBOR_QUESTIONS = [  # (question, the page of the harbor guide that answers it)
    ("How often is the lens cleaned?", 2),
    ("What voltage does the lamp use?", 2),
    ("Where can visitors park?", 3),
    ("When do puffins nest?", 4),
]


@pytest.mark.slow
def test_a_trained_reranker_orders_the_passages_and_puts_the_answer_first(harbor, trained_reranker: Path) -> None:  # type: ignore[no-untyped-def]
    """A cross-encoder trained on other questions (tests/reranker_training.py) drives the final
    order, and on this guide it puts the page that answers first."""
    from retriever import CrossEncoderReranker

    svc, _ = harbor
    reranker = CrossEncoderReranker(str(trained_reranker))
    for question, page in HARBOR_QUESTIONS:
        pool = search(svc.store, svc.embedder, ["harbor"], question, 20, mode="hybrid")  # every candidate
        ranked = search(svc.store, svc.embedder, ["harbor"], question, 3, mode="hybrid", reranker=reranker)
        expected = sorted(pool, key=lambda h: reranker.score(question, [h.text])[0], reverse=True)[:3]
        assert [h.chunk_id for h in ranked] == [h.chunk_id for h in expected], question
        assert [h.score for h in ranked] == sorted((h.score for h in ranked), reverse=True)
        assert ranked[0].page == page, question


def test_a_reranker_named_in_the_assistants_yaml_orders_its_citations(harbor, trained_reranker: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Through the real parts: the YAML file in the workspace, the CLI, the store, MiniLM and the
    cross-encoder (extractive answers, so no generation model is needed)."""
    import yaml

    from app import cli
    from retriever import CrossEncoderReranker

    svc, _ = harbor
    spec = {
        "name": "harbor-reranked",
        "knowledge": {"collections": ["harbor"]},
        "answer_mode": "extractive",
        "retrieval": {"top_k": 3, "reranker": str(trained_reranker), "unknown_terms": "answer"},
    }
    (svc.home / "assistants").mkdir(parents=True, exist_ok=True)
    (svc.home / "assistants" / "harbor-reranked.yaml").write_text(yaml.safe_dump(spec))
    reranker = CrossEncoderReranker(str(trained_reranker))
    for question, page in HARBOR_QUESTIONS:
        assert cli.main(["ask", "harbor-reranked", question, "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        cited = out["citations"]
        assert cited and cited[0]["page"] == page, (question, out)
        texts = svc.store.chunks([c["chunk_id"] for c in cited])
        scores = reranker.score(question, [texts[c["chunk_id"]].text for c in cited])
        assert scores == sorted(scores, reverse=True), question  # numbered in the reranker's order


def test_eval_scores_a_question_set(store: Store, fake_embedder: FakeEmbedder, tmp_path: Path) -> None:
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        json.dumps({"id": "a", "document": "zoo.pdf", "question": "how long do lions sleep", "pages": [2]})
        + "\n"
        + json.dumps({"id": "b", "document": "zoo.pdf", "question": "what do penguins eat", "pages": [1]})
        + "\n"
        + json.dumps({"id": "c", "document": "zoo.pdf", "question": "giraffe necks", "pages": [9]})
        + "\n"
    )
    r = evaluate(store, fake_embedder, "c", load_questions(qa), "hybrid")
    assert r.questions == 3 and r.hit_at_1 == pytest.approx(2 / 3) and r.hit_at_5 == pytest.approx(2 / 3)
    assert r.mrr == pytest.approx(2 / 3) and r.misses == ["c"] and r.p50_ms > 0


def test_bad_eval_line_names_file_and_line(tmp_path: Path) -> None:
    from runtime import ArchivistError

    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"document": "a.pdf", "question": "q", "pages": [1]}\n{"question": "no document"}\n')
    with pytest.raises(ArchivistError, match="qa.jsonl:2: not a question line"):
        load_questions(qa)


def test_evidence_may_list_several_places(tmp_path: Path) -> None:
    """A question the documents answer in two places lists both; a list holding anything but
    non-empty strings is an error naming the line."""
    from runtime import ArchivistError

    qa = tmp_path / "qa.jsonl"
    line = {"id": "a", "document": "a.pdf", "question": "q", "pages": [1, 9]}
    qa.write_text(
        json.dumps({**line, "evidence": "one place"}) + "\n" + json.dumps({**line, "id": "b", "evidence": ["x", "y"]})
    )
    assert [q.evidence for q in load_questions(qa)] == [("one place",), ("x", "y")]
    for bad in (["x", ""], ["x", 3], {"x": 1}):
        qa.write_text(json.dumps({**line, "evidence": "fine"}) + "\n" + json.dumps({**line, "evidence": bad}))
        with pytest.raises(ArchivistError, match="qa.jsonl:2: .*'evidence' must be a non-empty string or a list"):
            load_questions(qa)


def test_index_switches_to_hnsw_and_rebuilds_on_delete(
    home: Path, tmp_path: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.vectors

    monkeypatch.setattr(ingest.vectors, "APPROX_THRESHOLD", 10)
    monkeypatch.setattr(ingest.vectors.VectorIndex.__init__, "__defaults__", (10,))
    s = Store(home, fake_embedder.name, fake_embedder.dim)
    for i in range(4):
        (tmp_path / f"f{i}.txt").write_text("\n\n".join(f"Topic {i} fact {j} about item{i}x{j}." for j in range(5)))
    ingest_paths(
        sorted(tmp_path.glob("f*.txt")), "c", s, fake_embedder, chunking=__import__("ingest").ChunkSettings(8, 0)
    )
    assert s.index("c").approximate and s.index("c").size == 20
    assert search(s, fake_embedder, ["c"], "item2x3", 1, mode="dense")[0].document == "f2.txt"
    s.delete_document("c", "f2.txt")
    assert s.index("c").size == 15
    assert all(h.document != "f2.txt" for h in search(s, fake_embedder, ["c"], "item2x3", 5, mode="dense"))


def test_relevance_floor_gives_the_refusal_without_calling_the_model(store: Store, fake_embedder: FakeEmbedder) -> None:
    from assistants import ChatService, parse_assistant

    class NoModels:
        def get(self, *a: object, **k: object) -> None:
            raise AssertionError("the model must not be called")

    chat = ChatService(store, fake_embedder, NoModels())  # type: ignore[arg-type]
    strict = parse_assistant(
        {
            "name": "z",
            "knowledge": {"collections": ["c"]},
            "refusal": "Not in my documents.",
            "retrieval": {"min_score": 0.99},
        },
        "t",
    )
    answer = chat.ask(strict, "quantum chromodynamics lattice").result()
    assert answer.refused and answer.text == "Not in my documents." and answer.citations == []


def test_eval_works_on_documents_without_pages(
    home: Path, tmp_path: Path, fake_embedder: FakeEmbedder, database_url: str | None
) -> None:
    """HTML and Markdown have no pages: a question names the document with `pages: []`, and any of
    its passages counts (this raised `near ")"` from an empty page clause)."""
    (tmp_path / "zebras.md").write_text("# Zebras\n\nZebras have black and white stripes that confuse biting flies.\n")
    (tmp_path / "owls.md").write_text("# Owls\n\nOwls hunt at night and turn their heads far around.\n")
    store = Store(home, fake_embedder.name, fake_embedder.dim, database_url)
    ingest_paths([tmp_path / "zebras.md", tmp_path / "owls.md"], "animals", store, fake_embedder)
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        json.dumps({"id": "z", "document": "zebras.md", "question": "zebras stripes biting flies", "pages": []})
        + "\n"
        + json.dumps({"id": "o", "document": "owls.md", "question": "owls hunt at night", "pages": []})
        + "\n"
    )
    r = evaluate(store, fake_embedder, "animals", load_questions(qa), "keyword")
    assert r.questions == 2 and r.hit_at_1 == 1.0 and r.misses == [] and r.ndcg_at_10 > 0


def test_dense_hybrid_filters_and_floor_on_the_real_embedder(harbor) -> None:  # type: ignore[no-untyped-def]
    """The same checks as above on all-MiniLM-L6-v2 over a real PDF, not the hashing fake."""
    from assistants import parse_assistant
    from ingest.filters import SearchFilter

    svc, _ = harbor
    for mode in ("dense", "hybrid"):
        hits = svc.search(
            ["harbor"], "When do the seabirds breed on the cliffs?", 3, mode=mode
        )  # "puffins nest" asked in other words
        assert hits[0].page == 4, (mode, [(h.page, h.score) for h in hits])
    only_two = svc.search(["harbor"], "lighthouse", 5, mode="hybrid", where=SearchFilter(page_from=2, page_to=2))
    assert only_two and {h.page for h in only_two} == {2}
    bot = {"name": "b", "knowledge": {"collections": ["harbor"]}, "answer_mode": "extractive"}
    strict = parse_assistant({**bot, "retrieval": {"min_score": 0.95, "unknown_terms": "answer"}}, "t")
    answer = svc.chat.ask(strict, "When is the lens of the Greywater lighthouse cleaned?").result()
    assert answer.refused and "relevance floor 0.95" in answer.refusal_reason
    usual = parse_assistant({**bot, "retrieval": {"min_score": 0.2}}, "t")
    answer = svc.chat.ask(usual, "When is the lens of the Greywater lighthouse cleaned?").result()
    assert not answer.refused and "Tuesday" in answer.text
