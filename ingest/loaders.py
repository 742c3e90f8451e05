"""Turn a file into pages of text. The type is decided from the content, not the extension."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.errors import IngestError, UnsupportedFileError
from ingest.hidden import hidden_warnings, strip_invisible_unicode
from ingest.injection import find_injections
from ingest.ocr import OcrSettings
from ingest.pictures import page_ranges
from ingest.running import without_running
from ingest.types import LoadedDocument, Page

if TYPE_CHECKING:
    from ingest.pdf_layers import Layers

SUPPORTED = (
    "PDF, DOCX, HTML, Markdown, CSV, JSON, plain text, images (PNG, JPEG, TIFF, WebP, BMP), "
    "recordings (WAV, MP3, OGG, FLAC, M4A, WebM)"
)
MARKDOWN_SUFFIXES = {".md", ".markdown", ".mdown", ".mkd"}


def sniff(data: bytes, name: str) -> str:
    """The format of `data` (pdf, docx, html, csv, json, markdown, text); raises for an empty file
    or anything unsupported."""
    if not data or data.isspace():  # isspace: no copy of a large file, unlike strip()
        raise IngestError(f"{name}: file is empty")
    if data.startswith(b"%PDF-") or data[:1024].lstrip().startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        if b"word/" in data[:200_000]:
            return "docx"
        raise UnsupportedFileError(
            f"{name}: unsupported file type: the content is a ZIP archive that is not a DOCX; supported: {SUPPORTED}"
        )
    if is_image(data):
        return "image"
    from ingest.audio import is_audio

    if is_audio(data):
        return "audio"
    for magic, kind in (
        (b"GIF8", "a GIF image"),
        (b"\x7fELF", "an executable"),
    ):
        if data.startswith(magic):
            raise UnsupportedFileError(f"{name}: unsupported file type: the content is {kind}; supported: {SUPPORTED}")
    text, _ = decode_text(data[:4096], name)  # raises if the bytes are not text
    head = text.lstrip()[:1024].lower()
    suffix = Path(name).suffix.lower()
    if head.startswith(("<!doctype html", "<html")) or (
        "<html" in head and "<body" in data[:65536].decode("latin-1").lower()
    ):
        return "html"
    if suffix in (".html", ".htm", ".xhtml") and head.startswith("<"):
        return "html"  # a fragment without <html>: a browser still renders its markup (and hides)
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix == ".json" or (head[:1] in ("{", "[") and suffix not in MARKDOWN_SUFFIXES and _is_json(data)):
        return "json"
    return "markdown" if suffix in MARKDOWN_SUFFIXES else "text"


def is_image(data: bytes) -> bool:
    """PNG, JPEG, TIFF, WebP or BMP, by their first bytes (a BMP by its whole header: a text that
    starts with "BM" is text)."""
    bmp = data[:2] == b"BM" and data[6:10] == b"\x00" * 4 and data[14:15] in (b"\x0c", b"(", b"4", b"8", b"l", b"|")
    return (
        bmp
        or data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*"))
        or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
    )


def _is_json(data: bytes) -> bool:
    import json

    try:
        json.loads(data)
    except ValueError:
        return False
    return True


def decode_text(data: bytes, name: str) -> tuple[str, str | None]:
    """Decode text bytes: UTF-8, UTF-16 with a BOM, else Latin-1 (reported as a warning)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), None
    sample = data[:65536]
    if b"\x00" in sample or _control_ratio(sample) > 0.05:
        raise UnsupportedFileError(
            f"{name}: unsupported file type: the content is binary, not text; supported: {SUPPORTED}"
        )
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return data.decode("latin-1"), f"{name}: not valid UTF-8; read as Latin-1"


def _control_ratio(sample: bytes) -> float:
    if not sample:
        return 0.0
    bad = sum(1 for b in sample if b < 32 and b not in (9, 10, 12, 13))
    return bad / len(sample)


def load_bytes(
    data: bytes,
    name: str,
    *,
    max_pages: int = 5000,
    drop_hidden: bool = True,
    password: str | None = None,
    ocr: OcrSettings | None = None,
) -> LoadedDocument:
    """Parse `data` (the content of the file called `name`) into pages."""
    fmt, pages, warnings, _total = iter_pages(
        data, name, max_pages=max_pages, drop_hidden=drop_hidden, password=password, ocr=ocr
    )
    doc = LoadedDocument(name, fmt, list(pages), warnings)
    return doc


