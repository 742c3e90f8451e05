"""Search filters (by document and page range): defined with the store that applies them."""

from __future__ import annotations

from ingest.filters import SearchFilter

__all__ = ["SearchFilter"]
