"""Search latency per mode on a collection of at least 100,000 real chunks, and the approximate
index's recall@10 and memory at 1M vectors.

Text: the R reference manual (fullrefman.pdf from Debian's r-doc-pdf) and the Python docs
(python3.11-doc's HTML). Unique chunks are embedded once; the collection is filled to the
target by adding copies of those documents (with their vectors), as the issue allows.

    python bench/retrieval.py [--chunks 100000] [--unique 20000] [--queries 200] [--approx 1000000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from ingest import ChunkSettings, SentenceTransformerEmbedder, Store, chunk_document, load_bytes
from retriever import MODES, search

REFMAN = Path("/usr/share/R/doc/manual/fullrefman.pdf")
PYDOCS = Path("/usr/share/doc/python3.11/html")
EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval" / "r-manuals-dev.jsonl"


def sources(unique: int, embedder: SentenceTransformerEmbedder) -> list[tuple[str, list, np.ndarray]]:
    """(name, chunk drafts, vectors) for real documents until `unique` chunks are reached."""
    files = [REFMAN, *sorted(PYDOCS.rglob("*.html"))]
    docs, total, t0 = [], 0, time.perf_counter()
    for f in files:
        if total >= unique:
            break
        doc = load_bytes(f.read_bytes(), f.name, max_pages=10000)
        drafts = chunk_document(doc, embedder.count_tokens, embedder.max_tokens, ChunkSettings())
        drafts = drafts[: unique - total]
        if drafts:
            docs.append((str(f.relative_to(f.parents[1])), drafts))
            total += len(drafts)
    parsed = time.perf_counter() - t0
    t0 = time.perf_counter()
    vecs = embedder.embed([d.text for _, ds in docs for d in ds], batch_size=64)
    print(
        f"parsed {len(docs)} files into {total:,} chunks in {parsed:.0f}s; embedded in {time.perf_counter() - t0:.0f}s"
    )
    out, i = [], 0
    for name, ds in docs:
        out.append((name, ds, vecs[i : i + len(ds)]))
        i += len(ds)
    return out


def queries(n: int) -> list[str]:
    qs = (
        [json.loads(line)["question"] for line in EVAL.read_text().splitlines() if line.strip()]
        if EVAL.exists()
        else []
    )
    extra = [
        "how do I open a file for reading",
        "regular expression to match digits",
        "fit a linear model",
        "sort a list by a key function",
        "convert a string to an integer",
        "read a csv file into a data frame",
        "plot a histogram",
        "what does the with statement do",
        "generate random numbers",
        "matrix multiplication",
    ]
    qs += extra
    return [qs[i % len(qs)] for i in range(n)]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, math.ceil(p * len(xs)) - 1)]


def approx_recall(n: int, dim: int, nq: int = 200) -> None:
    import faiss

    from ingest.vectors import _new_index

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = rng.standard_normal((nq, dim), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    flat = faiss.IndexFlatIP(dim)
    flat.add(x)
    _, truth = flat.search(q, 10)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    idx = _new_index(dim, True)
    idx.add_with_ids(x, np.arange(n, dtype=np.int64))
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    flat.search(q, 10)
    flat_q = (time.perf_counter() - t0) / nq * 1000
    mem = len(faiss.serialize_index(idx)) / 2**20
    print(
        f"approximate index (HNSW M=32) at {n:,} random {dim}-d vectors: build {build:.0f}s, size {mem:,.0f} MB "
        f"(exact {n * dim * 4 / 2**20:,.0f} MB), peak RSS grew "
        f"{(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024:,.0f} MB; exact search {flat_q:.2f} ms/query"
    )
    hnsw = faiss.downcast_index(idx.index)
    for ef in (64, 128, 256, 512, 1024):
        hnsw.hnsw.efSearch = ef
        t0 = time.perf_counter()
        _, got = idx.search(q, 10)
        per_q = (time.perf_counter() - t0) / nq * 1000
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, got, strict=True)])
        print(f"  efSearch {ef:>5}: recall@10 {recall:.3f} vs exact, {per_q:.2f} ms/query")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--unique", type=int, default=20_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--approx", type=int, default=1_000_000, help="vectors for the recall test (0 = skip)")
    ap.add_argument("--reuse", type=Path, help="workspace of an earlier run: measure it without rebuilding")
    args = ap.parse_args()

    emb = SentenceTransformerEmbedder()
    home = args.reuse or Path(tempfile.mkdtemp(prefix="archivist-bench-"))
    store = Store(home, emb.name, emb.dim)
    docs = sources(args.unique, emb) if not args.reuse and args.chunks else []
    total, copy, t0 = 0, 0, time.perf_counter()
    with store.writer():
        while docs and total < args.chunks:
            batch_drafts, batch_vecs = [], []
            for _name, ds, vs in docs:
                batch_drafts.extend(ds)
                batch_vecs.append(vs)
            store.add_document(
                "bench",
                name=f"corpus-copy-{copy}.txt",
                sha256=f"{copy:064d}",
                fmt="text",
                size=0,
                pages=None,
                warnings=[],
                chunks=batch_drafts,
                vectors=np.vstack(batch_vecs),
            )
            total += len(batch_drafts)
            copy += 1
    if copy:
        print(
            f"collection: {total:,} chunks ({copy} copies of {total // copy:,} unique) stored in "
            f"{time.perf_counter() - t0:.0f}s at {home}"
        )
    size = store.index("bench").size if "bench" in store.collection_names() else 0
    if not size:
        if args.approx:
            approx_recall(args.approx, emb.dim)
        return
    print(f"collection 'bench': {size:,} chunks, index {'HNSW' if store.index('bench').approximate else 'exact'}")
    qs = queries(args.queries)
    print(f"{'mode':8}{'p50 ms':>9}{'p95 ms':>9}   ({len(qs)} queries, query embedding included)")
    for mode in MODES:
        search(store, emb, ["bench"], "warm up", 5, mode=mode)
        times = []
        for q in qs:
            t = time.perf_counter()
            search(store, emb, ["bench"], q, 5, mode=mode)
            times.append((time.perf_counter() - t) * 1000)
        print(f"{mode:8}{statistics.median(times):>9.1f}{pct(times, 0.95):>9.1f}")
    if args.approx:
        approx_recall(args.approx, emb.dim)


if __name__ == "__main__":
    main()
