"""Delete means delete: after a document, a collection's document or a conversation is deleted, no
file under the workspace holds its text (a bytes search of every file, the SQLite file and its
write-ahead log included)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.services import Services
from assistants import parse_assistant
from ingest import ingest_paths
from ingest.errors import IngestError
from tests.shared import FakeEmbedder

MARKER = "zqxjvmarker4711"


def holding(home: Path, marker: str) -> list[str]:
    """The files under `home` whose bytes hold `marker`."""
    return sorted(
        str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and marker.encode() in p.read_bytes()
    )


def test_a_deleted_document_leaves_no_trace_in_the_workspace(home: Path, tmp_path: Path) -> None:
    emb = FakeEmbedder()
    svc = Services.create(home, embedder=emb)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "secret.txt").write_text(f"The vault code is {MARKER} and the vault is in the cellar.\n" * 40)
    (docs / "keep.txt").write_text("The ferry leaves the harbor at seven every morning.\n" * 40)
    ingest_paths([docs / "secret.txt", docs / "keep.txt"], "c", svc.store, emb)
    assert holding(home, MARKER)  # it is there: the catalog, the full-text index, the original
    assert svc.store.delete_document("c", "secret.txt") == 1
    assert holding(home, MARKER) == []
    assert [d.name for d in svc.store.documents("c")] == ["keep.txt"]  # the rest stays, and is found
    assert svc.search(["c"], "when does the ferry leave", k=1)[0].document == "keep.txt"


def test_a_deleted_conversation_leaves_no_trace_in_the_workspace(home: Path) -> None:
    svc = Services.create(home, embedder=FakeEmbedder())
    conv = svc.conversations.create("archivist-guide")
    svc.conversations.add_turn(conv.id, {"text": f"My locker code is {MARKER}."}, {"text": f"Noted: {MARKER}."})
    other = svc.conversations.create("archivist-guide")
    svc.conversations.add_turn(other.id, {"text": "Hello?"}, {"text": "Hello."})
    assert holding(home, MARKER)
    svc.conversations.delete(conv.id)
    assert holding(home, MARKER) == []
    assert [m.text for m in svc.conversations.messages(other.id)] == ["Hello?", "Hello."]


def test_collections_are_renamed_with_their_assistants_and_deleted_without_a_trace(
    home: Path, tmp_path: Path, database_url
) -> None:  # type: ignore[no-untyped-def]
    from app.settings import Settings

    emb = FakeEmbedder()
    svc = Services.create(embedder=emb, settings=Settings.load(home=home, database_url=database_url))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "secret.txt").write_text(f"The vault code is {MARKER} and the vault is in the cellar.\n" * 40)
    ingest_paths([docs / "secret.txt"], "vault", svc.store, emb)
    (docs / "keep.txt").write_text("The ferry leaves the harbor at seven every morning.")
    ingest_paths([docs / "keep.txt"], "port", svc.store, emb)
    (home / "assistants").mkdir(parents=True, exist_ok=True)
    svc.library.save(parse_assistant({"name": "vault-bot", "knowledge": {"collections": ["vault", "port"]}}, "t"))

    assert svc.rename_collection("vault", "strongroom") == []
    assert svc.store.collection_names() == {"strongroom", "port"}
    assert svc.library.get_by_name("vault-bot").knowledge.collections == ["strongroom", "port"]  # it follows
    assert svc.search(["strongroom"], "where is the vault", k=1)[0].document == "secret.txt"
    with pytest.raises(IngestError, match="exists already"):
        svc.store.rename_collection("strongroom", "port")

    assert svc.store.delete_collection("strongroom") == 1
    assert svc.store.collection_names() == {"port"}
    assert svc.search(["port"], "when does the ferry leave", k=1)[0].document == "keep.txt"
    if database_url is None:  # on SQLite every copy in the workspace's files is gone too
        assert holding(home, MARKER) == []


def test_a_deleted_assistant_leaves_no_trace_in_the_workspace(home: Path) -> None:
    svc = Services.create(home, embedder=FakeEmbedder())
    svc.library.save(
        parse_assistant(
            {"name": "vault-bot", "instructions": f"The password is {MARKER}.", "knowledge": {"collections": ["c"]}},
            "t",
        )
    )
    svc.library.save(
        parse_assistant(
            {"name": "port-bot", "instructions": "Answer about the port.", "knowledge": {"collections": ["c"]}}, "t"
        )
    )
    assert holding(home, MARKER)
    svc.library.delete("vault-bot")
    assert holding(home, MARKER) == []
    assert svc.library.get_by_name("port-bot").instructions == "Answer about the port."


def test_a_synced_file_that_is_gone_leaves_no_trace(home: Path, tmp_path: Path) -> None:
    from ingest.store_sources import SourceSpec
    from ingest.sync import sync

    emb = FakeEmbedder()
    svc = Services.create(home, embedder=emb)
    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(3):
        (folder / f"secret{i}.txt").write_text(f"Vault {i} opens with {MARKER}.\n" * 30)
    (folder / "keep.txt").write_text("The ferry leaves the harbor at seven every morning.")
    sync(svc.store, emb, "notes", [SourceSpec(str(folder))])
    assert holding(home, MARKER)
    for i in range(3):
        (folder / f"secret{i}.txt").unlink()
    assert sync(svc.store, emb, "notes", [SourceSpec(str(folder))]).summary()["removed"] == 3
    assert holding(home, MARKER) == []
