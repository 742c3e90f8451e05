"""Typed values passed between the ingest stages."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Page:
    """The text of one physical page (number is 1-based; None for formats without pages)."""

    number: int | None
    text: str
    ocr: float | None = None  # read from a picture: the engine's confidence (0-1); None: the file's own text
    seconds: tuple[float, float] | None = None  # a stretch of a recording: where it starts and ends


@dataclass
class LoadedDocument:
    """A parsed file: its pages and what the parser noticed."""

    name: str
    format: str
    pages: list[Page]
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ChunkDraft:
    """A passage before it is stored: text and where it came from."""

    text: str
    page: int | None
    page_end: int | None
    heading: str
    start: int  # character offset into the page text
    end: int
    n_tokens: int
