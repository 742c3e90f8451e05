"""A writer killed with SIGKILL at random moments leaves every document fully searchable, absent,
or failed and retryable; never half-visible, and no other document is touched."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from ingest import Store, ingest_paths
from retriever import search
from tests.shared import FakeEmbedder

ROOT = Path(__file__).parent.parent


def check_invariants(home: Path, words: dict[str, str]) -> dict[str, str]:
    """Per document version: ready and complete (one revision, full text and vectors), or failed and
    empty. A replacement killed midway leaves the old version ready next to the failed new one."""
    emb = FakeEmbedder()
    store = Store(home, emb.name, emb.dim)
    with store.writer():  # what a restart does first: recover leftovers of the killed writer
        pass
    docs = store.documents("crash") if store.collections() else []
    assert {d.status for d in docs} <= {"ready", "failed"}, docs
    ready_names = [d.name for d in docs if d.status == "ready"]
    assert len(ready_names) == len(set(ready_names)), ready_names  # at most one searchable version per name
    with store.engine.connect() as c:
        for d in docs:
            n_rows = c.execute(
                text("SELECT COUNT(*) FROM chunks c JOIN documents d ON d.id = c.document_id WHERE d.id = :i"),
                {"i": d.id},
            ).scalar()
            if d.status == "ready":
                # this document's chunks the full-text index finds by its word (a changed file that
                # was also renamed has the same word under its new name: a sync killed between adding
                # the new name and removing the old one leaves both, each whole)
                n_fts = c.execute(
                    text(
                        "SELECT COUNT(*) FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid "
                        "WHERE chunks_fts MATCH :w AND c.document_id = :i"
                    ),
                    {"w": f'"{words[d.name]}"', "i": d.id},
                ).scalar()
                assert n_rows and n_fts == n_rows, (d.name, n_rows, n_fts)
                revs = {
                    r[0]
                    for r in c.execute(
                        text("SELECT substr(text, instr(text, ' rev'), 6) FROM chunks WHERE document_id = :i"),
                        {"i": d.id},
                    )
                }
                assert len(revs) == 1, (d.name, revs)  # one version, never a mix
            else:
                assert n_rows == 0, (d.name, n_rows)
    if docs:
        index_ids = store.index("crash").ids()
        with store.engine.connect() as c:
            ready_ids = {
                r[0]
                for r in c.execute(
                    text("SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id WHERE d.status = 'ready'")
                )
            }
        assert index_ids == ready_ids
    status = {d.name: d.status for d in docs if d.status == "failed"}
    status.update({d.name: d.status for d in docs if d.status == "ready"})
    for name, word in words.items():
        hits = search(store, emb, ["crash"], word, 3, mode="keyword")
        found = any(h.document == name for h in hits)
        assert found == (name in ready_names), (name, status.get(name))
    return status


@pytest.mark.slow
def test_sigkill_at_random_moments_never_leaves_half_visible_documents(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    rng = random.Random(7)
    words = {f"doc{i:02d}.txt": f"uniqueword{i:02d}" for i in range(12)}
    files = []

    def write(name: str, rev: int) -> None:
        body = "\n\n".join(f"Paragraph {j} of {name} rev{rev}x mentions {words[name]} and more." for j in range(300))
        (tmp_path / name).write_text(body)

    for name in words:
        write(name, 0)
        files.append(str(tmp_path / name))
    baseline = tmp_path / "baseline.txt"
    baseline.write_text("The baseline document talks about kestrels.")
    emb = FakeEmbedder()
    ingest_paths([baseline], "crash", Store(home, emb.name, emb.dim), emb)
    words_all = dict(words, **{"baseline.txt": "kestrels"})

    kills = 0
    for k in range(1, 16):
        for name in rng.sample(sorted(words), 4):  # changed files: their new version replaces the old
            write(name, k)
        order = files[:]
        rng.shuffle(order)
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "crash_ingest.py"), str(home), *order],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.3, 4.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        status = check_invariants(home, words_all)
        assert status["baseline.txt"] == "ready"
    assert kills >= 5  # the kills really landed mid-ingest
    # a final uninterrupted run completes everything that was failed or missing
    subprocess.run(
        [sys.executable, str(ROOT / "tests" / "crash_ingest.py"), str(home), *files],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    status = check_invariants(home, words_all)
    assert set(status.values()) == {"ready"} and len(status) == len(words_all)


@pytest.mark.slow
def test_a_sync_killed_at_random_moments_is_finished_by_the_next(tmp_path: Path) -> None:
    """Files changed, renamed, removed and added between syncs killed mid-way: every document stays
    whole or absent, and one uninterrupted sync leaves the collection equal to the folder."""
    from ingest.store_sources import SourceSpec
    from ingest.sync import sync

    home, src = tmp_path / "ws", tmp_path / "src"
    src.mkdir()
    rng = random.Random(11)
    words: dict[str, str] = {}  # document name -> the word only its content holds
    content_word: dict[str, str] = {}  # file name -> word

    def write(name: str, rev: int) -> None:
        # the file's own word, kept when it is renamed; its revision is the "revNx" in every paragraph
        word = content_word.get(name) or f"{name.split('.')[0]}zq"
        body = "\n\n".join(f"Paragraph {j} of {name} rev{rev}x mentions {word} and more." for j in range(900))
        (src / name).write_text(body)
        content_word[name] = word
        words[f"src/{name}"] = word

    for i in range(10):
        write(f"f{i}.txt", 0)
    emb = FakeEmbedder()
    sync(Store(home, emb.name, emb.dim), emb, "crash", [SourceSpec(str(src))])
    kills = 0
    for k in range(1, 9):
        names = sorted(content_word)
        for name in rng.sample(names, 3):
            write(name, k)  # changed
        gone = rng.choice(names)
        (src / gone).unlink()
        content_word.pop(gone)
        moved = rng.choice(sorted(content_word))
        new = f"m{k}.txt"
        (src / moved).rename(src / new)
        content_word[new] = content_word.pop(moved)
        words[f"src/{new}"] = content_word[new]
        write(f"n{k}.txt", k)  # added
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "crash_ingest.py"), str(home), "--sync", str(src)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.8, 2.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        check_invariants(home, words)
    assert kills >= 3  # the kills really landed mid-sync
    subprocess.run(
        [sys.executable, str(ROOT / "tests" / "crash_ingest.py"), str(home), "--sync", str(src)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    expected = {f"src/{n}": w for n, w in content_word.items()}
    status = check_invariants(home, expected)
    assert status == dict.fromkeys(expected, "ready")
