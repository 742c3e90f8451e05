"""Collections that mirror folders: `archivist sync` adds, re-reads, renames and removes as the
folder changes, never embeds a moved file again, and removes nothing while a source is missing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from app.services import Services
from ingest.store_sources import SourceSpec
from ingest.sync import plan_sync, sync
from retriever.search import search
from tests.shared import FakeEmbedder


class CountingEmbedder(FakeEmbedder):
    """Counts the texts it embeds."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        self.texts.extend(texts)
        return super().embed(texts, batch_size)


def _folder(tmp_path: Path) -> Path:
    notes = tmp_path / "notes"
    (notes / "birds").mkdir(parents=True)
    (notes / "owls.txt").write_text("Owls hunt at night and sleep through the day in hollow trees.")
    (notes / "birds" / "gulls.md").write_text("# Gulls\n\nGulls nest on the roof of the old customs house.")
    (notes / "ferry.txt").write_text("The ferry leaves the harbor at seven every morning.")
    (notes / "tides.txt").write_text("Spring tides bring the highest water twice a month.")
    (notes / "skip.log").write_text("not a supported type")
    return notes


def test_a_synced_collection_follows_its_folder(home: Path, tmp_path: Path) -> None:
    emb = CountingEmbedder()
    svc = Services.create(home, embedder=emb)
    notes = _folder(tmp_path)
    specs = [SourceSpec(str(notes))]
    first = sync(svc.store, emb, "notes", specs)
    assert first.summary()["added"] == 4 and not first.report.failed
    names = {d.name for d in svc.store.documents("notes")}
    assert names == {"notes/owls.txt", "notes/birds/gulls.md", "notes/ferry.txt", "notes/tides.txt"}
    assert sync(svc.store, emb, "notes", specs).plan.changes == 0  # nothing changed, nothing done

    # one changed, one deleted, one moved into another folder, one added
    (notes / "ferry.txt").write_text("The ferry now leaves the harbor at eight every morning.")
    (notes / "tides.txt").unlink()
    (notes / "birds" / "owls.txt").write_bytes((notes / "owls.txt").read_bytes())
    (notes / "owls.txt").unlink()
    (notes / "cranes.txt").write_text("The harbor crane lifts twelve tonnes.")
    dry = plan_sync(svc.store, "notes", specs)
    assert [n for n, _ in dry.added] == ["notes/cranes.txt"] and [n for n, _ in dry.changed] == ["notes/ferry.txt"]
    assert dry.renamed == [("notes/owls.txt", "notes/birds/owls.txt")] and dry.removed == ["notes/tides.txt"]
    assert {d.name for d in svc.store.documents("notes")} == names  # a plan changes nothing

    emb.texts.clear()
    result = sync(svc.store, emb, "notes", specs)
    assert result.summary() | {"failed": []} == {
        "added": 1, "changed": 1, "renamed": 1, "removed": 1, "unchanged": 1, "duplicates": 0, "problems": [],
        "failed": [],
    }  # fmt: skip
    assert not any("Owls" in t for t in emb.texts)  # the moved file was not embedded again
    assert {d.name for d in svc.store.documents("notes")} == {
        "notes/birds/owls.txt", "notes/birds/gulls.md", "notes/ferry.txt", "notes/cranes.txt",
    }  # fmt: skip
    hits = search(svc.store, emb, ["notes"], "spring tides highest water", 10)
    assert not any("Spring tides" in h.text for h in hits)  # the deleted file's text is found by no search
    owls = search(svc.store, emb, ["notes"], "owls hunt at night", 1)
    assert owls and owls[0].document == "notes/birds/owls.txt"  # found under its new name
    ferry = search(svc.store, emb, ["notes"], "when does the ferry leave", 10)
    assert any("eight" in h.text for h in ferry) and not any("seven" in h.text for h in ferry)
    stored = svc.store.sources("notes")
    assert [s.spec.path for s in stored] == [str(notes)] and stored[0].result and stored[0].result["added"] == 1


