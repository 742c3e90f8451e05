"""Vector search of one collection on the PostgreSQL backend (pgvector): the chunks' own
`embedding` column, exact below a size threshold, an HNSW index above it.

The HNSW index is built on the expression `embedding::vector(DIM)` (the column itself has no fixed
size), so only queries written on that expression use it: the exact query orders by the column and
reads every ready vector of the collection; the approximate one orders by the expression, with
pgvector 0.8's iterative scan on, so the collection and search filters never cut the answer short
(without it a filtered HNSW scan returns only the neighbours its first `ef_search` candidates hold).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from sqlalchemy import Engine, text

# Measured by bench/retrieval.py on 100,000 real chunks (PostgreSQL 16, pgvector 0.8.5, 2 cores):
# exact search reads ~3 us a chunk (54 ms at 17,000, 237 ms at 83,000), so it answers below
# 10,000 chunks (about 30 ms); above, the HNSW index, whose recall@10 against exact search at
# ef_search 300 was 0.995 on a collection of 83% of the table, 0.967 on one of 17% (the collection
# filter drops 4 of 5 neighbours), 0.988 with a document filter (at 100: 0.981 / 0.899 / 0.961).
EXACT_BELOW = 10_000  # ready chunks of a collection
HNSW_M, HNSW_EF_CONSTRUCTION = 16, 64
HNSW_EF_SEARCH = 300

_READY = (
    "c.document_id = ANY(ARRAY(SELECT d.id FROM documents d JOIN collections col ON col.id = d.collection_id "
    "WHERE col.name = :col AND d.status = 'ready'))"
)


def ensure_hnsw(engine: Engine, dim: int) -> None:
    """The HNSW index over vectors of `dim` dimensions (created once, then kept by every insert)."""
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(4242017)"))
        conn.execute(
            text(
                f"CREATE INDEX IF NOT EXISTS chunks_embedding_hnsw_{dim} ON chunks USING hnsw "
                f"((embedding::vector({dim})) vector_ip_ops) WITH (m = {HNSW_M}, "
                f"ef_construction = {HNSW_EF_CONSTRUCTION}) WHERE vector_dims(embedding) = {dim}"
            )
        )


def vector_literal(v: Any) -> str:
    """A vector as pgvector's text form ("[0.1,0.2]"): exact for float32 values."""
    return "[" + ",".join(repr(float(x)) for x in np.asarray(v, dtype=np.float32).ravel()) + "]"


class PgVectorIndex:
    """Inner-product search over the ready chunks of one collection; ids are chunk ids."""

    def __init__(
        self, engine: Engine, collection: str, dim: int, threshold: int = EXACT_BELOW, ef_search: int = HNSW_EF_SEARCH
    ) -> None:
        self.engine, self.collection, self.dim, self.threshold = engine, collection, dim, threshold
        self.ef_search = ef_search

    @property
    def size(self) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(text(f"SELECT COUNT(*) FROM chunks c WHERE {_READY}"), {"col": self.collection}).scalar()
                or 0
            )

    @property
    def approximate(self) -> bool:
        return self.size >= self.threshold

    def search(self, queries: Any, k: int, allowed: Iterable[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """FAISS's shape: (scores, ids), one row per query vector; a row may hold fewer than k."""
        qs = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        ids = None if allowed is None else sorted(int(i) for i in allowed)
        if ids is not None and not ids:
            return np.zeros((len(qs), 0), dtype=np.float32), np.zeros((len(qs), 0), dtype=np.int64)
        approximate = self.approximate and (ids is None or len(ids) >= self.threshold)
        sql = self._sql(approximate, ids is not None, "")
        rows_out: list[list[tuple[int, float]]] = []
        with self.engine.begin() as conn:
            self._tune(conn, approximate, k)
            for q in qs:
                params = self._params(q, k, ids)
                rows_out.append([(int(r[0]), float(r[1])) for r in conn.execute(sql, params)])
        width = max((len(r) for r in rows_out), default=0)
        scores = np.full((len(qs), width), -np.inf, dtype=np.float32)
        found = np.full((len(qs), width), -1, dtype=np.int64)
        for i, row in enumerate(rows_out):
            for j, (cid, score) in enumerate(row):
                found[i, j], scores[i, j] = cid, score
        return scores, found

    def _sql(self, approximate: bool, filtered: bool, prefix: str) -> Any:
        where = _READY + (" AND c.id = ANY(:ids)" if filtered else "")
        if approximate:
            # `+ 0` keeps the planner off the btree indexes of these columns, so the HNSW index scan
            # is the plan: with them, it fetched the whole collection by document and sorted it
            # (300 ms a query at 83,000 chunks, measured by bench/retrieval.py)
            where = where.replace("c.document_id =", "c.document_id + 0 =").replace("c.id = ANY", "c.id + 0 = ANY")
            dist = f"(c.embedding::vector({self.dim})) <#> CAST(:q AS vector({self.dim}))"
            where += f" AND vector_dims(c.embedding) = {self.dim}"
        else:
            dist = "c.embedding <#> CAST(:q AS vector)"
        return text(f"{prefix}SELECT c.id, -({dist}) AS score FROM chunks c WHERE {where} ORDER BY {dist} LIMIT :k")

    def _tune(self, conn: Any, approximate: bool, k: int) -> None:
        if approximate:
            conn.execute(text(f"SET LOCAL hnsw.ef_search = {max(self.ef_search, k)}"))
            conn.execute(text("SET LOCAL hnsw.iterative_scan = strict_order"))

    def _params(self, q: Any, k: int, ids: list[int] | None) -> dict[str, object]:
        params: dict[str, object] = {"col": self.collection, "q": vector_literal(q), "k": k}
        if ids is not None:
            params["ids"] = ids
        return params

    def plan(self, query: Any, k: int, allowed: Iterable[int] | None = None) -> str:
        """PostgreSQL's plan for the approximate query (EXPLAIN): whether the HNSW index answers it."""
        ids = None if allowed is None else sorted(int(i) for i in allowed)
        with self.engine.begin() as conn:
            self._tune(conn, True, k)
            rows = conn.execute(self._sql(True, ids is not None, "EXPLAIN "), self._params(query, k, ids))
            return "\n".join(str(r[0]) for r in rows)
