"""Ingest errors: each names the file and the problem or limit."""

from __future__ import annotations

from runtime.errors import ArchivistError


class IngestError(ArchivistError):
    """One file could not be ingested; the message names it."""


class UnsupportedFileError(IngestError):
    """The file's content is of a type Archivist does not read."""


class IndexMismatchError(ArchivistError):
    """A derived index was built by another embedder; it is refused, not served."""
