"""What an ingest reports: the limits on one file, what happened to each file, progress steps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from ingest.ocr import OcrSettings


@dataclass(frozen=True)
class IngestLimits:
    """Limits on one file."""

    max_file_bytes: int = 200 * 1024 * 1024
    max_pages: int = 5000
    parse_timeout_s: float = 600.0
    parse_memory_mb: int = 2048
    password: str | None = None
    # policy for text a reader cannot see: drop it from the chunks (and warn), or keep it (and warn)
    hidden_text: str = "drop"
    ocr: OcrSettings = field(default_factory=OcrSettings)  # how scanned pages and image files are read


FileStatus = Literal["added", "replaced", "unchanged", "failed"]  # what one ingest did to one file


@dataclass
class FileResult:
    """What happened to one file."""

    path: str
    status: FileStatus
    chunks: int = 0
    pages: int | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    name: str = ""  # the document name it was stored under
    unsupported: bool = False  # failed for a file type Archivist does not read


@dataclass
class IngestReport:
    """What happened to a batch."""

    results: list[FileResult] = field(default_factory=list)

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "failed"]


@dataclass(frozen=True)
class Progress:
    """One step of an ingest, for progress bars."""

    file_index: int
    files: int
    name: str
    stage: str  # reading | embedding | done | failed | unchanged
    chunks: int = 0  # embedded so far (with done: the file's chunks)
    pages: int = 0  # read so far
    result: FileResult | None = None  # with done, failed and unchanged: what happened to the file
    pages_total: int | None = None  # the pages to expect, where known before reading
    drafted: int = 0  # chunks cut from the pages read so far


ProgressCallback = Callable[[Progress], None]
