"""Loaders and the chunker on documents built in code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.chunk import ChunkSettings, chunk_document
from ingest.errors import IngestError, UnsupportedFileError
from ingest.loaders import load_bytes
from ingest.ocr import OcrSettings
from ingest.types import LoadedDocument, Page
from tests.shared import FakeEmbedder, make_pdf


def test_pdf_pages_keep_their_numbers(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "a.pdf", ["alpha page", "beta page", "gamma page"])
    doc = load_bytes(pdf.read_bytes(), "a.pdf")
    assert doc.format == "pdf"
    assert [p.number for p in doc.pages] == [1, 2, 3]
    assert "beta" in doc.pages[1].text


def test_pdf_with_empty_pages_is_reported(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "a.pdf", ["text here", "", "", "more text"])
    doc = load_bytes(pdf.read_bytes(), "a.pdf")
    assert doc.warnings == ["no text on pages 2-3"]  # blank, no picture on them: nothing for OCR either
    off = load_bytes(pdf.read_bytes(), "a.pdf", ocr=OcrSettings(mode="off"))
    assert off.warnings == ["no text on pages 2-3, scanned?"]


def test_type_comes_from_content_not_extension(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "a.pdf", ["hidden pdf"])
    assert load_bytes(pdf.read_bytes(), "notes.txt").format == "pdf"
    with pytest.raises(UnsupportedFileError, match="junk.txt: unsupported file type.*binary"):
        load_bytes(bytes(range(256)) * 10, "junk.txt")
    with pytest.raises(UnsupportedFileError, match="x.md: unsupported file type.*GIF"):
        load_bytes(b"GIF89a" + b"\x00" * 50, "x.md")


def test_text_encodings() -> None:
    assert load_bytes("héllo".encode("utf-16"), "a.txt").pages[0].text == "héllo"
    doc = load_bytes("café".encode("latin-1"), "a.txt")
    assert doc.pages[0].text == "café" and "read as Latin-1" in doc.warnings[0]
    with pytest.raises(IngestError, match="a.txt: file is empty"):
        load_bytes(b"  \n", "a.txt")


def test_truncated_pdf_gets_a_clear_error(tmp_path: Path) -> None:
    data = make_pdf(tmp_path / "a.pdf", ["some text"] * 3).read_bytes()
    with pytest.raises(IngestError, match="cut.pdf"):
        load_bytes(data[: len(data) // 3], "cut.pdf")


def test_chunks_respect_the_token_limit_and_point_into_the_page() -> None:
    emb = FakeEmbedder()
    text = " ".join(f"Sentence number {i} says something about topic {i % 7}." for i in range(200))
    doc = LoadedDocument("t.txt", "text", [Page(None, text)])
    chunks = chunk_document(doc, emb.count_tokens, emb.max_tokens, ChunkSettings(60, 12))
    assert len(chunks) > 5
    for c in chunks:
        assert c.n_tokens <= 60
        assert text[c.start : c.end] == c.text
    # consecutive chunks overlap a little, and together cover the text
    assert chunks[1].start < chunks[0].end
    assert chunks[-1].end == len(text)


def test_markdown_headings_start_chunks_and_are_recorded() -> None:
    emb = FakeEmbedder()
    md = "# Guide\n\nIntro text.\n\n## Install\n\nRun make.\n\n## Use\n\nAsk questions.\n"
    doc = load_bytes(md.encode(), "g.md")
    chunks = chunk_document(doc, emb.count_tokens, emb.max_tokens)
    by_heading = {c.heading: c.text for c in chunks}
    assert "Run make." in by_heading["Guide > Install"]
    assert "Ask questions." in by_heading["Guide > Use"]
    assert "Run make." not in by_heading["Guide > Use"]


def test_comment_lines_in_code_are_not_headings() -> None:
    """`# create logger` in a <pre> block or a fenced Markdown block is a code comment: it neither
    names a section nor cuts the code from the sentence that introduces it."""
    emb = FakeEmbedder()
    html = (
        b"<html><body><h1>Logging HOWTO</h1><p>Configure a logger in code:</p>"
        b'<pre>import logging\n\n# create logger\nlogger = logging.getLogger("simple")\n</pre>'
        b"<h2>Handlers</h2><p>Handlers send records.</p></body></html>"
    )
    md = "# Guide\n\nConfigure a logger in code:\n\n```python\n# create logger\n\nlogger = make()\n```\n\n## Handlers\n\nThey send records.\n"
    for doc in (load_bytes(html, "logging.html"), load_bytes(md.encode(), "guide.md")):
        chunks = chunk_document(doc, emb.count_tokens, emb.max_tokens)
        headings = {c.heading for c in chunks}
        assert not any("create logger" in h for h in headings), (doc.name, headings)
        code = next(c for c in chunks if "create logger" in c.text)
        assert "Configure a logger in code:" in code.text and code.heading in ("Logging HOWTO", "Guide")
        assert any(c.heading.endswith("Handlers") and "send records" in c.text for c in chunks)


def test_a_line_longer_than_the_limit_is_cut_not_truncated() -> None:
    emb = FakeEmbedder()
    text = "word " * 2000
    doc = LoadedDocument("t.txt", "text", [Page(None, text)])
    chunks = chunk_document(doc, emb.count_tokens, emb.max_tokens, ChunkSettings(100, 0))
    assert all(c.n_tokens <= 100 for c in chunks)
    assert sum(c.n_tokens for c in chunks) == 2000


def test_read_ahead_keeps_order_and_hands_over_the_error() -> None:
    from ingest.pipeline import ReadAhead

    def source() -> Iterator[int]:
        yield from range(5)
        raise ValueError("page 6 could not be read")

    got: list[int] = []
    ahead = ReadAhead(source())
    with pytest.raises(ValueError, match="page 6"):
        for x in ahead:
            got.append(x)
    assert got == [0, 1, 2, 3, 4] and ahead.finished


def test_read_ahead_closes_its_source_when_the_reader_stops_early() -> None:
    from ingest.pipeline import ReadAhead

    closed = []

    def source() -> Iterator[int]:
        try:
            yield from range(10_000)
        finally:
            closed.append(True)

    ahead = ReadAhead(source())
    assert next(iter(ahead)) == 0
    ahead.close()
    assert closed == [True]


def test_read_ahead_hands_over_what_is_ready_without_waiting() -> None:
    import threading

    from ingest.pipeline import ReadAhead

    gate = threading.Event()

    def source() -> Iterator[int]:
        yield 1
        yield 2
        gate.wait(10)
        yield 3

    ahead = ReadAhead(source())
    first = ahead.ready(wait=True)
    while len(first) < 2:
        first += ahead.ready(wait=True)
    assert first == [1, 2]
    assert ahead.ready(wait=False) == []  # the source is blocked: nothing, at once
    gate.set()
    assert ahead.ready(wait=True) == [3]
    assert ahead.ready(wait=True) == [] and ahead.exhausted


def test_a_bad_collection_name_stops_a_batch_before_any_file_is_read(tmp_path: Path) -> None:
    from ingest import IngestError, Store, ingest_paths
    from tests.shared import make_pdf

    class NoEmbedding:
        name, dim, max_tokens = "none", 4, 100

        def count_tokens(self, texts):  # type: ignore[no-untyped-def]
            raise AssertionError("a file was chunked")

        def embed(self, texts, batch_size=None):  # type: ignore[no-untyped-def]
            raise AssertionError("a file was embedded")

    pdf = make_pdf(tmp_path / "a.pdf", ["one page"])
    store = Store(tmp_path / "ws", "none", 4)
    with pytest.raises(IngestError, match="collection name '../x' is not allowed"):
        ingest_paths([pdf, pdf], "../x", store, NoEmbedding())  # type: ignore[arg-type]
    assert store.documents() == []


def test_text_that_starts_like_a_picture_or_a_recording_is_text() -> None:
    from ingest.loaders import sniff

    for head in (b"BMW cars are built in Munich.", b"ID3 tags describe songs.", b"OggS is a container."):
        assert sniff(head + b"\n", "notes.txt") == "text"
    assert sniff("héllo".encode("utf-16"), "a.txt") == "text"  # its byte order mark is no MP3 frame


def test_a_headings_permalink_mark_is_no_text_of_the_page() -> None:
    """Sphinx pages (the Python docs) put a "¶" link after every heading, shown on hover only."""
    html = (
        b'<html><body><h2>Introducing Optional arguments<a class="headerlink" href="#opt" title="Link">\xc2\xb6</a>'
        b"</h2><p>So far we have played with positional arguments. See <a href='#x'>the tutorial</a>.</p></body></html>"
    )
    text = load_bytes(html, "argparse.html").pages[0].text
    assert "## Introducing Optional arguments\n" in text and "\u00b6" not in text
    assert "See the tutorial." in text  # other links keep their words
