"""The PostgreSQL backend through its users' paths: a workspace migrated into a real server (with
pgvector), and two `archivist serve` processes sharing one database."""

from __future__ import annotations

import os
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
from ingest.schema import current, head
from retriever import search
from runtime.errors import ArchivistError
from tests.pg import free_port
from tests.shared import FakeEmbedder, make_pdf


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
    (home / "assistants").mkdir(parents=True, exist_ok=True)
    (home / "assistants" / "zoo-bot.yaml").write_text("name: zoo-bot\nknowledge: {collections: [zoo]}\n")

    url = pg_server.database()
    try:
        target = Store(home, fake_embedder.name, fake_embedder.dim, url)
        assert target.describe().startswith(f"PostgreSQL at 127.0.0.1:{pg_server.port}/")
        assert current(target.engine) == head()  # the server's schema comes from the same migrations
        report = migrate(source, target, check=first_passage(fake_embedder))
        assert report.rows["chunks"] == sum(d.chunks for d in source.documents("zoo")) > 0
        assert report.rows["messages"] == 2 and report.rows["api_keys"] == 1 and report.searches == ["zoo"]
        assert report.rows["assistants"] == 1 and report.rows["originals"] == 2

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
        from assistants.library import AssistantStore

        shared = AssistantStore(tmp_path / "elsewhere" / "assistants", engine=target.engine)  # another machine
        assert shared.get_by_name("zoo-bot").knowledge.collections == ["zoo"]
        # a cited document opens on a machine that never ingested it
        there = Store(tmp_path / "elsewhere", fake_embedder.name, fake_embedder.dim, url).original("zoo", "zoo.pdf")
        assert (
            there is not None
            and there.is_relative_to(tmp_path / "elsewhere")
            and there.read_bytes() == pdf.read_bytes()
        )

        # new rows continue after the copied ids; the copy is refused a second time, naming a table
        (tmp_path / "more.txt").write_text("Walruses use their tusks to climb onto ice.")
        assert ingest_paths([tmp_path / "more.txt"], "zoo", target, fake_embedder).results[0].status == "added"
        assert search(target, fake_embedder, ["zoo"], "walruses tusks", 1)[0].document == "more.txt"
        elsewhere = Store(tmp_path / "third", fake_embedder.name, fake_embedder.dim, url)
        assert (
            elsewhere.original("zoo", "more.txt") or Path("/nonexistent")
        ).read_bytes() == b"Walruses use their tusks to climb onto ice."
        with pytest.raises(ArchivistError, match=r"already holds 1 row\(s\) in table 'assistants'"):
            migrate(source, Store(home, fake_embedder.name, fake_embedder.dim, url))
    finally:
        pg_server.drop(url)


