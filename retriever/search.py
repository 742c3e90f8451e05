"""Dense, keyword and hybrid search with filters, de-duplication and an optional reranker."""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np

from ingest.embed import Embedder
from ingest.store import Store, StoredChunk
from retriever.filters import SearchFilter
from retriever.keyword import KeywordIndex, keyword_index
from retriever.rerank import Reranker
from retriever.sentences import LEADER

log = logging.getLogger("archivist.search")
SLOW_SEARCH_S = 1.0  # a search slower than this is logged

Mode = Literal["dense", "keyword", "hybrid"]
MODES: tuple[Mode, ...] = ("dense", "keyword", "hybrid")


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with where it came from. `score` is the mode's own score; `similarity`
    is the cosine between question and passage whatever the mode (the relevance floor uses it)."""

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
    similarity: float = 0.0
    ocr: float | None = None  # the page was read from a picture (OCR): the engine's confidence
    seconds: tuple[float, float] | None = None  # the passage is a stretch of a recording: start and end

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["score"] = round(float(self.score), 4)
        d["similarity"] = round(float(self.similarity), 4)
        return d


@dataclass(frozen=True)
class FusionSettings:
    """Weighted reciprocal rank fusion: score = sum of weight / (k + rank) over the lists a passage is in."""

    # k chosen on the dev set (R-intro + R-FAQ, hybrid hit@5 / MRR, contents pages listed last):
    # k 60 0.975 / 0.895, 40 1.000 / 0.897, 30 1.000 / 0.898, 20 1.000 / 0.910, 10 1.000 / 0.923;
    # confirmed on bench/eval/second-dev.jsonl: 0.950 / 0.867 at 60, 0.950 / 0.871 at 20 and at 10.
    # 20 rather than 10: the same on the second set, and less given to one list's top rank.
    rrf_k: int = 20
    dense_weight: float = 1.0
    keyword_weight: float = 0.5
    candidates: int = 50  # taken from each list before fusing


def search(
    store: Store,
    embedder: Embedder,
    collections: Sequence[str],
    query: str,
    k: int = 5,
    *,
    mode: Mode = "hybrid",
    where: SearchFilter | None = None,
    reranker: Reranker | None = None,
    fusion: FusionSettings | None = None,
    per_page: int = 1,
) -> list[Hit]:
    """The k best passages for `query` across `collections`, `per_page` passages of a page before
    any page's next (`_citation_order`)."""
    if not query.strip() or not collections:
        return []
    started = time.perf_counter()
    fusion = fusion or FusionSettings()
    n = max(k * 4, fusion.candidates) if (mode == "hybrid" or reranker) else k * 2
    # SQLite and torch both release the GIL: the keyword search runs while the query is embedded.
    keyword = _POOL.submit(_keyword(store).search, collections, query, n, where) if mode != "dense" else None
    qv = embedder.embed([query])
    ranked: list[tuple[int, float]]
    if mode == "dense":
        ranked = _dense(store, collections, qv, n, where)
    elif mode == "keyword":
        assert keyword is not None
        ranked = keyword.result()
    else:
        assert keyword is not None
        dense = _dense(store, collections, qv, n, where)
        ranked = rrf([dense, keyword.result()], [fusion.dense_weight, fusion.keyword_weight], fusion.rrf_k)
    rows = store.chunks([cid for cid, _ in ranked])  # ready chunks only
    hits = _citation_order(_dedupe([_hit(rows[cid], score, qv[0]) for cid, score in ranked if cid in rows]), per_page)
    if reranker is not None and hits:
        pool = hits[: max(k * 3, 20)]
        scores = reranker.score(query, [h.text for h in pool])
        ranked_pool = sorted(zip(scores, pool, strict=True), key=lambda x: x[0], reverse=True)
        hits = [replace(h, score=float(s)) for s, h in ranked_pool]
    spent = time.perf_counter() - started
    # The query's words are the user's: only its size is logged. At INFO: the log file keeps it, and
    # the terminal, where an answer is being printed, does not get it in the middle of the answer.
    if spent > SLOW_SEARCH_S:
        log.info(
            "slow search: %.2f s over %d collection(s), mode %s, k %d, %d-character query",
            spent,
            len(collections),
            mode,
            k,
            len(query),
        )
    return hits[:k]


def rrf(lists: Sequence[Sequence[tuple[int, float]]], weights: Sequence[float], k: int = 60) -> list[tuple[int, float]]:
    """Weighted reciprocal rank fusion of ranked (id, score) lists."""
    fused: dict[int, float] = {}
    for ranked, w in zip(lists, weights, strict=True):
        for rank, (cid, _) in enumerate(ranked, start=1):
            fused[cid] = fused.get(cid, 0.0) + w / (k + rank)
    return sorted(fused.items(), key=lambda x: x[1], reverse=True)


