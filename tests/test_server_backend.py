"""The PostgreSQL backend through its users' paths: a workspace migrated into a real server (with
pgvector), and two `archivist serve` processes sharing one database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.api.keys import KeyStore
from app.migrate import first_passage, migrate
from assistants.conversations import ConversationStore
from ingest import Store, ingest_paths
from retriever import search
from runtime.errors import ArchivistError
from tests.conftest import FakeEmbedder, make_pdf


def test_a_workspace_migrates_with_its_vectors_conversations_and_keys(
    home: Path, tmp_path: Path, fake_embedder: FakeEmbedder, pg_server
) -> None:  # type: ignore[no-untyped-def]
    source = Store(home, fake_embedder.name, fake_embedder.dim)
    pdf = make_pdf(tmp_path / "zoo.pdf", ["Penguins eat krill.", "Lions sleep twenty hours.", "Krill are tiny shrimp."])
    (tmp_path / "notes.txt").write_text("Krill oil is sold as a supplement. Zebra stripes confuse flies.")
    ingest_paths([pdf, tmp_path / "notes.txt"], "zoo", source, fake_embedder)
    conversations = ConversationStore(source.engine)
    conv = conversations.create("zoo-bot", "About krill")
    conversations.add_turn(conv.id, {"text": "What do penguins eat?"}, {"text": "Krill [1]."})
    secret = KeyStore(source.engine).create("team")

    url = pg_server.database()
    try:
        target = Store(home, fake_embedder.name, fake_embedder.dim, url)
        assert target.describe().startswith(f"PostgreSQL at 127.0.0.1:{pg_server.port}/")
        report = migrate(source, target, check=first_passage(fake_embedder))
        assert report.rows["chunks"] == sum(d.chunks for d in source.documents("zoo")) > 0
        assert report.rows["messages"] == 2 and report.rows["api_keys"] == 1 and report.searches == ["zoo"]

        # what a user of the server database sees: the same documents, search, conversation and key
        assert [(d.name, d.status, d.pages) for d in target.documents("zoo")] == [
            (d.name, d.status, d.pages) for d in source.documents("zoo")
        ]
        for mode in ("dense", "keyword", "hybrid"):
            hits = search(target, fake_embedder, ["zoo"], "zebra stripes", 2, mode=mode)
            assert hits[0].document == "notes.txt", mode
        moved = ConversationStore(target.engine)
        assert [m.text for m in moved.messages(conv.id)] == ["What do penguins eat?", "Krill [1]."]
        assert KeyStore(target.engine).check(secret) is not None

        # new rows continue after the copied ids; the copy is refused a second time, naming a table
        (tmp_path / "more.txt").write_text("Walruses use their tusks to climb onto ice.")
        assert ingest_paths([tmp_path / "more.txt"], "zoo", target, fake_embedder).results[0].status == "added"
        assert search(target, fake_embedder, ["zoo"], "walruses tusks", 1)[0].document == "more.txt"
        with pytest.raises(ArchivistError, match="already holds .* table 'collections'"):
            migrate(source, Store(home, fake_embedder.name, fake_embedder.dim, url))
    finally:
        pg_server.drop(url)


def test_an_unreachable_or_unusable_database_is_a_clear_error_without_the_password(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.cli import main

    port = _free_port()  # nothing listens there
    url = f"postgresql+psycopg://team:s3cret-pw@127.0.0.1:{port}/archivist"
    assert main(["--home", str(home), "--database-url", url, "collections"]) == 1
    err = capsys.readouterr().err
    assert f"cannot use the database at 127.0.0.1:{port}/archivist" in err and "s3cret-pw" not in err
    assert main(["--home", str(home), "--database-url", "mysql://root:pw@db/x", "collections"]) == 1
    err = capsys.readouterr().err
    assert "database_url (ARCHIVIST_DATABASE_URL='mysql://root:***@db/x')" in err
    assert "must be a PostgreSQL URL such as postgresql+psycopg://" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


BOT = """
name: harbor-bot
description: Answers from the harbor guide.
model: {max_tokens: 16, temperature: 0, context_window: 2048}
knowledge: {collections: [harbor]}
retrieval: {top_k: 2}
"""


@pytest.fixture
def two_servers(tmp_path: Path, pg_server) -> Iterator[tuple[list[str], str]]:  # type: ignore[no-untyped-def]
    """Two `archivist serve` processes, each with its own workspace folder (as on two machines),
    on one PostgreSQL database; a key created once serves both."""
    url = pg_server.database()
    env = {**os.environ, "ARCHIVIST_DATABASE_URL": url, "HF_HUB_OFFLINE": "1"}
    exe = str(Path(sys.executable).with_name("archivist"))
    homes = [tmp_path / "a", tmp_path / "b"]
    for h in homes:
        (h / "assistants").mkdir(parents=True)
        (h / "assistants" / "harbor-bot.yaml").write_text(BOT)
    key = subprocess.run(
        [exe, "--home", str(homes[0]), "keys", "create", "team"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    procs, urls = [], []
    try:
        for h in homes:
            port = _free_port()
            log = open(h / "serve.log", "w")  # noqa: SIM115 (closed with the process)
            procs.append(
                subprocess.Popen(
                    [exe, "--home", str(h), "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.time() + 180
        for u, p in zip(urls, procs, strict=True):
            while True:
                assert p.poll() is None, (Path(homes[urls.index(u)]) / "serve.log").read_text()[-2000:]
                try:
                    if httpx.get(u + "/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.time() < deadline, "a server did not start"
                time.sleep(0.5)
        yield urls, key
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        pg_server.drop(url)


@pytest.mark.slow
def test_two_api_servers_share_one_database(two_servers: tuple[list[str], str], tmp_path: Path) -> None:
    (a, b), key = two_servers
    h = {"Authorization": f"Bearer {key}"}
    pdf = make_pdf(tmp_path / "harbor.pdf", ["Intro to the harbor.", "The lighthouse lens is cleaned every Tuesday."])
    r = httpx.post(
        a + "/v1/collections/harbor/documents",
        headers=h,
        files={"files": ("harbor.pdf", pdf.read_bytes(), "application/pdf")},
        timeout=120,
    )
    assert r.status_code == 201 and r.json()["data"][0]["status"] == "added"

    # the other server sees the document at once and finds its page
    docs = httpx.get(b + "/v1/collections/harbor/documents", headers=h, timeout=30).json()["data"]
    assert [(d["name"], d["status"]) for d in docs] == [("harbor.pdf", "ready")]
    hits = httpx.post(
        b + "/v1/collections/harbor/search",
        headers=h,
        json={"query": "when is the lighthouse lens cleaned"},
        timeout=60,
    ).json()["hits"]
    assert (hits[0]["document"], hits[0]["page"]) == ("harbor.pdf", 2)
    chat = httpx.post(
        b + "/v1/chat/completions",
        headers=h,
        json={"model": "harbor-bot", "messages": [{"role": "user", "content": "When is the lighthouse lens cleaned?"}]},
        timeout=180,
    ).json()
    cited = [(c["document"], c["page"]) for c in chat["citations"]]
    assert ("harbor.pdf", 2) in cited

    # deleting through the second server removes it for the first
    assert httpx.delete(b + "/v1/collections/harbor/documents/harbor.pdf", headers=h, timeout=30).status_code == 200
    assert httpx.get(a + "/v1/collections/harbor/documents", headers=h, timeout=30).json()["data"] == []
