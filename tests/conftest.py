"""Shared fixtures: a temporary workspace per test, real models loaded once per session, and fakes."""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class FakeEmbedder:
    """Deterministic bag-of-words embedder: each word hashes to a dimension."""

    name = "fake-words"
    dim = 64
    max_tokens = 120

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(re.findall(r"\w+|[^\w\s]", t)) for t in texts]

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dim] += 1.0
            n = np.linalg.norm(out[i])
            out[i] /= n if n else 1.0
        return out


def slow_encoder(embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch, seconds: float = 0.1) -> list[list[str]]:
    """Make `embedder` take `seconds` per call, as a real encoder takes a while (the parser reads
    the next files meanwhile), in calls of 4 chunks; returns the texts of each call, as made."""
    from ingest import staging

    monkeypatch.setattr(staging, "EMBED_BATCH", 4)
    calls: list[list[str]] = []
    embed = embedder.embed

    def slow(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        calls.append(list(texts))
        time.sleep(seconds)
        return embed(texts, batch_size)

    monkeypatch.setattr(embedder, "embed", slow)
    return calls


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


def make_pdf(path: Path, pages: Sequence[str]) -> Path:
    """A real PDF with one text block per page."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


def make_scan(path: Path, pages: Sequence[str], dpi: int = 150) -> Path:
    """An image-only PDF of `pages` (what a scanner writes): each page of `make_pdf` rendered to a
    grey picture, one picture per page, no text layer."""
    import pypdfium2 as pdfium
    from PIL import Image

    text_pdf = make_pdf(path.with_name(path.stem + "-text.pdf"), pages)
    doc = pdfium.PdfDocument(str(text_pdf))
    try:
        images = [
            Image.fromarray(doc[i].render(scale=dpi / 72).to_numpy()[..., :3].copy()).convert("L")
            for i in range(len(doc))
        ]
    finally:
        doc.close()
    images[0].save(path, save_all=True, append_images=images[1:], resolution=dpi)
    return path


# A four-page field guide: the harbor fixture ingests it as a real PDF into the collection "harbor".
PAGES = [
    "Harbor Lights Field Guide. This guide describes the lighthouses of the northern coast.",
    "Maintenance schedule. The lens of the Greywater lighthouse is cleaned every Tuesday by the keeper. "
    "The lamp runs on a 24 volt supply. Spare bulbs are kept in the oil house.",
    "Visiting hours. The museum shop sells postcards and maps. Parking is free on weekends.",
    "Wildlife. Puffins nest on the cliffs below the tower from April to August.",
]


@pytest.fixture
def harbor(home: Path, tmp_path: Path, real_embedder):  # type: ignore[no-untyped-def]
    from app.services import Services
    from ingest import ingest_paths

    pdf = make_pdf(tmp_path / "harbor.pdf", PAGES)
    svc = Services.create(home, embedder=real_embedder)
    ingest_paths([pdf], "harbor", svc.store, svc.embedder)
    return svc, pdf
