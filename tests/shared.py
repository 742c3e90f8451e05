"""What several test files share, in one place: fakes (an embedder, scripted models), builders of
real documents (PDFs, scans), a server on loopback, and the real app for browser tests."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn

from app.services import Services
from app.ui.theme import app_flags
from assistants import parse_assistant
from retriever.search import Hit
from runtime.protocol import GenerationParams, GenerationStats, Message


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

# The API tests' assistant over the harbor guide
BOT = """
name: harbor-bot
description: Answers from the harbor guide.
model: {max_tokens: 24, temperature: 0, context_window: 2048}
knowledge: {collections: [harbor]}
retrieval: {top_k: 2}
thinking: off    # answers stream as written: the streaming tests need pieces
fallback: off
anchor: off
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, app, port: int) -> None:  # type: ignore[no-untyped-def]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started and time.time() < deadline:
            time.sleep(0.05)
        assert self.server.started
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def use(svc: Services, pool: Any) -> Services:
    """The same workspace, answering with `pool`'s models."""
    return svc.using_models(pool)


class NoModels:
    """A model pool that fails the test if anything asks it for a model."""

    def get(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the generation model was loaded")


def assistant(**extra: Any) -> Any:
    data = {
        "name": "harbor",
        "knowledge": {"collections": ["harbor"]},
        "model": {"temperature": 0, "max_tokens": 60, "context_window": 2048},
        "retrieval": {"top_k": 3},
        # the answer as written, streamed: what grounding: mark and retry are tested on; tests of the
        # System-2 settings name the ones they try
        "thinking": "off",
        "fallback": "off",
        "anchor": "off",
        **extra,
    }
    return parse_assistant(data, "test")


class ScriptedModel:
    """Answers with the scripted texts in turn; records the prompts it was given."""

    context_window = 2048

    def __init__(self, replies: Sequence[str]) -> None:
        self.replies = list(replies)
        self.prompts: list[list[Message]] = []
        self.params: list[GenerationParams] = []

    def tokenize_prompt(self, messages: Sequence[Message]) -> list[int]:
        return [0] * sum(len(m["content"].split()) + 4 for m in messages)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def stream(self, messages: Sequence[Message], params: GenerationParams, stats: GenerationStats) -> Iterator[str]:
        self.prompts.append(list(messages))
        self.params.append(params)
        text = self.replies.pop(0)
        stats.completion_tokens = len(text.split())
        yield from text.split(" ")[:1]
        yield " " + " ".join(text.split(" ")[1:])


class OnePool:
    def __init__(self, model: ScriptedModel) -> None:
        self.model = model

    def get(self, *args: Any, **kwargs: Any) -> ScriptedModel:
        return self.model


BAD = "The lens is replaced every 12 years by Captain Ahab. The lamp uses 240 volts from a windmill."
GOOD = "The keeper cleans the Greywater lens every Tuesday [1]. The lamp runs on a 24 volt supply [1]."

ROOT = Path(__file__).parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
OUTPUT = ROOT / "test-output" / "browser"

# CI installs chromium (.ci/run) and must run this test; elsewhere it is skipped with a reason.
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (apt-get install chromium)",
)


def start_app(home: Path, **extra_env: str) -> Iterator[str]:
    """The Streamlit app on a free loopback port for this workspace, stopped at the end."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "ARCHIVIST_HOME": str(home), "HF_HUB_OFFLINE": "1", **extra_env}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "app" / "main.py"),
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
            *app_flags(),  # as `archivist ui` starts it
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/_stcore/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(60)


# Passages of the R manuals and a bird guide, as search hands them over (grounding and quote tests)
CONSOLE = (
    "The R console reads one command line at a time. Command lines entered at the console are limited "
    "to about 4095 bytes (not characters). Longer input should be put in a file and read with source()."
)
SINK = (
    'The function sink("record.lis") will divert all subsequent output from the console to an external '
    "file. The command sink() restores it to the console once again."
)

PUFFINS = "Puffins nest on the cliffs below the tower from April to August. The colony was counted by Mary Tern."


def hit(n: int, text: str, document: str = "manual.pdf", page: int = 1, start: int = 0) -> Hit:
    return Hit(n, document, "c", page, page, "", text, 1.0 / n, start, start + len(text), 0.5)


HITS = [hit(1, CONSOLE, page=11, start=100), hit(2, SINK, page=12), hit(3, PUFFINS, "birds.pdf", 4)]