def iter_pages(
    data: bytes,
    name: str,
    *,
    max_pages: int = 5000,
    drop_hidden: bool = True,
    password: str | None = None,
    ocr: OcrSettings | None = None,
) -> tuple[str, Iterator[Page], list[str], int | None]:
    """The format, the pages as they are parsed, the warnings (complete once the pages are), and
    how many pages to expect (None where that is not known before reading: progress by work done)."""
    fmt = sniff(data, name)
    warnings: list[str] = []
    settings = (ocr or OcrSettings()).check()
    total: int | None
    if fmt == "pdf":
        pages, total = _pdf_pages(data, name, max_pages, drop_hidden, password, settings, warnings)
    elif fmt == "image":
        from ingest.pictures import image_pages

        pages, total = image_pages(data, name, max_pages, drop_hidden, settings, warnings)
    elif fmt == "audio":
        pages, total = _recording_pages(data, name, warnings)
    else:
        doc = _LOADERS[fmt](data, name, max_pages, drop_hidden)
        warnings.extend(doc.warnings)
        pages, total = iter(doc.pages), len(doc.pages)
    return fmt, _flag_injections(_without_invisible(pages, drop_hidden, warnings), warnings), warnings, total


def _flag_injections(pages: Iterator[Page], warnings: list[str]) -> Iterator[Page]:
    """Report instructions addressed to a model (see `ingest.injection`); the text stays as it is."""
    for page in pages:
        found = find_injections(page.text)
        if found:
            where = f"page {page.number}" if page.number else "text"
            kinds = ", ".join(f"{kind}: {n}" for kind, n in found.items())
            warnings.append(f"{where}: instructions to an AI found ({kinds}); never quoted")
        yield page


def _without_invisible(pages: Iterator[Page], drop: bool, warnings: list[str]) -> Iterator[Page]:
    """Invisible Unicode (tag characters, zero-width, bidi controls) out of every page, with a warning."""
    for page in pages:
        text, found = strip_invisible_unicode(page.text)
        if found:
            where = f"page {page.number}" if page.number else "text"
            kinds = ", ".join(f"{n} {kind}" for kind, n in found.items())
            warnings.append(f"{where}: invisible Unicode {'removed' if drop else 'found'} ({kinds})")
        yield dataclasses.replace(page, text=text) if drop else page


def _recording_pages(data: bytes, name: str, warnings: list[str]) -> tuple[Iterator[Page], int]:
    """A recording's speech, transcribed with its times, a stretch of about 30 s a page (and how
    many such stretches its length holds)."""
    from ingest.audio import PAGE_SECONDS, clock, duration, pages, transcribe

    seconds = duration(data, name)  # refused here when too long, before anything is decoded

    def heard() -> Iterator[Page]:
        n = 0
        for n, text, start, end in pages(transcribe(data, name)):
            yield Page(n, text, None, (start, end))
        if n == 0:
            raise IngestError(f"{name}: no speech was heard in the recording ({clock(seconds)} long)")
        warnings.append(f"transcribed {clock(seconds)} of speech (whisper tiny.en)")

    return heard(), max(1, math.ceil(seconds / PAGE_SECONDS))


def _load_text(data: bytes, name: str, _max_pages: int, _drop: bool) -> LoadedDocument:
    text, warning = decode_text(data, name)
    return LoadedDocument(name, "text", [Page(None, _normalize(text))], [warning] if warning else [])


def _load_markdown(data: bytes, name: str, _max_pages: int, drop_hidden: bool) -> LoadedDocument:
    """Markdown as text, as a rendered page shows it (`ingest.markdown`): hidden text reported per kind."""
    from ingest.markdown import visible_markdown

    doc = _load_text(data, name, _max_pages, drop_hidden)
    doc.format = "markdown"
    text, hidden = visible_markdown(doc.pages[0].text, drop_hidden)
    doc.warnings += hidden_warnings("hidden Markdown text", hidden, drop_hidden)
    doc.pages = [Page(None, text)]
    return doc


