"""Commands over collections: ingest, search, eval, documents, delete, reindex, collections."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from app.commands.base import services, where_words
from ingest.chunk import ChunkSettings
from ingest.pipeline import IngestReport, Progress, ingest_paths
from retriever.search import MODES
from runtime.errors import ArchivistError


def ingest(args: argparse.Namespace) -> int:
    from ingest.worker import prestart

    prestart()  # the parser process starts while the embedder loads
    svc = services(args)
    bar: Any = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=0, unit="file", file=sys.stderr)
    chunks_done = pages_done = 0
    current = (0, 0)  # chunks embedded and pages read of the file (or group of small files) in progress

    def progress(p: Progress) -> None:
        nonlocal chunks_done, pages_done, current
        if bar is None:
            return
        bar.total = p.files
        if p.stage in ("done", "failed", "unchanged"):
            chunks_done += p.chunks
            if p.stage == "done":
                # small files are embedded as a group and reported done one by one: what is left
                # of the group's count stays in progress, so the count never goes back
                left = current[0] - p.chunks
                if left > 0:
                    current = (left, current[1])
                else:
                    pages_done += current[1]
                    current = (0, 0)
            bar.update(1)
        elif p.stage == "embedding":
            current = (p.chunks, p.pages)
        chunks = chunks_done + current[0]
        rate = chunks / max(bar.format_dict["elapsed"], 1e-9)
        bar.set_postfix_str(f"{p.name} pages={pages_done + current[1]} chunks={chunks} ({rate:.0f} chunks/s)")

    report = ingest_paths(
        args.paths,
        args.collection,
        svc.store,
        svc.embedder,
        chunking=ChunkSettings(args.chunk_tokens, args.overlap_tokens),
        limits=dataclasses.replace(
            svc.settings.ingest_limits(),
            password=args.password,
            hidden_text="keep" if args.keep_hidden_text else "drop",
        ),
        progress=progress,
        exclude=args.exclude,
    )
    if bar is not None:
        bar.close()
    return print_report(report)


def print_report(report: IngestReport) -> int:
    for r in report.results:
        if r.status == "failed":
            print(f"error: {r.error}", file=sys.stderr)
        else:
            pages = f", {r.pages} pages" if r.pages else ""
            print(f"{r.status}: {r.name or Path(r.path).name} ({r.chunks} chunks{pages})")
            for w in r.warnings:
                print(f"  warning: {w}")
    ok = len(report.results) - len(report.failed)
    print(f"{ok} of {len(report.results)} files ingested", file=sys.stderr)
    return 1 if report.failed else 0


def search(args: argparse.Namespace) -> int:
    svc = services(args)
    if args.collection not in svc.store.collection_names():
        from runtime.errors import ArchivistError

        raise ArchivistError(f"no collection named {args.collection!r}; ingest files with --collection first")
    hits = svc.search([args.collection], args.query, args.k, mode=args.mode, where=_filter(args))
    if args.json:
        keys = ("document", "page", "page_end", "chunk_id", "score", "text", "ocr", "seconds")
        print(json.dumps({"hits": [{k: h.to_json()[k] for k in keys} for h in hits]}, ensure_ascii=False))
        return 0
    for n, h in enumerate(hits, start=1):
        where = where_words(h.page, h.seconds) or "-"
        seen = f" (read from an image, confidence {h.ocr:.2f})" if h.ocr is not None else ""
        print(f"[{n}] {h.document} {where}{seen} score={h.score:.3f} relevance={h.similarity:.2f}")
        print("    " + h.text[:300].replace("\n", " ") + ("..." if len(h.text) > 300 else ""))
    return 0


def verify(args: argparse.Namespace) -> int:
    """Each sentence of the claim against the collection; exit 1 when any is not supported."""
    from retriever.claims import verify_text
    from runtime.errors import ArchivistError

    svc = services(args)
    if args.collection not in svc.store.collection_names():
        raise ArchivistError(f"no collection named {args.collection!r}; ingest files with --collection first")
    try:
        checks = verify_text(svc.store, svc.embedder, [args.collection], args.claim, args.k)
    except ValueError as exc:
        raise ArchivistError(f"claim: {exc}") from None
    if args.json:
        print(json.dumps({"claims": [c.to_json() for c in checks]}, ensure_ascii=False))
        return 0 if all(c.verdict.supported for c in checks) else 1
    for c in checks:
        mark = {"supported": "\u2713", "contradicted": "\u2717"}.get(c.verdict.label, "?")
        print(f"{mark} {c.verdict.label}: {c.verdict.claim}")
        if c.sentence is not None:
            where = f", page {c.page}" if c.page is not None else ""
            print(f"    {'says' if c.verdict.supported else 'closest'}: \u201c{c.sentence}\u201d ({c.document}{where})")
        if c.verdict.reason:
            print(f"    why: {c.verdict.reason}")
    return 0 if all(c.verdict.supported for c in checks) else 1


def _filter(args: argparse.Namespace) -> Any:
    from retriever.filters import SearchFilter

    page_from = page_to = None
    if args.pages:
        lo, _, hi = args.pages.partition("-")
        try:
            page_from = int(lo) if lo else None
            page_to = int(hi) if hi else (page_from if not _ else None)
        except ValueError:
            raise ArchivistError(f"--pages {args.pages!r}: expected N, N-M, N- or -M") from None
    return SearchFilter(tuple(args.document), page_from, page_to)


def evaluate(args: argparse.Namespace) -> int:
    from retriever.evaluate import evaluate as run_eval
    from retriever.evaluate import load_questions, with_keys

    modes = [m.strip() for m in args.mode.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ArchivistError(f"--mode {args.mode!r}: choose from dense, keyword, hybrid")
    questions = [q for path in args.questions for q in load_questions(Path(path))]
    for keys in args.keys:
        questions = with_keys(questions, Path(keys))
    svc = services(args)
    results = [run_eval(svc.store, svc.embedder, args.collection, questions, m, args.k) for m in modes]  # type: ignore[arg-type]
    answers = _answers(args, svc, questions) if args.answers else None
    if args.json:
        out: dict[str, Any] = {"questions": len(questions), "results": [r.to_json() for r in results]}
        if answers is not None:
            out["answers"] = answers.to_json()
        print(json.dumps(out, ensure_ascii=False))
        return 0
    print(f"{len(questions)} questions, collection {args.collection}")
    print(f"{'mode':8}{'hit@1':>8}{'hit@5':>8}{'MRR':>8}{'nDCG@10':>9}{'p50 ms':>9}{'p95 ms':>9}")
    for r in results:
        print(
            f"{r.mode:8}{r.hit_at_1:>8.3f}{r.hit_at_5:>8.3f}{r.mrr:>8.3f}{r.ndcg_at_10:>9.3f}"
            f"{r.p50_ms:>9.1f}{r.p95_ms:>9.1f}"
        )
    if answers is not None:
        print(f"\nanswers ({'generated' if args.generate else 'extractive'}):")
        for r in answers.rows:
            mark = {True: "evidence in quotes", False: "evidence NOT in quotes", None: "no evidence given"}
            extra = f", {r.supported_share:.0%} of sentences supported" if r.supported_share is not None else ""
            if args.generate:
                right = {True: "right", False: "WRONG", None: "-"}[r.right if r.keys_named is None else r.keys_named]
                recall = f", recall {r.evidence_recall:.2f}" if r.evidence_recall is not None else ""
                extra += f", shown {r.shown}{recall}, {r.seconds:.1f} s, {right}"
            print(f"  {r.id:16} {mark[r.evidence_in_quotes]}, quotes {r.quote_ms:.0f} ms{extra}")
        print(
            f"evidence inside the supporting quotes: {answers.evidence_rate:.3f} "
            f"({round(answers.evidence_rate * answers.with_evidence)}/{answers.with_evidence}); "
            f"median time the quotes add: {answers.median_quote_ms:.0f} ms"
        )
        if answers.summary:
            _print_summary(answers.summary)
    return 0


def _print_summary(s: dict[str, Any]) -> None:
    def f(key: str) -> str:
        v = s.get(key)
        return "n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    print(
        f"right (names every key term) {f('right')} of {s['keyed']} with keys; median words before the quotes "
        f"{f('words_p50')}; cut off {s['cut_off']}; with debris {s['debris']}"
    )
    print(
        f"shown answers: sentences supported {f('supported_share')} per answer ({f('supported_sentences')} of all "
        f"sentences); answered {f('answered')} (evidence recall {f('evidence_recall')}); token F1 {f('token_f1')}\n"
        f"generated {f('generated')}, quotes fallback {f('fallback')}, refused {f('refused_answerable')} of "
        f"{s['answerable']} answerable; unanswerable refused {f('refused_unanswerable')} of {s['unanswerable']}\n"
        f"seconds per answer p50 {f('seconds_p50')}, p95 {f('seconds_p95')}; tokens {f('tokens_mean')}, "
        f"candidates {f('candidates_mean')} per answer"
    )


def _answers(args: argparse.Namespace, svc: Any, questions: Any) -> Any:
    from assistants.answer_eval import evaluate_answers

    if args.generate and not args.answers:
        raise ArchivistError("--generate goes with --answers")
    assistant = svc.library.get(args.assistant) if args.assistant else None
    if not any(q.evidence for q in questions):
        raise ArchivistError(f"{', '.join(args.questions)}: no line has an 'evidence' field, which --answers needs")

    def progress(i: int, n: int) -> None:
        if not args.json:
            print(f"\ranswering {i}/{n}", end="", file=sys.stderr, flush=True)

    result = evaluate_answers(
        svc.chat,
        args.collection,
        questions,
        assistant=assistant,
        generate=args.generate,
        progress=progress,
        seed=None if args.seed < 0 else args.seed,
    )
    if not args.json:
        print(file=sys.stderr)
    return result


def documents(args: argparse.Namespace) -> int:
    svc = services(args)
    svc.store.recover_if_idle()  # an ingest the app was running when it stopped shows as failed
    docs = svc.store.documents(args.collection)
    running = svc.store.in_progress(args.collection)
    if args.json:
        rows = [{**d.__dict__, "created_at": d.created_at.isoformat()} for d in docs]
        rows += [{"collection": c, "name": n, "status": "ingesting", "size": size} for c, n, size in running]
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    for c, n, _size in running:
        print(f"{c}\t{n}\tingesting")
    for d in docs:
        pages = d.pages if d.pages is not None else "-"
        print(f"{d.collection}\t{d.name}\t{d.status}\tpages={pages}\tchunks={d.chunks}\t{d.created_at:%Y-%m-%d %H:%M}")
        for w in d.warnings:
            print(f"\twarning: {w}")
        if d.error:
            print(f"\terror: {d.error}")
    return 0


def delete(args: argparse.Namespace) -> int:
    n = services(args).store.delete_document(args.collection, args.document)
    print(f"deleted {args.document} ({n} version(s)) from {args.collection}")
    return 0


def reindex(args: argparse.Namespace) -> int:
    n = services(args).store.reindex(args.collection)
    print(f"{args.collection}: index rebuilt with {n} vectors")
    return 0


def migrate(args: argparse.Namespace) -> int:
    """Copy the workspace's database into a PostgreSQL server, then check counts and a search."""
    from app.migrate import first_passage
    from app.migrate import migrate as copy_all
    from ingest.store import Store

    svc = services(args)
    source = svc.store
    if source.server:
        raise ArchivistError("this workspace already uses a server database; migrate copies a workspace's SQLite file")
    target = Store(svc.home, source.embedder, source.dim, args.to)
    last: dict[str, int] = {}

    def progress(table: str, rows: int) -> None:
        if not args.quiet and rows - last.get(table, 0) >= 10_000:
            print(f"  {table}: {rows:,} rows", file=sys.stderr)
            last[table] = rows

    report = copy_all(source, target, check=first_passage(svc.embedder), progress=progress)
    for table, n in report.rows.items():
        print(f"{table}\t{n} rows")
    print(
        f"checked: row counts of {len(report.rows)} tables; the same first passage in {len(report.searches)} collection(s)"
    )
    print("use it with --database-url or ARCHIVIST_DATABASE_URL (the workspace's SQLite file is left as it was)")
    return 0


