"""The store: catalog as truth, FAISS derived and checked, replace and delete, crash recovery."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ingest import IndexMismatchError, Store, ingest_paths
from ingest.chunk import ChunkSettings
from retriever import search
from tests.shared import FakeEmbedder, slow_encoder


def _store(home: Path, emb: FakeEmbedder, url: str | None = None) -> Store:
    return Store(home, emb.name, emb.dim, url)


def test_ingest_search_unchanged_replace_delete(
    home: Path, tmp_path: Path, fake_embedder: FakeEmbedder, database_url: str | None
) -> None:
    store = _store(home, fake_embedder, database_url)
    f = tmp_path / "notes.md"
    f.write_text("# Pets\n\nThe cat sleeps on the red sofa.\n\n# Plants\n\nThe fern needs shade.\n")
    r = ingest_paths([f], "c", store, fake_embedder)
    assert [x.status for x in r.results] == ["added"]
    # the server backend keeps vectors in PostgreSQL: no FAISS file in the workspace
    assert (home / "indexes" / "c" / "dense.faiss").exists() == (database_url is None)
    assert "The cat sleeps" in search(store, fake_embedder, ["c"], "red sofa cat", 1)[0].text
    assert ingest_paths([f], "c", store, fake_embedder).results[0].status == "unchanged"

    f.write_text("# Pets\n\nThe dog sleeps in the garden.\n")
    assert ingest_paths([f], "c", store, fake_embedder).results[0].status == "replaced"
    docs = store.documents("c")
    assert len(docs) == 1 and docs[0].status == "ready"
    texts = [h.text for h in search(store, fake_embedder, ["c"], "cat sofa fern dog", 10)]
    assert texts and all("cat" not in t for t in texts)

    assert store.delete_document("c", "notes.md") == 1
    assert search(store, fake_embedder, ["c"], "dog garden", 5) == []
    assert store.index("c").size == 0


def test_index_out_of_step_with_catalog_is_rebuilt(home: Path, tmp_path: Path, fake_embedder: FakeEmbedder) -> None:
    store = _store(home, fake_embedder)
    (tmp_path / "a.txt").write_text("apples are red. bananas are yellow.")
    ingest_paths([tmp_path / "a.txt"], "c", store, fake_embedder)
    (home / "indexes" / "c" / "dense.faiss").unlink()
    fresh = _store(home, fake_embedder)
    assert fresh.index("c").size == 1
    assert search(fresh, fake_embedder, ["c"], "bananas", 1)[0].document == "a.txt"


def test_other_embedder_is_refused_with_how_to_reindex(
    home: Path, tmp_path: Path, fake_embedder: FakeEmbedder, database_url: str | None
) -> None:
    store = _store(home, fake_embedder, database_url)
    (tmp_path / "a.txt").write_text("apples are red.")
    ingest_paths([tmp_path / "a.txt"], "c", store, fake_embedder)
    other = Store(home, "other-model", fake_embedder.dim, database_url)
    with pytest.raises(IndexMismatchError, match="archivist reindex"):
        other.index("c")


def test_interrupted_document_becomes_failed_and_retryable(
    home: Path, tmp_path: Path, fake_embedder: FakeEmbedder
) -> None:
    from sqlalchemy import update

    from ingest.catalog import Document

    store = _store(home, fake_embedder)
    (tmp_path / "a.txt").write_text("apples are red.")
    (tmp_path / "b.txt").write_text("bananas are yellow.")
    ingest_paths([tmp_path / "a.txt", tmp_path / "b.txt"], "c", store, fake_embedder)
    with store.sessions.begin() as s:  # as if a writer died after storing b's chunks
        s.execute(update(Document).where(Document.name == "b.txt").values(status="indexing"))
    assert [h.document for h in search(store, fake_embedder, ["c"], "bananas apples", 5)] == ["a.txt"]
    r = ingest_paths([tmp_path / "b.txt"], "c", store, fake_embedder)
    assert r.results[0].status == "added"
    assert {d.name: d.status for d in store.documents("c")} == {"a.txt": "ready", "b.txt": "ready"}


def test_interrupted_replacement_is_forgotten_when_the_old_content_comes_back(
    home: Path, tmp_path: Path, fake_embedder: FakeEmbedder
) -> None:
    from ingest.catalog import Collection, Document

    store = _store(home, fake_embedder)
    f = tmp_path / "a.txt"
    f.write_text("apples are red.")
    ingest_paths([f], "c", store, fake_embedder)
    with store.sessions.begin() as s:  # as if a writer died while storing a changed a.txt
        col = s.query(Collection).filter_by(name="c").one()
        s.add(Document(collection_id=col.id, name="a.txt", sha256="0" * 64, format="text", size=9, status="indexing"))
    r = ingest_paths([f], "c", store, fake_embedder)  # the file on disk is the stored version again
    assert r.results[0].status == "unchanged"
    assert [(d.name, d.status) for d in store.documents("c")] == [("a.txt", "ready")]
    assert [h.document for h in search(store, fake_embedder, ["c"], "apples", 5)] == ["a.txt"]


def test_bad_files_fail_alone(
    home: Path, tmp_path: Path, fake_embedder: FakeEmbedder, database_url: str | None
) -> None:
    store = _store(home, fake_embedder, database_url)
    (tmp_path / "good.txt").write_text("good text about owls.")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "junk.txt").write_bytes(bytes(range(256)) * 4)
    r = ingest_paths(
        [tmp_path / "missing.pdf", tmp_path / "empty.txt", tmp_path / "junk.txt", tmp_path / "good.txt"],
        "c",
        store,
        fake_embedder,
    )
    assert [x.status for x in r.results] == ["failed", "failed", "failed", "added"]
    assert "missing.pdf: no such file" in (r.results[0].error or "")
    assert "empty.txt: file is empty" in (r.results[1].error or "")
    assert "junk.txt: unsupported file type" in (r.results[2].error or "")
    assert search(store, fake_embedder, ["c"], "owls", 1)[0].document == "good.txt"
    # the same bad bytes again under another name: listed under the name of the latest attempt
    (tmp_path / "junk-copy.bin").write_bytes((tmp_path / "junk.txt").read_bytes())
    again = ingest_paths([tmp_path / "junk-copy.bin"], "c", store, fake_embedder)
    assert again.results[0].status == "failed" and "junk-copy.bin" in (again.results[0].error or "")
    failed = {d.name: d.error for d in store.documents("c") if d.status == "failed"}
    assert "junk-copy.bin" in failed and "junk-copy.bin" in (failed["junk-copy.bin"] or ""), failed


def test_the_next_file_is_parsed_while_this_one_is_embedded_and_results_stay_in_order(
    home: Path, tmp_path: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a file's parse is done, the next file's parse starts before this file's last batch is
    embedded; a bad file staged ahead fails alone, reported at its own turn."""
    from ingest import staging

    monkeypatch.setattr(staging, "EMBED_BATCH", 4)
    events: list[str] = []
    parse, embed = staging.parse_in_worker, fake_embedder.embed

    def parsing(data, name, limits):  # type: ignore[no-untyped-def]
        events.append(f"parse {name}")
        return parse(data, name, limits)

    def embedding(texts, batch_size=None):  # type: ignore[no-untyped-def]
        events.append("embed " + texts[0].split()[1])
        if len(events) == 2:  # a real encoder takes a while: the parser finishes the small file meanwhile
            time.sleep(0.5)
        return embed(texts, batch_size)

    monkeypatch.setattr(staging, "parse_in_worker", parsing)
    monkeypatch.setattr(fake_embedder, "embed", embedding)
    for stem in ("alpha", "beta"):
        (tmp_path / f"{stem}.md").write_text("\n".join(f"# {stem} {i}\n\n{stem} text {i}.\n" for i in range(30)))
    (tmp_path / "empty.md").write_text("")
    files = [tmp_path / "alpha.md", tmp_path / "empty.md", tmp_path / "beta.md"]
    store = _store(home, fake_embedder)
    r = ingest_paths(files, "c", store, fake_embedder, chunking=ChunkSettings(8, 0))

    assert [x.status for x in r.results] == ["added", "failed", "added"]
    assert "empty.md: file is empty" in (r.results[1].error or "")
    alpha_embeds = [n for n, e in enumerate(events) if e == "embed alpha"]
    assert len(alpha_embeds) > 2, events
    # beta.md (after the empty file, which failed when staged) was parsed while alpha.md was embedded
    assert events.index("parse beta.md") < alpha_embeds[-1], " | ".join(events)
    assert search(store, fake_embedder, ["c"], "beta text 7", 1)[0].document == "beta.md"
    assert {d.name: d.status for d in store.documents("c")} == {
        "alpha.md": "ready",
        "beta.md": "ready",
        "empty.md": "failed",
    }


