"""A corpus of real, unique chunks with their MiniLM vectors for the retrieval benches, built once
and kept outside the repository (~/.cache/archivist/bench/).

Text: Debian's documentation packages, parsed and chunked by Archivist's own pipeline: the R
reference manual and the other R manuals (r-doc-pdf), the Python docs (python3.11-doc), the
PostgreSQL 15 manual (postgresql-doc-15), Perl's pod pages (perl-doc, read as plain text), Git's
documentation (git-doc) and Apache's English manual (apache2-doc). Every chunk is embedded once;
a chunk whose text another already has is left out.

    python bench/corpus.py [--chunks 100000]      # builds (or reports) the cached corpus
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from ingest import ChunkSettings, SentenceTransformerEmbedder, chunk_document, load_bytes

CACHE = Path(os.environ.get("ARCHIVIST_BENCH_CACHE", Path.home() / ".cache" / "archivist" / "bench"))
SOURCES = [
    ("r-refman", Path("/usr/share/R/doc/manual/fullrefman.pdf"), "*"),
    ("python", Path("/usr/share/doc/python3.11/html"), "*.html"),
    ("postgresql", Path("/usr/share/doc/postgresql-doc-15/html"), "*.html"),
    ("perl", Path("/usr/share/perl/5.36/pod"), "*.pod"),
    ("r-manuals", Path("/usr/share/R/doc/manual"), "R-*.pdf"),
    ("git", Path("/usr/share/doc/git-doc"), "*.html"),
    ("apache", Path("/usr/share/doc/apache2-doc/manual/en"), "*.html"),
]


def files() -> list[tuple[str, Path]]:
    """(source, file) in a fixed order, every source present on this machine."""
    out = []
    for source, root, pattern in SOURCES:
        if root.is_file():
            out.append((source, root))
        elif root.is_dir():
            out.extend((source, f) for f in sorted(root.rglob(pattern)) if "_sources" not in f.parts)
    return out


def build(n: int, embedder: SentenceTransformerEmbedder) -> dict[str, np.ndarray]:
    """Parse and chunk files until `n` unique chunks, embed them; arrays: text, document, page, vectors."""
    texts, docs, pages, seen = [], [], [], set()
    t0 = time.perf_counter()
    for source, f in files():
        if len(texts) >= n:
            break
        name = f.name + (".txt" if f.suffix == ".pod" else "")
        try:
            doc = load_bytes(f.read_bytes(), name, max_pages=10_000)
        except Exception as exc:  # a file the loaders refuse is left out, named
            print(f"  skipped {f}: {exc}", file=sys.stderr)
            continue
        for d in chunk_document(doc, embedder.count_tokens, embedder.max_tokens, ChunkSettings()):
            key = " ".join(d.text.split())
            if key in seen or len(key) < 40:
                continue
            seen.add(key)
            texts.append(d.text)
            docs.append(f"{source}/{f.relative_to(f.parents[0])}")
            pages.append(d.page if d.page is not None else -1)
            if len(texts) >= n:
                break
    print(f"parsed and chunked {len(texts):,} unique chunks in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    t0 = time.perf_counter()
    vectors = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    step = 4096
    for at in range(0, len(texts), step):
        vectors[at : at + step] = embedder.embed(texts[at : at + step], batch_size=64)
        done = min(at + step, len(texts))
        rate = done / (time.perf_counter() - t0)
        print(f"  embedded {done:,}/{len(texts):,} ({rate:.0f} chunks/s)", file=sys.stderr, flush=True)
    return {
        "text": np.array(texts, dtype=object),
        "document": np.array(docs),
        "page": np.array(pages),
        "vectors": vectors,
    }


def load(n: int, embedder: SentenceTransformerEmbedder | None = None) -> dict[str, np.ndarray]:
    """The cached corpus of `n` chunks, built on first use."""
    path = CACHE / f"corpus-{n}.npz"
    if path.exists():
        with np.load(path, allow_pickle=True) as z:
            return {k: z[k] for k in z.files}
    corpus = build(n, embedder or SentenceTransformerEmbedder())
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **corpus)
    tmp.replace(path)
    return corpus


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=100_000)
    args = ap.parse_args()
    corpus = load(args.chunks)
    sources = {}
    for d in corpus["document"]:
        sources[d.split("/", 1)[0]] = sources.get(d.split("/", 1)[0], 0) + 1
    print(f"{len(corpus['text']):,} chunks at {CACHE}: " + ", ".join(f"{k} {v:,}" for k, v in sources.items()))


if __name__ == "__main__":
    main()