def test_a_missing_source_removes_nothing_and_globs_choose_files(home: Path, tmp_path: Path) -> None:
    emb = FakeEmbedder()
    svc = Services.create(home, embedder=emb)
    notes = _folder(tmp_path)
    sync(svc.store, emb, "notes", [SourceSpec(str(notes), include=("*.txt",), exclude=("tides*",))])
    assert {d.name for d in svc.store.documents("notes")} == {"notes/owls.txt", "notes/ferry.txt"}
    gone = [SourceSpec(str(tmp_path / "unplugged-drive"))]
    result = sync(svc.store, emb, "notes", gone)
    assert result.plan.removed == [] and "no such folder" in result.plan.problems[0]
    assert len(svc.store.documents("notes")) == 2  # nothing lost while the drive is away


def test_cli_sync_remembers_its_folders_and_dry_run_changes_nothing(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = _folder(tmp_path)
    assert main(["--home", str(home), "sync", "-c", "notes"]) == 1  # no sources yet: says how to add them
    assert "archivist sync FOLDER" in capsys.readouterr().err
    assert main(["--home", str(home), "sync", str(notes), "-c", "notes"]) == 0
    assert "4 added" in capsys.readouterr().out
    (notes / "owls.txt").unlink()
    assert main(["--home", str(home), "sync", "-c", "notes", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would remove notes/owls.txt" in out and "nothing was changed" in out
    assert main(["--home", str(home), "documents", "notes"]) == 0
    assert "owls.txt" in capsys.readouterr().out  # still there after the dry run
    assert main(["--home", str(home), "sync", "-c", "notes"]) == 0  # the remembered folder
    assert "removed notes/owls.txt" in capsys.readouterr().out


def test_sync_keeps_its_sources_and_renames_on_either_backend(home: Path, tmp_path: Path, database_url) -> None:  # type: ignore[no-untyped-def]
    from ingest.store import Store

    emb = CountingEmbedder()
    store = Store(home, emb.name, emb.dim, database_url)
    notes = _folder(tmp_path)
    sync(store, emb, "notes", [SourceSpec(str(notes), exclude=("birds/*",))])
    (notes / "owls-renamed.txt").write_bytes((notes / "owls.txt").read_bytes())
    (notes / "owls.txt").unlink()
    (notes / "ferry.txt").unlink()
    emb.texts.clear()
    again = Store(home, emb.name, emb.dim, database_url)  # another process: the sources come from the database
    specs = [s.spec for s in again.sources("notes")]
    assert specs == [SourceSpec(str(notes), (), ("birds/*",))]
    result = sync(again, emb, "notes", specs)
    assert (result.plan.renamed, result.plan.removed) == (
        [("notes/owls.txt", "notes/owls-renamed.txt")],
        ["notes/ferry.txt"],
    )
    assert emb.texts == []  # nothing read or embedded again
    assert {d.name for d in again.documents("notes")} == {"notes/owls-renamed.txt", "notes/tides.txt"}
    hits = search(again, emb, ["notes"], "owls hunt at night", 1)
    assert hits and hits[0].document == "notes/owls-renamed.txt"


@pytest.mark.slow
def test_watch_reads_a_file_written_in_pieces_only_once_it_is_complete(home: Path, tmp_path: Path) -> None:
    import threading
    import time

    from ingest.watch import watch

    emb = CountingEmbedder()
    svc = Services.create(home, embedder=emb)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "ferry.txt").write_text("The ferry leaves the harbor at seven every morning.")
    stop = threading.Event()
    syncs: list[dict] = []
    t = threading.Thread(
        target=watch,
        args=(svc.store, emb, "notes", [SourceSpec(str(notes))]),
        kwargs={"stop": stop, "poll_s": 0.1, "settle_s": 0.8, "on_sync": lambda r: syncs.append(r.summary())},
    )
    t.start()

    def wait_for(check, seconds: float = 20.0) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + seconds
        while not check():
            assert time.monotonic() < deadline, syncs
            time.sleep(0.05)

    try:
        wait_for(lambda: {d.name for d in svc.store.documents("notes")} == {"notes/ferry.txt"})
        pieces = ["Gulls nest on the roof", " of the old customs house", " and fly out at dawn", " every spring day."]
        with (notes / "gulls.txt").open("w") as f:
            for piece in pieces:  # written slowly: each piece well inside the settle time
                f.write(piece)
                f.flush()
                time.sleep(0.3)
        wait_for(lambda: "notes/gulls.txt" in {d.name for d in svc.store.documents("notes")})
        gulls = [x for x in emb.texts if "Gulls" in x]
        assert gulls and all("every spring day" in x for x in gulls)  # never read half-written
        (notes / "ferry.txt").unlink()
        wait_for(lambda: {d.name for d in svc.store.documents("notes")} == {"notes/gulls.txt"})
    finally:
        stop.set()
        t.join(timeout=10)
    assert not t.is_alive()


@pytest.mark.slow
def test_cli_watch_follows_a_folder_until_stopped(home: Path, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "ferry.txt").write_text("The ferry leaves the harbor at seven every morning.")
    root = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, "-m", "app.cli", "--home", str(home), "watch", str(notes), "-c", "notes"]
    proc = subprocess.Popen(
        [*cmd, "--poll", "0.2", "--settle", "0.5"],
        cwd=root,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []

    def until(text: str, seconds: float = 120.0) -> None:
        deadline = time.monotonic() + seconds
        while not any(text in x for x in lines):
            assert proc.poll() is None and time.monotonic() < deadline, lines
            line = proc.stdout.readline()  # type: ignore[union-attr]
            if line:
                lines.append(line)

    try:
        until("synced: 1 added")
        (notes / "owls.txt").write_text("Owls hunt at night and sleep through the day.")
        until("ingested notes/owls.txt")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert "stopped" in out and proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_sync_leaves_documents_added_another_way(home: Path, tmp_path: Path) -> None:
    from ingest import ingest_paths

    emb = FakeEmbedder()
    svc = Services.create(home, embedder=emb)
    notes = _folder(tmp_path)
    (tmp_path / "upload.txt").write_text("An upload the user made by hand: the quay closes at ten.")
    ingest_paths([tmp_path / "upload.txt"], "notes", svc.store, emb)
    sync(svc.store, emb, "notes", [SourceSpec(str(notes))])
    (notes / "ferry.txt").unlink()
    sync(svc.store, emb, "notes", [SourceSpec(str(notes))])
    names = {d.name for d in svc.store.documents("notes")}
    assert "upload.txt" in names and "notes/ferry.txt" not in names


def test_cli_renames_and_deletes_collections(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notes = _folder(tmp_path)
    assert main(["--home", str(home), "sync", str(notes), "-c", "notes"]) == 0
    assert main(["--home", str(home), "collections", "rename", "notes", "harbor"]) == 0
    assert main(["--home", str(home), "collections", "delete", "harbor"]) == 1  # says what it would delete
    assert "would delete collection harbor with its 4 document(s)" in capsys.readouterr().out
    assert main(["--home", str(home), "collections"]) == 0
    assert capsys.readouterr().out.startswith("harbor\t4 documents")
    assert main(["--home", str(home), "collections", "delete", "harbor", "--yes"]) == 0
    assert "deleted collection harbor" in capsys.readouterr().out
    assert main(["--home", str(home), "collections"]) == 0
    assert capsys.readouterr().out == ""


def test_collections_switched_on_are_followed_in_the_background(home: Path, tmp_path: Path) -> None:
    import threading
    import time

    emb = FakeEmbedder()
    svc = Services.create(home, embedder=emb)
    notes = _folder(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    sync(svc.store, emb, "notes", [SourceSpec(str(notes))], follow=True)
    sync(svc.store, emb, "other", [SourceSpec(str(other))])  # synced once, not followed
    assert svc.store.followed() == ["notes"]
    sync(svc.store, emb, "notes", [SourceSpec(str(notes))])  # a later sync keeps the switch
    assert svc.store.followed() == ["notes"]
    stop = threading.Event()
    try:
        assert svc.follow_folders(stop, poll_s=0.1, settle_s=0.3) == ["notes"]
        (notes / "cranes.txt").write_text("The harbor crane lifts twelve tonnes.")
        (other / "buoys.txt").write_text("The red buoy marks the channel.")
        deadline = time.monotonic() + 20
        while "notes/cranes.txt" not in {d.name for d in svc.store.documents("notes")}:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert [d.name for d in svc.store.documents("other")] == []  # not followed: not read
    finally:
        stop.set()
    sync(svc.store, emb, "notes", [SourceSpec(str(notes))], follow=False)
    assert svc.store.followed() == []
