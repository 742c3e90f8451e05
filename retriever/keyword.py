"""Keyword search (BM25): the seam the retriever searches through. The embedded default is the
catalog's SQLite FTS5 index (`ingest.fulltext`); another database's full-text search can serve the
same `KeywordIndex` protocol."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ingest.filters import SearchFilter
from ingest.fulltext import STOPWORDS, PgKeywordIndex, SqliteKeywordIndex, content_words, fts_query, keyword_index

__all__ = [
    "STOPWORDS",
    "KeywordIndex",
    "PgKeywordIndex",
    "SqliteKeywordIndex",
    "content_words",
    "fts_query",
    "keyword_index",
]


class KeywordIndex(Protocol):
    """Full-text search over the ready chunks of some collections."""

    def present(self, collections: Sequence[str], words: Sequence[str]) -> set[str]:
        """The words (stemmed as the index stems them) that some ready chunk of `collections` contains."""
        ...

    def search(
        self, collections: Sequence[str], query: str, k: int, where: SearchFilter | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, score) best first; higher scores are better."""
        ...