def _pdf_pages(
    data: bytes,
    name: str,
    max_pages: int,
    drop_hidden: bool,
    password: str | None,
    ocr: OcrSettings,
    warnings: list[str],
) -> tuple[Iterator[Page], int]:
    from ingest.pdf import open_pdf
    from ingest.pdf_layers import Layers

    doc = open_pdf(data, name, password)
    n = len(doc)
    if n > max_pages:
        doc.close()
        raise IngestError(f"{name}: PDF has {n:,} pages; the limit is {max_pages:,}")
    return _pdf_page_iter(doc, name, n, drop_hidden, ocr, warnings, Layers(data, password)), n


def _pdf_page_iter(
    doc: Any, name: str, n: int, drop_hidden: bool, ocr: OcrSettings, warnings: list[str], layers: Layers
) -> Iterator[Page]:
    """The pages in order, read one at a time, without their running headers and footers."""
    from ingest.pictures import ocr_summary, pdf_page_texts

    empty: list[int] = []
    page_warnings: list[str] = []
    read: dict[int, float] = {}
    texts = pdf_page_texts(doc, name, n, drop_hidden, layers, ocr, page_warnings)
    for (i, confidence), text in without_running(((i, conf), _normalize(t)) for i, t, conf in texts):
        if not text.strip():
            empty.append(i)
        if confidence is not None:
            read[i] = confidence
        yield Page(i, text, confidence)
    if len(empty) == n:
        hint = "scanned? OCR it first" if ocr.mode == "off" else "nothing was read from its pictures either"
        raise IngestError(f"{name}: no extractable text on any of its {n} pages ({hint})")
    if empty:
        warnings.append(f"no text on pages {page_ranges(empty)}" + (", scanned?" if ocr.mode == "off" else ""))
    warnings.extend(ocr_summary(read, ocr))
    warnings.extend(page_warnings)


def _load_html(data: bytes, name: str, _max_pages: int, drop_hidden: bool) -> LoadedDocument:
    from ingest.html import html_to_text

    text, warning = decode_text(data, name)
    warnings = [warning] if warning else []
    visible, hidden = html_to_text(text, drop_hidden=drop_hidden, notes=warnings)
    warnings += hidden_warnings("hidden HTML text", hidden, drop_hidden)
    return LoadedDocument(name, "html", [Page(None, visible)], warnings)


def _load_docx(data: bytes, name: str, _max_pages: int, drop_hidden: bool) -> LoadedDocument:
    from ingest.office import docx_text

    text, hidden = docx_text(data, name, drop_hidden)
    return LoadedDocument(name, "docx", [Page(None, text)], hidden_warnings("hidden DOCX text", hidden, drop_hidden))


def _load_csv(data: bytes, name: str, _max_pages: int, _drop: bool) -> LoadedDocument:
    from ingest.office import csv_text

    text, warning = decode_text(data, name)
    return LoadedDocument(name, "csv", [Page(None, csv_text(_normalize(text)))], [warning] if warning else [])


def _load_json(data: bytes, name: str, _max_pages: int, _drop: bool) -> LoadedDocument:
    from ingest.office import json_text

    text, warning = decode_text(data, name)
    return LoadedDocument(name, "json", [Page(None, json_text(text))], [warning] if warning else [])


def _normalize(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return re.sub(r"[ \t\u00a0]+\n", "\n", text)


_LOADERS: dict[str, Callable[[bytes, str, int, bool], LoadedDocument]] = {
    "html": _load_html,
    "docx": _load_docx,
    "csv": _load_csv,
    "json": _load_json,
    "markdown": _load_markdown,
    "text": _load_text,
}
SUPPORTED_SUFFIXES = {".pdf", ".docx", ".txt", ".text", ".html", ".htm", ".csv", ".tsv", ".json", *MARKDOWN_SUFFIXES}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"}
AUDIO_SUFFIXES = {".wav", ".mp3", ".ogg", ".opus", ".oga", ".flac", ".m4a", ".webm"}
SUPPORTED_SUFFIXES |= IMAGE_SUFFIXES | AUDIO_SUFFIXES