def test_an_unreachable_or_unusable_database_is_a_clear_error_without_the_password(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.cli import main

    port = free_port()  # nothing listens there
    url = f"postgresql+psycopg://team:s3cret-pw@127.0.0.1:{port}/archivist"
    assert main(["--home", str(home), "--database-url", url, "collections"]) == 1
    err = capsys.readouterr().err
    assert f"cannot use the database at 127.0.0.1:{port}/archivist" in err and "s3cret-pw" not in err
    assert main(["--home", str(home), "--database-url", "mysql://root:pw@db/x", "collections"]) == 1
    err = capsys.readouterr().err
    assert "database_url (ARCHIVIST_DATABASE_URL='mysql://root:***@db/x')" in err
    assert "must be a PostgreSQL URL such as postgresql+psycopg://" in err


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
    on one PostgreSQL database; an assistant imported and a key created once serve both."""
    url = pg_server.database()
    env = {**os.environ, "ARCHIVIST_DATABASE_URL": url, "HF_HUB_OFFLINE": "1"}
    exe = str(Path(sys.executable).with_name("archivist"))
    homes = [tmp_path / "a", tmp_path / "b"]
    (tmp_path / "harbor-bot.yaml").write_text(BOT)
    for h in homes:
        h.mkdir(parents=True)
    # the assistant is imported once, on machine a, into the database both servers read
    subprocess.run(
        [exe, "--home", str(homes[0]), "assistants", "import", str(tmp_path / "harbor-bot.yaml")],
        env=env,
        capture_output=True,
        check=True,
    )
    assert not (homes[1] / "assistants").exists()
    key = subprocess.run(
        [exe, "--home", str(homes[0]), "keys", "create", "team"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    procs, urls = [], []
    try:
        for h in homes:
            port = free_port()
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
    assert r.status_code == 201 and r.json()["data"][0]["status"] == "added" and r.json()["data"][0]["job"] > 0

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

    # an upload that does not wait: a job, whose progress either server shows, worked by a replica
    r = httpx.post(
        a + "/v1/collections/harbor/documents?wait=false",
        headers=h,
        files={"files": ("ferry.txt", b"The ferry leaves the harbor at noon.", "text/plain")},
        timeout=60,
    )
    assert r.status_code == 202 and r.json()["data"][0]["status"] in ("queued", "running", "done")
    job = r.json()["data"][0]["id"]
    deadline = time.time() + 120
    while (state := httpx.get(f"{b}/v1/jobs/{job}", headers=h, timeout=30).json())["status"] != "done":
        assert state["status"] in ("queued", "running") and time.time() < deadline, state
        time.sleep(0.3)
    assert state["stage"] == "added" and state["chunks"] == 1
    assert httpx.get(f"{b}/v1/jobs/999999", headers=h, timeout=30).status_code == 404
    assert httpx.get(f"{b}/v1/jobs/{2**40}", headers=h, timeout=30).status_code == 404
    assert httpx.delete(b + "/v1/collections/harbor/documents/ferry.txt", headers=h, timeout=30).status_code == 200

    # several files that wait: a bad one is listed as failed with its job, and the one after it gets in
    batch = [
        ("files", ("scan.txt", b"GIF89a" + bytes(64), "text/plain")),
        ("files", ("tug.txt", b"The tug docks at dawn.", "text/plain")),
    ]
    r = httpx.post(a + "/v1/collections/harbor/documents", headers=h, files=batch, timeout=120)
    assert r.status_code == 201, r.text
    rows = r.json()["data"]
    assert [(d["document"], d["status"]) for d in rows] == [("scan.txt", "failed"), ("tug.txt", "added")]
    assert "scan.txt: unsupported file type" in rows[0]["error"] and rows[0]["job"] > 0 and rows[1]["job"] > 0
    for name in ("scan.txt", "tug.txt"):
        assert httpx.delete(f"{b}/v1/collections/harbor/documents/{name}", headers=h, timeout=30).status_code == 200

    # deleting through the second server removes it for the first
    assert httpx.delete(b + "/v1/collections/harbor/documents/harbor.pdf", headers=h, timeout=30).status_code == 200
    assert httpx.get(a + "/v1/collections/harbor/documents", headers=h, timeout=30).json()["data"] == []


@pytest.mark.slow
def test_jobs_are_claimed_once_and_taken_over_when_a_lease_expires(
    home: Path, fake_embedder: FakeEmbedder, pg_server
) -> None:  # type: ignore[no-untyped-def]
    from ingest import jobs as jobs_module
    from ingest.jobs import JobQueue
    from ingest.pipeline import ingest_bytes

    url = pg_server.database()
    try:
        store = Store(home, fake_embedder.name, fake_embedder.dim, url)
        queue = JobQueue(store, lease_s=1.0)

        def add(collection, name, data, notify):  # type: ignore[no-untyped-def]
            return ingest_bytes(data, name, collection, store, fake_embedder, notify=notify)

        ids = queue.enqueue("c", [("a.txt", b"Herons wade in shallow water."), ("b.txt", b"Owls hunt at night.")])
        first = queue.claim("worker-a")  # worker a takes the oldest job and then dies (never works it)
        second = queue.claim("worker-b")
        assert first is not None and second is not None and (first[0], second[0]) == tuple(ids)
        assert queue.claim("worker-b") is None  # both are held: nothing for a third claim
        queue.work("worker-b", second, add)
        time.sleep(1.2)  # a's lease expires
        again = queue.claim("worker-b")
        assert again is not None and again[0] == ids[0]
        assert not queue._update(ids[0], "worker-a", "stage = 'late'", {})  # a's late word changes nothing
        queue.work("worker-b", again, add)
        states = queue.jobs(ids)
        assert sorted((s.name, s.status, s.stage, s.attempts, s.worker) for s in states) == [
            ("a.txt", "done", "added", 2, "worker-b"),
            ("b.txt", "done", "added", 1, "worker-b"),
        ]
        assert {d.name: d.status for d in store.documents("c")} == {"a.txt": "ready", "b.txt": "ready"}

        # a file that kills every worker that takes it: failed after MAX_ATTEMPTS, and listed as failed
        (bad,) = queue.enqueue("c", [("bomb.pdf", b"%PDF-1.4 never finishes")])
        for _ in range(jobs_module.MAX_ATTEMPTS):
            assert queue.claim("doomed") is not None
            time.sleep(1.1)
        assert queue.claim("worker-b") is None
        (state,) = queue.jobs([bad])
        assert state.status == "failed" and "the worker stopped 3 times while ingesting it" in state.error
        assert {d.name: d.status for d in store.documents("c")}["bomb.pdf"] == "failed"
    finally:
        pg_server.drop(url)


def _pdf_pages(n: int, seed: int) -> list[str]:
    import random

    rng = random.Random(seed)
    words = [
        "harbor",
        "lighthouse",
        "tide",
        "ferry",
        "anchor",
        "rope",
        "sail",
        "keel",
        "mast",
        "dock",
        "crane",
        "cargo",
        "pilot",
        "buoy",
        "signal",
    ]
    return [" ".join(rng.choice(words) for _ in range(160)) + f". Page {i} of part {seed}." for i in range(n)]


@pytest.mark.slow
def test_a_killed_worker_loses_nothing_another_finishes_its_job(tmp_path: Path, pg_server) -> None:  # type: ignore[no-untyped-def]
    import signal

    from ingest.embed import DEFAULT_EMBEDDER, embedder_identity
    from ingest.jobs import JobQueue

    url = pg_server.database()
    env = {**os.environ, "ARCHIVIST_DATABASE_URL": url, "HF_HUB_OFFLINE": "1"}
    exe = str(Path(sys.executable).with_name("archivist"))
    ident = embedder_identity(DEFAULT_EMBEDDER)
    assert ident is not None
    store = Store(tmp_path / "user", ident[0], ident[1], url)
    queue = JobQueue(store)
    files = [(f"part{i}.pdf", make_pdf(tmp_path / f"part{i}.pdf", _pdf_pages(120, i)).read_bytes()) for i in range(3)]
    ids = queue.enqueue("harbor", files)
    workers = []
    try:
        for w in ("a", "b"):
            cmd = [exe, "--home", str(tmp_path / w), "worker", "--lease", "4", "--poll", "0.2"]
            workers.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        victim = f":{workers[0].pid}"
        deadline = time.time() + 240
        while not any(s.worker.endswith(victim) and s.stage == "embedding" for s in queue.jobs(ids)):
            assert time.time() < deadline, [s.to_json() for s in queue.jobs(ids)]
            time.sleep(0.1)
        killed = next(s.id for s in queue.jobs(ids) if s.worker.endswith(victim) and not s.done)
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(10)
        while not all(s.done for s in queue.jobs(ids)):
            assert time.time() < deadline, [s.to_json() for s in queue.jobs(ids)]
            # never half-visible: a document listed ready has every one of its chunks
            for d in store.documents("harbor"):
                assert d.status == "ready" and store.count_chunks("harbor", d.name) == d.chunks > 0
            time.sleep(0.5)
    finally:
        for p in workers:
            if p.poll() is None:
                p.terminate()
                p.wait(30)
    states = {s.id: s for s in queue.jobs(ids)}
    assert {s.status for s in states.values()} == {"done"}
    assert states[killed].attempts == 2 and states[killed].worker.endswith(f":{workers[1].pid}")
    docs = store.documents("harbor")
    assert sorted(d.name for d in docs) == ["part0.pdf", "part1.pdf", "part2.pdf"]
    assert all(d.status == "ready" and store.count_chunks("harbor", d.name) == d.chunks > 0 for d in docs)
    pg_server.drop(url)


def test_the_apps_uploads_go_through_the_job_queue_on_a_server_database(
    home: Path, fake_embedder: FakeEmbedder, pg_server
) -> None:  # type: ignore[no-untyped-def]
    from app.ingest_jobs import IngestJobs
    from ingest.jobs import JobQueue
    from ingest.pipeline import ingest_bytes

    url = pg_server.database()
    try:
        store = Store(home, fake_embedder.name, fake_embedder.dim, url)
        queue = JobQueue(store)

        def add(collection, name, data, notify):  # type: ignore[no-untyped-def]
            return ingest_bytes(data, name, collection, store, fake_embedder, notify=notify)

        app_jobs = IngestJobs(store, add, queue)
        job = app_jobs.submit("c", [("gulls.txt", b"Gulls follow the ferry."), ("pic.txt", b"GIF89a" + bytes(64))])
        assert app_jobs.wait(60)
        assert [(f.name, f.stage) for f in job.files] == [("gulls.txt", "added"), ("pic.txt", "failed")]
        assert "unsupported file type" in job.files[1].error
        assert sorted((j.name, j.status, j.error_kind) for j in queue.jobs()) == [
            ("gulls.txt", "done", ""),
            ("pic.txt", "failed", "unsupported"),
        ]
        assert {d.name: d.status for d in store.documents("c")} == {"gulls.txt": "ready", "pic.txt": "failed"}
    finally:
        pg_server.drop(url)


@pytest.mark.slow
def test_a_filtered_hnsw_search_still_returns_every_neighbour(home: Path, pg_server) -> None:  # type: ignore[no-untyped-def]
    """A small collection in a table shared with a large one: the HNSW index answers, and pgvector's
    iterative scan keeps going until k rows pass the collection filter (without it, the first
    ef_search candidates are nearly all of the other collection and few or none come back)."""
    import numpy as np
    from sqlalchemy import text

    from ingest.pg_vectors import PgVectorIndex
    from ingest.types import ChunkDraft

    url = pg_server.database()
    try:
        store = Store(home, "random-64", 64, url)
        rng = np.random.default_rng(0)
        vectors: dict[str, np.ndarray] = {}
        for collection, docs, n in (("big", 6, 1000), ("small", 1, 120)):
            for d in range(docs):
                v = rng.standard_normal((n, 64)).astype(np.float32)
                v /= np.linalg.norm(v, axis=1, keepdims=True)
                drafts = [ChunkDraft(f"{collection} {d} {i}", None, None, "", 0, 1, 1) for i in range(n)]
                store.add_document(
                    collection,
                    name=f"{d}.txt",
                    sha256=f"{collection}{d}".ljust(64, "0"),
                    fmt="text",
                    size=0,
                    pages=None,
                    warnings=[],
                    chunks=drafts,
                    vectors=v,
                )
                vectors[collection] = np.vstack([vectors[collection], v]) if collection in vectors else v
        with store.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        q = rng.standard_normal(64).astype(np.float32)
        index = PgVectorIndex(store.engine, "small", 64, threshold=0)  # the shipped ef_search
        assert "Index Scan using chunks_embedding_hnsw_64" in index.plan(q, 10)
        scores, ids = index.search(q[None, :], 10)
        assert ids.shape[1] == 10
        exact = np.sort(vectors["small"] @ q)[::-1][:10]
        found = sum(bool(np.isclose(s, exact, atol=1e-5).any()) for s in scores[0])
        assert found >= 9, found  # recall@10 against exact search (random vectors: the hard case)
        with store.engine.begin() as conn:  # the trap: the same query without the iterative scan
            conn.execute(text("SET LOCAL hnsw.ef_search = 20"))
            plain = conn.execute(index._sql(True, False, ""), index._params(q, 10, None)).all()
        assert len(plain) < 10
    finally:
        pg_server.drop(url)


def test_writers_of_a_server_database_do_not_wait_for_each_other(
    home: Path, fake_embedder: FakeEmbedder, pg_server
) -> None:  # type: ignore[no-untyped-def]
    import threading

    from ingest.pipeline import ingest_bytes

    url = pg_server.database()
    try:
        first, second = (Store(home, fake_embedder.name, fake_embedder.dim, url) for _ in range(2))
        inside, release = threading.Event(), threading.Event()

        def hold() -> None:
            with first.writer():
                inside.set()
                release.wait(30)

        t = threading.Thread(target=hold)
        t.start()
        assert inside.wait(10)
        done = threading.Event()

        def write() -> None:  # another writer of the same workspace, while the first one holds it
            with second.writer():
                ingest_bytes(b"Puffins nest on cliffs.", "p.txt", "c", second, fake_embedder)
            done.set()

        w = threading.Thread(target=write)
        w.start()
        assert done.wait(20), "the second writer waited for the first"
        assert second.recover_if_idle() is False  # a writer is at work: its journal is not taken
        release.set()
        t.join(10)
        w.join(10)
        assert [d.name for d in first.documents("c")] == ["p.txt"]
    finally:
        pg_server.drop(url)


def test_arena_votes_are_kept_on_either_backend(home: Path, fake_embedder: FakeEmbedder, database_url) -> None:  # type: ignore[no-untyped-def]
    from assistants.arena import ArenaStore, Side, leaderboard

    store = Store(home, fake_embedder.name, fake_embedder.dim, database_url)
    arena = ArenaStore(store.engine)

    def side(name: str) -> Side:
        return Side(name, name[:12], f"answer of {name}", {}, [], False, 0.5, 1.0, 0.1)

    first = arena.add("human", "How often is the lens cleaned?", side("bot-a"), side("bot-b"))
    assert arena.vote(first.id, "a").vote == "a"
    with pytest.raises(ArchivistError, match="already has a vote"):
        arena.vote(first.id, "b")
    arena.add("human", "Who keeps the light?", side("bot-b"), side("bot-a"), vote="b")
    rows = leaderboard(
        ArenaStore(Store(home, fake_embedder.name, fake_embedder.dim, database_url).engine).battles("human")
    )
    assert (rows[0].name, rows[0].votes) == ("bot-a", 2) and {r.name for r in rows} == {"bot-a", "bot-b"}