@pytest.mark.slow
def test_small_files_parsed_ahead_are_embedded_together_each_with_its_own_vectors(
    home: Path, tmp_path: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small files the parser read while an earlier file was embedded share encoder batches (sorted
    by length across files); each is still stored with its own chunks and vectors, in order, and
    a bad or unchanged file among them keeps its own result."""
    import numpy as np
    from sqlalchemy import text

    embed = fake_embedder.embed
    calls = slow_encoder(fake_embedder, monkeypatch)
    (tmp_path / "big.md").write_text("\n".join(f"# Part {i}\n\nbig text {i}.\n" for i in range(40)))
    small = [f"s{i}.md" for i in range(6)]
    for i, name in enumerate(small):
        words = " ".join(f"wading{i}x{j}" for j in range(2 + 9 * i))  # no chunk text repeats in another file
        (tmp_path / name).write_text(f"# S{i}\n\nheron{i} {words}.\n\n# More\n\nsmall{i} end.\n")
    (tmp_path / "empty.md").write_text("")
    store = _store(home, fake_embedder)
    assert ingest_paths([tmp_path / "s5.md"], "c", store, fake_embedder).results[0].status == "added"
    calls.clear()
    order = ["big.md", "s0.md", "s1.md", "empty.md", "s2.md", "s3.md", "s4.md", "s5.md"]
    seen: list[tuple[str, str]] = []
    r = ingest_paths(
        [tmp_path / n for n in order],
        "c",
        store,
        fake_embedder,
        chunking=ChunkSettings(8, 0),
        progress=lambda p: seen.append((p.name, p.stage)) if p.stage != "embedding" else None,
    )

    assert [Path(x.path).name for x in r.results] == order
    assert [x.status for x in r.results] == ["added"] * 3 + ["failed"] + ["added"] * 3 + ["unchanged"]
    assert "empty.md: file is empty" in (r.results[3].error or "")
    assert [n for n, st in seen if st != "reading"] == order  # each file reported once, in order
    with store.engine.connect() as c:
        rows = c.execute(
            text("SELECT d.name, c.text, c.embedding FROM chunks c JOIN documents d ON d.id = c.document_id")
        ).all()
    owner = {t: n for n, t, _ in rows}
    mixed = [b for b in calls if len({owner[t] for t in b}) > 1]
    assert mixed, calls  # some encoder batches held chunks of several files
    assert all(not b[0].startswith("big") for b in mixed)  # the file being parsed is embedded alone
    for _, t, blob in rows:
        assert np.allclose(np.frombuffer(blob, dtype=np.float32), embed([t])[0]), t[:40]
    for i in range(5):
        assert search(store, fake_embedder, ["c"], f"heron{i} small{i}", 1)[0].document == f"s{i}.md"
    assert {d.name: d.chunks for d in store.documents("c") if d.name.startswith("s")} == {
        x.name: x.chunks for x in r.results if x.name.startswith("s")
    }


def test_an_encoder_failure_in_a_group_of_small_files_fails_only_the_file_it_fails_on(
    home: Path, tmp_path: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingest import staging

    monkeypatch.setattr(staging, "EMBED_BATCH", 4)
    embed = fake_embedder.embed
    grouped: list[bool] = []

    def failing(texts, batch_size=None):  # type: ignore[no-untyped-def]
        time.sleep(0.1)  # the parser reads the small files meanwhile
        if any("poison" in t for t in texts):
            grouped.append(any("heron" in t for t in texts))
            raise RuntimeError("the encoder ran out of memory")
        return embed(texts, batch_size)

    monkeypatch.setattr(fake_embedder, "embed", failing)
    (tmp_path / "big.md").write_text("\n".join(f"# Part {i}\n\nbig text {i}.\n" for i in range(24)))
    names = ["big.md", "s0.md", "s1.md", "bad.md", "s2.md"]
    for i, name in enumerate(names[1:]):
        word = "poison" if name == "bad.md" else f"heron{i}"
        (tmp_path / name).write_text(f"# Note {i}\n\n{word} note number {i}.\n")
    store = _store(home, fake_embedder)
    r = ingest_paths([tmp_path / n for n in names], "c", store, fake_embedder, chunking=ChunkSettings(8, 0))

    assert [x.status for x in r.results] == ["added", "added", "added", "failed", "added"]
    assert r.results[3].error == "bad.md: RuntimeError: the encoder ran out of memory"
    assert grouped[0] is True  # it failed first in a group with the other small files
    for i in (0, 1, 3):
        assert search(store, fake_embedder, ["c"], f"heron{i}", 1)[0].document == names[i + 1]


def test_chunks_embedded_in_length_sorted_batches_keep_their_own_vectors(
    home: Path, tmp_path: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks are embedded sorted by length (less padding); each must still be stored, and found, with its own vector."""
    import numpy as np
    from sqlalchemy import text

    from ingest import staging

    monkeypatch.setattr(staging, "EMBED_BATCH", 4)
    monkeypatch.setattr(staging, "EMBED_GROUP", 16)
    calls: list[list[str]] = []
    embed = fake_embedder.embed

    def recording(texts, batch_size=64):  # type: ignore[no-untyped-def]
        calls.append(list(texts))
        return embed(texts, batch_size)

    monkeypatch.setattr(fake_embedder, "embed", recording)
    sections = []
    for i in range(40):  # sections of very different lengths, each with a word of its own
        body = " ".join(["filler"] * (3 + (i * 37) % 90))
        sections.append(f"# Section {i}\n\nmarker{i} {body}.\n")
    f = tmp_path / "mixed.md"
    f.write_text("\n".join(sections))
    store = _store(home, fake_embedder)
    assert ingest_paths([f], "c", store, fake_embedder).results[0].status == "added"

    with store.engine.connect() as c:
        rows = c.execute(text("SELECT text, n_tokens, embedding FROM chunks ORDER BY ordinal")).all()
    assert len(rows) >= 40
    for t, _, blob in rows:
        assert np.allclose(np.frombuffer(blob, dtype=np.float32), embed([t])[0]), t[:40]
    # batches hold chunks of similar length, not document order
    assert all(len(batch) <= 4 for batch in calls)
    lengths = {t: n for t, n, _ in rows}
    assert all([lengths[t] for t in b] == sorted((lengths[t] for t in b), reverse=True) for b in calls)
    assert [t for b in calls for t in b] != [t for t, _, _ in rows]
    for i in (0, 7, 23, 39):
        assert f"marker{i} " in search(store, fake_embedder, ["c"], f"marker{i}", 1)[0].text


def test_a_batch_writes_the_index_once_and_its_documents_become_searchable_together(
    home: Path, tmp_path: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingest import backend_local as store_module
    from ingest import vectors
    from ingest.pipeline import ingest_bytes

    monkeypatch.setattr(store_module, "FLUSH_S", 3600.0)
    writes = []
    real_save = vectors.VectorIndex.save
    monkeypatch.setattr(vectors.VectorIndex, "save", lambda self: (writes.append(1), real_save(self))[1])
    store = _store(home, fake_embedder)
    (tmp_path / "first.txt").write_text("Herons wade in shallow water.")
    ingest_paths([tmp_path / "first.txt"], "c", store, fake_embedder)
    writes.clear()

    reader = _store(home, fake_embedder)  # as another process sees the workspace
    with store.writer():
        for i in range(8):
            ingest_bytes(f"Note {i}: kingfishers dive number{i}.".encode(), f"n{i}.txt", "c", store, fake_embedder)
        # stored but not yet searchable: never half-visible to a reader
        assert {d.name: d.status for d in reader.documents("c")}["n3.txt"] == "indexing"
        assert [h.document for h in search(reader, fake_embedder, ["c"], "kingfishers herons", 10)] == ["first.txt"]
    assert len(writes) == 1  # one index write for the batch, not one per file
    assert {d.status for d in reader.documents("c")} == {"ready"}
    found = [h.document for h in search(reader, fake_embedder, ["c"], "kingfishers dive", 8)]
    assert sorted(found) == [f"n{i}.txt" for i in range(8)]
    assert reader.index("c").size == 9


def test_replacing_within_one_batch_keeps_only_the_last_version(
    home: Path, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch, database_url: str | None
) -> None:
    from ingest import backend_local as store_module
    from ingest.pipeline import ingest_bytes

    monkeypatch.setattr(store_module, "FLUSH_S", 3600.0)
    store = _store(home, fake_embedder, database_url)
    with store.writer():
        ingest_bytes(b"Version one mentions walruses.", "w.txt", "c", store, fake_embedder)
        ingest_bytes(b"Version two mentions narwhals.", "w.txt", "c", store, fake_embedder)
        ingest_bytes(b"Version one mentions walruses.", "copy.txt", "c", store, fake_embedder)  # same bytes, new name
    docs = {d.name: d.status for d in store.documents("c")}
    assert docs == {"w.txt": "ready", "copy.txt": "ready"}
    hits = search(_store(home, fake_embedder, database_url), fake_embedder, ["c"], "walruses narwhals", 10)
    assert sorted(h.document for h in hits) == ["copy.txt", "w.txt"]
    assert _store(home, fake_embedder, database_url).index("c").size == 2


def test_files_of_the_same_name_in_different_folders_stay_separate_documents(
    home: Path, tmp_path: Path, fake_embedder: FakeEmbedder, database_url: str | None
) -> None:
    docs = tmp_path / "docs"
    for sub, animal in (("howto", "beavers"), ("faq", "otters")):
        (docs / sub).mkdir(parents=True)
        (docs / sub / "index.html").write_text(f"<html><body><p>All about {animal} building dams.</p></body></html>")
    (docs / "readme.md").write_text("# Readme\n\nMoles dig tunnels.\n")
    store = _store(home, fake_embedder, database_url)
    r = ingest_paths([docs], "c", store, fake_embedder)
    assert sorted((x.name, x.status) for x in r.results) == [
        ("docs/faq/index.html", "added"),
        ("docs/howto/index.html", "added"),
        ("docs/readme.md", "added"),
    ]
    assert search(store, fake_embedder, ["c"], "otters", 1)[0].document == "docs/faq/index.html"
    assert search(store, fake_embedder, ["c"], "beavers", 1)[0].document == "docs/howto/index.html"

    # two files that would get one name in one batch: the second fails with a clear line, nothing is replaced
    other = tmp_path / "elsewhere" / "docs" / "readme.md"
    other.parent.mkdir(parents=True)
    other.write_text("# Readme\n\nVoles eat roots.\n")
    r = ingest_paths([docs, other.parent], "c", store, fake_embedder)
    failed = [x for x in r.results if x.status == "failed"]
    assert len(failed) == 1 and "same document name 'docs/readme.md'" in (failed[0].error or "")
    assert "Moles" in search(store, fake_embedder, ["c"], "moles tunnels", 1)[0].text


def test_an_interrupted_ingest_is_recorded_as_failed_never_lost(
    home: Path, fake_embedder: FakeEmbedder, database_url: str | None
) -> None:
    """Files a writer noted in its journal and never finished (the process stopped) are listed as
    failed with the reason by the next writer or listing; a running writer's files are in progress."""
    store = _store(home, fake_embedder, database_url)
    other = _store(home, fake_embedder, database_url)  # what another process sees
    with store.writer():
        note = store.journal("c", [("a.txt", b"alpha"), ("b.txt", b"bravo!")])
        assert other.recover_if_idle() is False  # a writer is at work: nothing is recovered from under it
        assert other.in_progress("c") == [("c", "a.txt", 5), ("c", "b.txt", 6)]
        store.journal_done(note, "a.txt")
    # the writer stopped with b.txt still noted (its process died mid-file)
    assert other.recover_if_idle() is True
    docs = {d.name: d for d in other.documents("c")}
    assert list(docs) == ["b.txt"] and docs["b.txt"].status == "failed"
    assert "interrupted while it was being ingested" in (docs["b.txt"].error or "")
    assert other.in_progress() == []


def test_a_workspace_made_before_migrations_is_upgraded_in_place(
    home: Path, tmp_path: Path, fake_embedder: FakeEmbedder
) -> None:
    from sqlalchemy import inspect, text

    from assistants.conversations import ConversationStore
    from ingest.schema import current, head

    store = _store(home, fake_embedder)
    (tmp_path / "a.txt").write_text("Apples are red and crisp.")
    ingest_paths([tmp_path / "a.txt"], "c", store, fake_embedder)
    conv = ConversationStore(store.engine).create("bot", "Fruit")
    assert current(store.engine) == head()
    with store.engine.begin() as conn:  # as an earlier version left it: no migrations, no jobs, no details
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("DROP TABLE ingest_jobs"))
        conn.execute(text("DROP TABLE assistants"))
        conn.execute(text("DROP TABLE originals"))
        conn.execute(text("DROP TABLE collection_sources"))
        conn.execute(text("ALTER TABLE messages DROP COLUMN details_json"))
        conn.execute(text("ALTER TABLE documents DROP COLUMN pages_json"))
        conn.execute(
            text(
                "INSERT INTO messages (conversation_id, role, text, citations_json, prompt_tokens, "
                "evaluated_tokens, completion_tokens, total_time, settings_json, created_at) "
                f"VALUES ({conv.id}, 'user', 'Which apples?', '[]', 0, 0, 0, 0, '{{}}', '2026-01-01')"
            )
        )
    store.engine.dispose()

    reopened = _store(home, fake_embedder)
    assert current(reopened.engine) == head()
    tables = set(inspect(reopened.engine).get_table_names())
    assert {
        "ingest_jobs",
        "assistants",
        "originals",
        "collection_sources",
        "chunks_fts",
        "documents",
        "messages",
    } <= tables
    assert [(d.name, d.status) for d in reopened.documents("c")] == [("a.txt", "ready")]
    for mode in ("dense", "keyword"):
        assert search(reopened, fake_embedder, ["c"], "apples crisp", 1, mode=mode)[0].document == "a.txt"
    (message,) = ConversationStore(reopened.engine).messages(conv.id)
    assert message.text == "Which apples?"


def test_the_example_guide_holds_the_user_pages_not_the_developer_ones(
    home: Path, tmp_path: Path, fake_embedder: FakeEmbedder
) -> None:
    """The example assistant answers how to use Archivist: docs/architecture.md and
    docs/benchmarks.md are for people working on it, and an earlier ingest of them is taken out."""
    from app.services import EXAMPLE_COLLECTION, Services, ensure_example_knowledge

    docs = tmp_path / "docs"
    docs.mkdir()
    for page in ("knowledge.md", "architecture.md", "benchmarks.md"):
        (docs / page).write_text(f"# {page}\n\nThe page {page} says what it says about Archivist.\n")
    svc = Services.create(home, embedder=fake_embedder)
    ingest_paths([docs], EXAMPLE_COLLECTION, svc.store, fake_embedder)  # as an earlier version did
    ensure_example_knowledge(svc, docs)
    assert [d.name for d in svc.store.documents(EXAMPLE_COLLECTION)] == ["docs/knowledge.md"]
