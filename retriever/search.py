"""Dense top-k search over one or more collections."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ingest.embed import Embedder
from ingest.store import Store


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with where it came from."""

    chunk_id: int
    document: str
    collection: str
    page: int | None
    page_end: int | None
    heading: str
    text: str
    score: float
    start: int = 0
    end: int = 0

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["score"] = round(float(self.score), 4)
        return d


def search(store: Store, embedder: Embedder, collections: Sequence[str], query: str, k: int = 5) -> list[Hit]:
    """The k passages whose embeddings are closest to the query's, across `collections`."""
    if not query.strip():
        return []
    qv = embedder.embed([query])
    found: list[tuple[float, int]] = []
    for name in collections:
        scores, ids = store.index(name).search(qv, k * 2)
        found.extend((float(s), int(i)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0)
    found.sort(reverse=True)
    rows = store.chunks([i for _, i in found])  # ready chunks only
    hits: list[Hit] = []
    for score, cid in found:
        c = rows.get(cid)
        if c is None:
            continue
        hits.append(Hit(c.id, c.document, c.collection, c.page, c.page_end, c.heading, c.text, score, c.start, c.end))
        if len(hits) == k:
            break
    return hits
