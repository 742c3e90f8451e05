"""Shared fixtures: a temporary workspace per test, real models loaded once per session, a real
PostgreSQL, the real app. What they are built from (fakes, documents, servers) is tests/shared.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything imports huggingface_hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tests.shared import HITS, PAGES, FakeEmbedder, make_pdf, start_app


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "workspace"
    monkeypatch.setenv("ARCHIVIST_HOME", str(h))
    return h


@pytest.fixture(scope="session")
def pg_server():  # type: ignore[no-untyped-def]
    """A real PostgreSQL with pgvector on a free loopback port for the whole session (tests/pg.py)."""
    from tests.pg import PgServer

    server = PgServer()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """Each backend in turn: None (the SQLite file in the workspace) or a fresh PostgreSQL database,
    dropped afterwards with whatever connections the test left open."""
    if request.param == "sqlite":
        yield None
        return
    server = request.getfixturevalue("pg_server")
    url = server.database()
    yield url
    server.drop(url)


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture(scope="session")
def real_embedder():  # type: ignore[no-untyped-def]
    from ingest.embed import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture(scope="session")
def trained_reranker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of a cross-encoder trained for the tests (see tests/reranker_training.py)."""
    from tests.reranker_training import train_reranker

    return train_reranker(tmp_path_factory.mktemp("reranker") / "cross-encoder")


@pytest.fixture(scope="session")
def model_pool():  # type: ignore[no-untyped-def]
    from runtime.registry import ModelPool

    return ModelPool()


@pytest.fixture(scope="session")
def small_model(model_pool):  # type: ignore[no-untyped-def]
    return model_pool.get("bundled:smollm2-135m", context_window=2048)


@pytest.fixture
def harbor(home: Path, tmp_path: Path, real_embedder):  # type: ignore[no-untyped-def]
    from app.services import Services
    from ingest import ingest_paths

    pdf = make_pdf(tmp_path / "harbor.pdf", PAGES)
    svc = Services.create(home, embedder=real_embedder)
    ingest_paths([pdf], "harbor", svc.store, svc.embedder)
    return svc, pdf


@pytest.fixture
def app_url(home: Path) -> Iterator[str]:
    """The real app (Streamlit) on a free loopback port for this workspace."""
    yield from start_app(home)


@pytest.fixture(scope="module")
def ps(real_embedder):  # type: ignore[no-untyped-def]
    """The sentences of the shared passages (tests.shared.HITS), embedded by the real embedder."""
    from retriever.passages import passage_sentences

    return passage_sentences(None, real_embedder, HITS)