def worker(args: argparse.Namespace) -> int:
    """Take ingest jobs from the server database until stopped (Ctrl-C or SIGTERM: the job under way is finished)."""
    import signal
    import threading

    from ingest.jobs import worker_name

    svc = services(args)
    queue = svc.jobs
    queue.lease_s = args.lease
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    name = worker_name()
    svc.embedder  # noqa: B018  (loaded before the first job, so a job's lease never waits on it)
    print(f"worker {name}: taking ingest jobs from {svc.store.describe()}", file=sys.stderr, flush=True)
    done = queue.run(name, svc.add_document, stop, poll_s=args.poll, on_job=lambda line: print(line, flush=True))
    print(f"worker {name}: stopped after {done} job(s)", file=sys.stderr)
    return 0


def jobs(args: argparse.Namespace) -> int:
    """The newest ingest jobs of the server database."""
    for j in services(args).jobs.jobs(limit=args.limit):
        detail = j.error if j.status == "failed" else f"{j.chunks} chunks" + (f", {j.pages} pages" if j.pages else "")
        print(f"{j.id}\t{j.status}\t{j.stage}\t{j.collection}\t{j.name}\t{detail}\t{j.worker}")
    return 0


def collections(args: argparse.Namespace) -> int:
    for name, docs, chunks in services(args).store.collections():
        print(f"{name}\t{docs} documents\t{chunks} chunks")
    return 0


def collections_rename(args: argparse.Namespace) -> int:
    svc = services(args)
    stuck = svc.rename_collection(args.old, args.new)
    print(f"renamed collection {args.old} to {args.new}")
    for name in stuck:
        print(
            f"warning: the shipped assistant {name} still searches {args.old}; duplicate it to change it",
            file=sys.stderr,
        )
    return 0


def collections_delete(args: argparse.Namespace) -> int:
    svc = services(args)
    if args.name not in svc.store.collection_names():
        raise ArchivistError(f"no collection named {args.name!r}")
    docs = len(svc.store.documents(args.name))
    users = svc.collection_users(args.name)
    if not args.yes:
        print(f"would delete collection {args.name} with its {docs} document(s); run again with --yes to delete it")
        if users:
            print(f"assistants that search it: {', '.join(users)}")
        return 1
    svc.store.delete_collection(args.name)
    print(f"deleted collection {args.name} and its {docs} document(s)")
    if users:
        print(f"warning: {', '.join(users)} still name {args.name} among their collections", file=sys.stderr)
    return 0