def _dense(
    store: Store, collections: Sequence[str], qv: Any, n: int, where: SearchFilter | None
) -> list[tuple[int, float]]:
    found: list[tuple[int, float]] = []
    known = store.collection_names()
    for name in collections:
        if name not in known:
            continue
        allowed = store.chunk_ids(name, where) if where is not None and where.active else None
        scores, ids = store.index(name).search(qv, n, allowed)
        found.extend((int(i), float(s)) for s, i in zip(scores[0], ids[0], strict=True) if i >= 0)
    found.sort(key=lambda x: x[1], reverse=True)
    return found[:n]


_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="archivist-keyword")
_KEYWORD: weakref.WeakKeyDictionary[Store, KeywordIndex] = weakref.WeakKeyDictionary()
_KEYWORD_LOCK = threading.Lock()


def _keyword(store: Store) -> KeywordIndex:
    """One keyword index per store, so its term statistics are cached across searches."""
    with _KEYWORD_LOCK:
        if store not in _KEYWORD:
            _KEYWORD[store] = keyword_index(store.engine)
        return _KEYWORD[store]


def present_words(store: Store, collections: Sequence[str], words: Sequence[str]) -> set[str]:
    """The words some ready document of `collections` contains (as the keyword index stems them)."""
    return _keyword(store).present(collections, words)


def _hit(c: StoredChunk, score: float, qv: Any) -> Hit:
    sim = float(np.frombuffer(c.embedding, dtype=np.float32) @ qv) if c.embedding else 0.0
    return Hit(
        c.id,
        c.document,
        c.collection,
        c.page,
        c.page_end,
        c.heading,
        c.text,
        score,
        c.start,
        c.end,
        sim,
        c.ocr,
        c.seconds,
    )


def is_contents(text: str) -> bool:
    """A passage of a table of contents or an index ("1.12 S4 objects . . . . . 19"): it names every
    topic and answers none. Listed after the other passages, measured with hybrid search (hit@5 /
    MRR, in workspaces ingested earlier): R-intro + R-FAQ 0.975 / 0.893 -> 0.975 / 0.895 (dense
    alone 0.975 -> 1.000), bench/eval/second-dev.jsonl 0.950 / 0.866 -> 0.950 / 0.867."""
    return len(LEADER.findall(text)) >= 2


DUPLICATE_SHARE = 0.5


def _dedupe(hits: list[Hit]) -> list[Hit]:
    """Drop a passage that mostly repeats a better-ranked one of the same page: more than
    `DUPLICATE_SHARE` of the shorter one's span inside the other.

    Neighbouring chunks share only their overlap (24 of 128 tokens), so both stay: dropping a chunk
    for any overlap lost the rest of its text, the answer among it. Measured (hybrid hit@1 / hit@5 /
    MRR, evidence inside the supporting quotes): R-intro + R-FAQ 0.850 / 1.000 / 0.915, quotes 0.900
    either way; bench/eval/second-dev.jsonl 0.825 / 0.975 / 0.890 either way, quotes 0.725 -> 0.775
    (venv.html's ".venv" sentence was in the dense search's first chunk, which the hybrid list
    dropped behind its neighbour). Merging the two into one longer passage instead: 0.875 / 0.750."""
    kept: list[Hit] = []
    for h in hits:
        if any(
            k.document == h.document
            and k.collection == h.collection
            and k.page == h.page
            and min(h.end, k.end) - max(h.start, k.start)
            > DUPLICATE_SHARE * max(1, min(h.end - h.start, k.end - k.start))
            for k in kept
        ):
            continue
        kept.append(h)
    return kept


def _citation_order(hits: list[Hit], per_page: int = 1) -> list[Hit]:
    """Up to `per_page` passages per PDF page first and a page's further passages after them;
    contents and index passages (`is_contents`) last.

    A citation names a page: five passages from three pages cite three places. Measured with hybrid
    search (MRR): R-intro + R-FAQ 0.885 -> 0.893 in a workspace ingested earlier, 0.910 -> 0.910
    freshly ingested by bench/retrieval_quality.py; bench/eval/second-dev.jsonl 0.862 -> 0.866
    (two per page: 0.885, 0.864); hit@5 unchanged on both. Passages without pages (HTML, Markdown)
    are left in order: there the whole file is one "page"."""
    seen: dict[tuple[str, str, int], int] = {}
    first: list[Hit] = []
    later: list[Hit] = []
    for h in hits:
        if h.page is None:
            first.append(h)
            continue
        key = (h.collection, h.document, h.page)
        n = seen.get(key, 0)
        (later if n >= per_page else first).append(h)
        seen[key] = n + 1
    answers: list[Hit] = []
    contents: list[Hit] = []
    for h in first + later:
        (contents if is_contents(h.text) else answers).append(h)
    return answers + contents
