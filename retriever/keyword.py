"""Keyword search (BM25). The embedded default is SQLite FTS5; another database's full-text search
can serve the same `KeywordIndex` protocol."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import Engine, text

from retriever.filters import SearchFilter

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "instead",
        "way",
        "get",
        "want",
    ]
)


class KeywordIndex(Protocol):
    """Full-text search over the ready chunks of some collections."""

    def search(
        self, collections: Sequence[str], query: str, k: int, where: SearchFilter | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, score) best first; higher scores are better."""
        ...


def fts_query(query: str) -> str:
    """An FTS5 query that ORs the question's content words (quoted, so no syntax leaks through)."""
    words = [w for w in re.findall(r"\w+", query.lower()) if w not in STOPWORDS and len(w) > 1]
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(words))


class SqliteKeywordIndex:
    """BM25 over the catalog's FTS5 table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def search(
        self, collections: Sequence[str], query: str, k: int, where: SearchFilter | None = None
    ) -> list[tuple[int, float]]:
        match = fts_query(query)
        if not match or not collections:
            return []
        params: dict[str, object] = {"q": match, "k": k}
        names = ", ".join(f":c{i}" for i in range(len(collections)))
        params.update({f"c{i}": c for i, c in enumerate(collections)})
        extra = where.sql(params) if where else ""
        sql = (
            "SELECT c.id, -bm25(chunks_fts) AS score FROM chunks_fts "
            "JOIN chunks c ON c.id = chunks_fts.rowid JOIN documents d ON d.id = c.document_id "
            "JOIN collections col ON col.id = d.collection_id "
            f"WHERE chunks_fts MATCH :q AND d.status = 'ready' AND col.name IN ({names}){extra} "
            "ORDER BY bm25(chunks_fts) LIMIT :k"
        )
        with self.engine.connect() as conn:
            return [(int(r[0]), float(r[1])) for r in conn.execute(text(sql), params)]
