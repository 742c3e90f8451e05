"""Backup and restore: one archive of a workspace taken while a chat writes to it comes back into a
new workspace with the same counts and answers the same search; damaged and hostile archives are
refused before anything is written."""

from __future__ import annotations

import io
import tarfile
import threading
from pathlib import Path

import pytest

from app.api import KeyStore
from app.backup import backup, restore
from app.cli import main
from app.services import Services
from assistants.arena import ArenaStore, Side
from ingest import ingest_paths
from runtime.errors import ArchivistError
from tests.shared import FakeEmbedder


def _workspace(home: Path, tmp_path: Path) -> Services:
    svc = Services.create(home, embedder=FakeEmbedder())
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferry.txt").write_text("The ferry leaves the harbor at seven every morning.")
    (docs / "owls.md").write_text("# Owls\n\nOwls hunt at night and sleep through the day.")
    ingest_paths([docs], "port", svc.store, svc.embedder)
    (home / "assistants").mkdir(parents=True, exist_ok=True)
    (home / "assistants" / "port-bot.yaml").write_text("name: port-bot\nknowledge: {collections: [port]}\n")
    KeyStore(svc.store.engine).create("laptop")
    side = Side("port-bot", "port-bot", "Seven.", {}, [], False, 0.5, 1.0, 0.1)
    ArenaStore(svc.store.engine).add("human", "When does the ferry leave?", side, side, vote="a")
    return svc


def test_a_backup_taken_while_a_chat_writes_restores_the_same_workspace(home: Path, tmp_path: Path) -> None:
    svc = _workspace(home, tmp_path)
    conv = svc.conversations.create("port-bot")
    stop = threading.Event()

    def chat() -> None:  # a conversation being written during the backup
        while not stop.is_set():
            svc.conversations.add_turn(conv.id, {"text": "When does the ferry leave?"}, {"text": "At seven."})

    writer = threading.Thread(target=chat)
    writer.start()
    try:
        report = backup(home, tmp_path / "ws.tar.gz")
    finally:
        stop.set()
        writer.join()
    assert report.counts["collections"] == {
        "port": {"documents": 2, "chunks": report.counts["collections"]["port"]["chunks"]}
    }
    assert report.counts["api_keys"] == 1 and report.counts["arena_votes"] == 1
    assert report.counts["messages"] >= 0 and report.counts["conversations"] == 1

    new_home = tmp_path / "restored"
    back = restore(tmp_path / "ws.tar.gz", new_home)
    assert back.counts == report.counts and back.searched["port"] > 0
    again = Services.create(new_home, embedder=FakeEmbedder())
    assert {d.name for d in again.store.documents("port")} == {"docs/ferry.txt", "docs/owls.md"}
    before = [h.text for h in svc.search(["port"], "when does the ferry leave", k=2)]
    assert [h.text for h in again.search(["port"], "when does the ferry leave", k=2)] == before
    assert (new_home / "assistants" / "port-bot.yaml").exists()
    assert again.store.original("port", "docs/ferry.txt") is not None  # the original file came back
    assert len(again.conversations.messages(conv.id)) == report.counts["messages"]


def test_damaged_or_hostile_archives_and_busy_targets_are_refused(home: Path, tmp_path: Path) -> None:
    _workspace(home, tmp_path)
    good = tmp_path / "ws.tar.gz"
    backup(home, good)
    with pytest.raises(ArchivistError, match="not empty"):
        restore(good, home)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ArchivistError, match="damaged"):
        restore(cut, tmp_path / "r1")
    assert not (tmp_path / "r1").exists()  # nothing written
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        data = b"owned"
        info = tarfile.TarInfo("../outside.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ArchivistError, match="outside the workspace"):
        restore(evil, tmp_path / "r2")
    assert not (tmp_path / "outside.txt").exists()
    with pytest.raises(ArchivistError, match="outside the workspace it backs up"):
        backup(home, home / "inside.tar.gz")


def test_cli_backup_and_restore(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _workspace(home, tmp_path)
    assert main(["--home", str(home), "backup", "-o", str(tmp_path / "b.tar.gz")]) == 0
    assert "1 collection(s), 2 document(s)" in capsys.readouterr().out
    assert main(["--home", str(tmp_path / "new"), "restore", str(tmp_path / "b.tar.gz")]) == 0
    out = capsys.readouterr().out
    assert "counts match the backup" in out and "port: a search finds" in out


def test_a_workspace_written_by_an_earlier_version_keeps_everything_after_the_upgrade(tmp_path: Path) -> None:
    """tests/fixtures/workspace-0004.tar.gz: a workspace made by the version whose schema ended at
    revision 0004 (two documents, a conversation, an arena vote, an API key; FakeEmbedder vectors)."""
    from ingest.schema import current, head

    home = tmp_path / "old"
    with tarfile.open(Path(__file__).parent / "fixtures" / "workspace-0004.tar.gz") as tar:
        tar.extractall(home, filter="data")
    svc = Services.create(home, embedder=FakeEmbedder())
    assert current(svc.store.engine) == head()  # upgraded in place
    assert {d.name for d in svc.store.documents("harbor")} == {"docs04/lens.txt", "docs04/tides.md"}
    assert svc.search(["harbor"], "when is the lighthouse lens cleaned", k=1)[0].document == "docs04/lens.txt"
    (conv,) = svc.conversations.all()
    assert [m.text for m in svc.conversations.messages(conv.id)] == ["When is the lens cleaned?", "Every Tuesday [1]."]
    assert [b.vote for b in ArenaStore(svc.store.engine).battles("human")] == ["b"]
    assert [k.name for k in KeyStore(svc.store.engine).list()] == ["desk"]
    assert svc.store.sources("harbor") == []  # the new table is there, empty


def test_on_a_server_database_the_backup_says_pg_dump_and_keeps_the_local_parts(
    home: Path, tmp_path: Path, pg_server
) -> None:  # type: ignore[no-untyped-def]
    from app.settings import Settings

    url = pg_server.database()
    try:
        svc = Services.create(embedder=FakeEmbedder(), settings=Settings.load(home=home, database_url=url))
        (tmp_path / "docs").mkdir()
        (tmp_path / "docs" / "ferry.txt").write_text("The ferry leaves the harbor at seven every morning.")
        ingest_paths([tmp_path / "docs"], "port", svc.store, svc.embedder)
        (home / "calibration.json").write_text("{}")
        report = backup(home, tmp_path / "server.tar.gz", server=True)
        assert "pg_dump" in report.note and report.counts == {}  # the catalog is the server's
        with tarfile.open(tmp_path / "server.tar.gz") as tar:
            names = tar.getnames()
        assert "calibration.json" in names and "archivist.db" not in names
        svc.store.engine.dispose()
    finally:
        pg_server.drop(url)
