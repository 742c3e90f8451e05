"""CLI command bodies: parse nothing, compute nothing; call services and print."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from app.services import Services
from app.settings import Settings
from ingest.chunk import ChunkSettings
from ingest.pipeline import IngestReport, Progress, ingest_paths
from ingest.precision import ENV
from retriever.search import MODES
from runtime.errors import ArchivistError


def services(args: argparse.Namespace) -> Services:
    """The workspace's services for a command: its settings from the environment, then the flags
    (`--home`, and `--max-mb` / `--parse-timeout` where the command has them)."""
    from app.services import workspace_home

    settings = Settings.load(
        home=workspace_home(args.home),
        max_file_mb=getattr(args, "max_mb", None),
        parse_timeout_s=getattr(args, "parse_timeout", None),
    )
    return Services.create(settings=settings)


def ingest(args: argparse.Namespace) -> int:
    svc = services(args)
    bar: Any = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=0, unit="file", file=sys.stderr)
    chunks_done = pages_done = 0
    current = (0, 0)  # chunks and pages of the file in progress

    def progress(p: Progress) -> None:
        nonlocal chunks_done, pages_done, current
        if bar is None:
            return
        bar.total = p.files
        if p.stage in ("done", "failed", "unchanged"):
            chunks_done += p.chunks
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
    )
    if bar is not None:
        bar.close()
    return _print_report(report)


def _print_report(report: IngestReport) -> int:
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
    from retriever.search import search as run_search

    svc = services(args)
    if args.collection not in svc.store.collection_names():
        from runtime.errors import ArchivistError

        raise ArchivistError(f"no collection named {args.collection!r}; ingest files with --collection first")
    hits = run_search(
        svc.store, svc.embedder, [args.collection], args.query, args.k, mode=args.mode, where=_filter(args)
    )
    if args.json:
        keys = ("document", "page", "page_end", "chunk_id", "score", "text")
        print(json.dumps({"hits": [{k: h.to_json()[k] for k in keys} for h in hits]}, ensure_ascii=False))
        return 0
    for n, h in enumerate(hits, start=1):
        where = f"page {h.page}" if h.page else "-"
        print(f"[{n}] {h.document} {where} score={h.score:.3f} relevance={h.similarity:.2f}")
        print("    " + h.text[:300].replace("\n", " ") + ("..." if len(h.text) > 300 else ""))
    return 0


def _filter(args: argparse.Namespace) -> Any:
    from retriever.filters import SearchFilter
    from runtime.errors import ArchivistError

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
    from retriever.evaluate import load_questions
    from runtime.errors import ArchivistError

    modes = [m.strip() for m in args.mode.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ArchivistError(f"--mode {args.mode!r}: choose from dense, keyword, hybrid")
    questions = [q for path in args.questions for q in load_questions(Path(path))]
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
                right = {True: "right", False: "WRONG", None: "-"}[r.right]
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
        f"shown answers: sentences supported {f('supported_share')} per answer ({f('supported_sentences')} of all "
        f"sentences); answered {f('answered')} (evidence recall {f('evidence_recall')}); token F1 {f('token_f1')}\n"
        f"generated {f('generated')}, quotes fallback {f('fallback')}, refused {f('refused_answerable')} of "
        f"{s['answerable']} answerable; unanswerable refused {f('refused_unanswerable')} of {s['unanswerable']}\n"
        f"seconds per answer p50 {f('seconds_p50')}, p95 {f('seconds_p95')}; tokens {f('tokens_mean')}, "
        f"candidates {f('candidates_mean')} per answer"
    )


def _answers(args: argparse.Namespace, svc: Any, questions: Any) -> Any:
    from assistants.answer_eval import evaluate_answers
    from runtime.errors import ArchivistError

    if args.generate and not args.answers:
        raise ArchivistError("--generate goes with --answers")
    assistant = svc.library.get(args.assistant) if args.assistant else None
    if not any(q.evidence for q in questions):
        raise ArchivistError(f"{', '.join(args.questions)}: no line has an 'evidence' field, which --answers needs")

    def progress(i: int, n: int) -> None:
        if not args.json:
            print(f"\ranswering {i}/{n}", end="", file=sys.stderr, flush=True)

    result = evaluate_answers(
        svc.chat, args.collection, questions, assistant=assistant, generate=args.generate, progress=progress
    )
    if not args.json:
        print(file=sys.stderr)
    return result


def ask(args: argparse.Namespace) -> int:
    svc = services(args)
    assistant = svc.library.get(args.assistant)
    overrides = {"answer_mode": "extractive" if args.extractive else None, "grounding": args.grounding}
    stream = svc.chat.ask(assistant, args.question, **overrides)
    if args.json:
        answer = stream.result()
        keys = ("document", "page", "chunk_id", "score")
        out = {
            "answer": answer.text,
            "citations": [{k: c.to_json()[k] for k in keys} for c in answer.citations],
            **answer.details_json(),
        }
        print(json.dumps(out, ensure_ascii=False))
        return 0
    from assistants.system2 import judged_first

    if stream.tools:
        print_tools(stream.tools)
    first = judged_first(assistant.thinking, assistant.fallback, args.grounding or assistant.grounding)
    first = first and not args.extractive and bool(stream.quotes)
    if first:  # the answer is judged before it is shown: the documents' own words meanwhile
        print_quotes(stream.quotes)
        print("\n(writing the answer and checking it against the documents)\n", file=sys.stderr)
    for piece in stream:
        sys.stdout.write(piece)
        sys.stdout.flush()
    answer = stream.result()
    print()
    print_details(answer, quotes=not first)
    if answer.citations:
        print("\nSources:")
        for c in answer.citations:
            where = f", page {c.page}" if c.page else ""
            print(f"  [{c.n}] {c.document}{where} (relevance {c.similarity:.2f}){'' if c.cited else ' (not cited)'}")
    return 0


def print_tools(steps: Any, indent: str = "") -> None:
    """The tool steps: what each tool did (calculator results, pages read, model calls)."""
    print(f"{indent}Tools:", file=sys.stderr)
    for s in steps:
        mark = "" if s.ok else " (failed)"
        who = " (called by the model)" if s.by == "model" else ""
        print(f"{indent}  {s.tool}{who}: {s.card}{mark}", file=sys.stderr)
    print(file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Run a Python file with the code tool: in the sandbox, or with limits on this machine."""
    from assistants.tools.sandbox import CodeLimits, run_code, sandbox_status

    path = Path(args.file)
    try:
        code = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ArchivistError(f"{path}: cannot read it ({exc})") from exc
    if args.sandbox_only:
        ok, why = sandbox_status()
        if not ok:
            raise ArchivistError(f"{path}: not run: --sandbox-only, and {why}")
    limits = CodeLimits(timeout_s=args.timeout, memory_mb=args.memory_mb)
    step = run_code(code, trusted=True, limits=limits)
    sys.stdout.write(step.output if step.output.endswith("\n") or not step.output else step.output + "\n")
    print(f"({path.name} {step.card}, {step.seconds:.1f} s)", file=sys.stderr)
    return 0 if step.ok else 1


def print_quotes(quotes: Any, indent: str = "") -> None:
    """What the documents say: each supporting quote with its passage number, document and page."""
    print(f"\n{indent}What the documents say:")
    for q in quotes:
        where = f", page {q.page}" if q.page is not None else ""
        print(f"{indent}  [{q.passage}] \u201c{' '.join(q.text.split())}\u201d ({q.document}{where})")


def print_details(answer: Any, indent: str = "", quotes: bool = True) -> None:
    """Unsupported sentences, the supporting quotes (unless shown already) and what the checks cost."""
    from assistants.system2 import shown_label

    g = answer.grounding
    print(f"\n{indent}({shown_label(answer.shown, answer.candidates, answer.refusal_reason)})")
    if answer.action == "retried":
        print(f"{indent}(most sentences of the first answer lacked support; this is the second, stricter answer)")
    elif answer.action == "extractive-fallback":
        print(f"{indent}(two answers lacked support; showing what the documents say instead)")
    if answer.left_out:
        print(f"\n{indent}Left out, the documents do not support them ({len(answer.left_out)}):")
        for sentence in answer.left_out:
            print(f"{indent}  \u2717 {sentence}")
    if g is not None and g.unsupported:
        claims = len(g.claims)
        print(f"\n{indent}\u26a0 Not supported by the documents ({len(g.unsupported)} of {claims} sentences):")
        for s in g.unsupported:
            why = f" (not in the passages: {', '.join(s.missing)})" if s.missing else ""
            print(f"{indent}  \u2717 {' '.join(s.text.split())}{why}")
    elif g is not None and g.claims:
        print(f"\n{indent}\u2713 Every sentence is supported by the passages.")
    if quotes and answer.quotes and answer.mode != "extractive" and answer.shown != "quotes":
        print_quotes(answer.quotes, indent)
    spent = f"quotes {answer.quote_time * 1000:.0f} ms"
    if g is not None:
        spent += f", grounding check {g.seconds * 1000:.0f} ms"
    print(f"{indent}({spent})")


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


def collections(args: argparse.Namespace) -> int:
    for name, docs, chunks in services(args).store.collections():
        print(f"{name}\t{docs} documents\t{chunks} chunks")
    return 0


def assistants_list(args: argparse.Namespace) -> int:
    svc = services(args)
    entries, errors = svc.library.entries()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": e.assistant.name,
                        "description": e.assistant.description,
                        "source": e.source,
                        "path": str(e.path),
                    }
                    for e in entries
                ]
            )
        )
    else:
        for e in entries:
            print(f"{e.assistant.name}\t{e.assistant.description}\t({e.source}: {e.path})")
    for err in errors:
        print(f"warning: {err}", file=sys.stderr)
    return 0


def ui(args: argparse.Namespace) -> int:
    main = Path(__file__).with_name("main.py")
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(main),
        "--server.address",
        args.host,
        "--server.port",
        str(args.port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]
    env = dict(os.environ)
    if args.home:
        env["ARCHIVIST_HOME"] = str(Path(args.home).resolve())
    sys.stdout.flush()
    sys.stderr.flush()
    # this process becomes Streamlit (same PID): stopping `archivist ui` stops the app server, where
    # a child process would keep serving after its parent was killed
    os.execve(sys.executable, cmd, env)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.api import KeyStore, create_app, is_loopback
    from runtime.errors import ArchivistError

    svc = services(args)
    keys = KeyStore(svc.store.engine)
    active = keys.active_count()
    if not active and not is_loopback(args.host):
        raise ArchivistError(
            f"refusing to serve on {args.host} without an API key: create one with `archivist keys create NAME`, "
            "or bind to 127.0.0.1"
        )
    if not active and keys.ever_created():
        print(
            "every API key is revoked: the API refuses all requests until `archivist keys create NAME`", file=sys.stderr
        )
    elif not active:
        print("no API keys configured: the API is open to local clients only (127.0.0.1)", file=sys.stderr)
    allowed = [*args.allowed_host, *filter(None, os.environ.get("ARCHIVIST_ALLOWED_HOSTS", "").split(","))]
    app = create_app(svc, max_queue=args.max_queue, bound_host=args.host, allowed_hosts=allowed)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def _keys(args: argparse.Namespace) -> Any:
    from app.api import KeyStore

    return KeyStore(services(args).store.engine)


def keys_create(args: argparse.Namespace) -> int:
    secret = _keys(args).create(args.name, args.assistant)
    scope = ", ".join(args.assistant) if args.assistant else "all assistants"
    print(secret)
    print(f"key {args.name!r} created for {scope}; it is shown only once", file=sys.stderr)
    return 0


def keys_list(args: argparse.Namespace) -> int:
    for k in _keys(args).list():
        state = "revoked" if k.revoked else "active"
        print(f"{k.name}\t{k.hint}\t{state}\t{', '.join(k.assistants) or 'all assistants'}\t{k.created_at:%Y-%m-%d}")
    return 0


def keys_revoke(args: argparse.Namespace) -> int:
    _keys(args).revoke(args.name)
    print(f"key {args.name!r} revoked")
    return 0


def _write(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text, encoding="utf-8")
        print(f"wrote {output}", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def assistants_schema(args: argparse.Namespace) -> int:
    from assistants.schema import Assistant

    schema = Assistant.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    _write(json.dumps(schema, indent=2), args.output)
    return 0


def assistants_new(args: argparse.Namespace) -> int:
    from assistants.loader import parse_assistant

    data = {
        "name": args.name,
        "description": args.description,
        "instructions": args.instructions,
        "knowledge": {"collections": args.collection},
        # the System-2 settings are the schema's defaults; short answers are what measured best with them
        "model": {"max_tokens": 100},
    }
    path = services(args).library.save(parse_assistant(data, "arguments"))
    print(f"created {path}")
    return 0


def assistants_import(args: argparse.Namespace) -> int:
    svc = services(args)
    path = Path(args.file)
    if path.suffix.lower() == ".zip":
        from assistants.bundle import import_bundle

        assistant, results = import_bundle(
            path,
            svc.store,
            svc.embedder,
            taken=svc.library.taken,
            overwrite=args.overwrite,
            allow_download=args.allow_download,
            allow_model_path=args.allow_model_path,
        )
        report = IngestReport(results)
        svc.library.save(assistant, overwrite=args.overwrite)
        _warn_shadowing(svc, assistant.name)
        print(f"imported {assistant.name} with {len(results)} documents")
        return _print_report(report)
    assistant = svc.library.import_yaml(
        path, overwrite=args.overwrite, allow_download=args.allow_download, allow_model_path=args.allow_model_path
    )
    _warn_shadowing(svc, assistant.name)
    print(f"imported {assistant.name} into {svc.library.path_for(assistant.name)}")
    return 0


def _warn_shadowing(svc: Any, name: str) -> None:
    if svc.library.shadows_example(name):
        print(
            f"warning: {name} now hides the shipped assistant of the same name (rename it to see both)", file=sys.stderr
        )


def assistants_export(args: argparse.Namespace) -> int:
    svc = services(args)
    if args.bundle:
        from assistants.bundle import export_bundle
        from runtime.errors import ArchivistError

        if not args.output:
            raise ArchivistError("--bundle needs -o FILE.zip")
        n = export_bundle(svc.library.get_by_name(args.name), svc.store, Path(args.output))
        print(f"wrote {args.output} ({n} documents)")
        return 0
    _write(svc.library.export_yaml(args.name), args.output)
    return 0


def assistants_duplicate(args: argparse.Namespace) -> int:
    services(args).library.duplicate(args.name, args.new_name)
    print(f"duplicated {args.name} as {args.new_name}")
    return 0


def assistants_delete(args: argparse.Namespace) -> int:
    services(args).library.delete(args.name)
    print(f"deleted {args.name}")
    return 0


def chat(args: argparse.Namespace) -> int:
    svc = services(args)
    assistant = svc.library.get(args.assistant)
    conv = svc.conversations.get(args.conversation) if args.conversation else svc.conversations.create(assistant.name)
    print(f"{assistant.name}: {assistant.description}  (conversation {conv.id}; /new, /history, /exit)")
    for s in assistant.starters:
        print(f"  try: {s}")
    while True:
        try:
            line = input("\nyou> ").strip()
        except EOFError:
            print()
            return 0
        if not line:
            continue
        if line in ("/exit", "/quit"):
            return 0
        if line == "/new":
            conv = svc.conversations.create(assistant.name)
            print(f"(new conversation {conv.id})")
            continue
        if line == "/history":
            for m in svc.conversations.messages(conv.id):
                print(f"{'you' if m.role == 'user' else assistant.name}> {m.text}")
            continue
        stream = svc.conversation.ask(assistant, conv.id, line)
        if stream.tools:
            print_tools(stream.tools, indent="  ")
        sys.stdout.write(f"{assistant.name}> ")
        try:
            for piece in stream:
                sys.stdout.write(piece)
                sys.stdout.flush()
            answer = stream.result()
        except KeyboardInterrupt:  # Ctrl-C stops this answer (kept, marked stopped), not the chat
            answer = stream.stop()
            sys.stdout.write(" [stopped]")
        print()
        print_details(answer, indent="  ")
        for c in answer.citations:
            where = f", page {c.page}" if c.page else ""
            print(f"  [{c.n}] {c.document}{where}")
        t = answer.stats.time_to_first_token
        print(
            f"  (message {answer.message_id}; first token {t or 0:.2f}s, "
            f"{answer.stats.evaluated_tokens}/{answer.stats.prompt_tokens} prompt tokens evaluated)"
        )


def conversations_list(args: argparse.Namespace) -> int:
    for c in services(args).conversations.all(args.assistant):
        print(f"{c.id}\t{c.assistant}\t{c.title}\t{c.updated_at:%Y-%m-%d %H:%M}")
    return 0


def conversations_rename(args: argparse.Namespace) -> int:
    services(args).conversations.rename(args.id, args.title)
    return 0


def conversations_delete(args: argparse.Namespace) -> int:
    services(args).conversations.delete(args.id)
    print(f"deleted conversation {args.id}")
    return 0


def conversations_export(args: argparse.Namespace) -> int:
    _write(services(args).conversations.export_markdown(args.id), args.output)
    return 0


def feedback(args: argparse.Namespace) -> int:
    services(args).conversations.feedback(args.message_id, 1 if args.vote == "up" else -1, args.comment)
    print("thanks: feedback stored")
    return 0


def doctor(args: argparse.Namespace) -> int:
    """What this machine is and what Archivist chose on it: the encoder's precision and its speeds."""
    from ingest.precision import cpu_model, for_this_machine, library_versions, setting
    from runtime.cpu import physical_cores

    svc = services(args)
    if args.calibrate:
        texts = calibration_texts(svc)
        print(f"measuring the encoder at each precision on {len(texts)} chunks ...", file=sys.stderr)
        emb = svc.embedder
        if not hasattr(emb, "calibrate"):
            raise ArchivistError("this workspace's embedder has no precision to calibrate")
        emb.calibrate(texts)
    here = for_this_machine(svc.home, svc.store.embedder)
    chosen = setting()
    report: dict[str, Any] = {
        "workspace": str(svc.home),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "physical_cores": physical_cores(),
        "libraries": library_versions(),
        "embedder": svc.store.embedder,
        "precision_setting": chosen,
        "precision": chosen if chosen != "auto" else (here.chosen if here else None),
        "calibration": asdict(here) if here else None,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"workspace    {report['workspace']}")
    print(f"CPU          {report['cpu']}, {report['cores']} logical / {report['physical_cores']} physical cores")
    print("libraries    " + ", ".join(f"{k} {v}" for k, v in report["libraries"].items()))
    print(f"embedder     {report['embedder']}")
    if chosen != "auto":
        print(f"precision    {chosen} (set by {ENV}; calibration not used)")
    elif here:
        print(f"precision    {here.summary()}")
        print("             mean cosine to float32: " + ", ".join(f"{p} {c:.4f}" for p, c in here.cosine.items()))
    else:
        print("precision    not measured on this machine yet: the first ingest measures it (or run doctor --calibrate)")
    return 0


def calibration_texts(svc: Any, n: int = 64) -> list[str]:
    """Real chunks from the workspace; with none yet, passages of Archivist's own docs."""
    texts: list[str] = svc.store.sample_texts(n)
    if len(texts) < n:
        from app.services import REPO_DOCS

        words = " ".join(p.read_text() for p in sorted(REPO_DOCS.glob("*.md"))).split() * 4
        texts += [" ".join(words[i : i + 90]) for i in range(0, len(words), 90)][: n - len(texts)]
    return texts


def arena(args: argparse.Namespace) -> int:
    """Blind battles between assistants in the terminal, the automatic arena, the leaderboard, export."""
    svc = services(args)
    first = args.names[0]
    if first == "leaderboard":
        return _arena_leaderboard(args, svc)
    if first == "export":
        lines = list(svc.arena_store.export_jsonl("auto" if args.auto else None))
        _write("\n".join(lines) + ("\n" if lines else ""), args.output)
        if args.output:
            print(f"{len(lines)} battles written to {args.output}", file=sys.stderr)
        return 0
    if "all" in args.names:
        entries, _ = svc.library.entries()
        chosen = [e.assistant for e in entries]
    else:
        chosen = [svc.library.get(n) for n in args.names]
    if len({a.name for a in chosen}) < 2:
        raise ArchivistError("name two or more different assistants (or all)")
    from retriever.evaluate import load_questions

    questions = [q for path in args.questions or [] for q in load_questions(Path(path))]
    if args.limit:
        questions = questions[: args.limit]
    if args.auto:
        import time

        from tqdm import tqdm

        t0 = time.perf_counter()
        bar = tqdm(total=0, unit="answer", disable=args.json, file=sys.stderr)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        battles = svc.arena.auto(chosen, questions, progress=progress)
        bar.close()
        spent = time.perf_counter() - t0
        if not args.json:
            print(f"{len(battles)} battles over {len(questions)} questions in {spent:.0f} s", file=sys.stderr)
        return _arena_leaderboard(args, svc, auto=True, seconds=spent, used=chosen)
    return _arena_interactive(svc, chosen, questions)


def _arena_interactive(svc: Any, chosen: list[Any], questions: list[Any]) -> int:
    from assistants.arena import VOTE_LABELS

    keys = {"a": "a", "b": "b", "t": "tie", "x": "bad"}
    pending = iter(questions)
    voted = 0
    while True:
        q = next(pending, None)
        if q is None and questions:
            break
        text = q.question if q is not None else input("\nQuestion (empty to stop): ").strip()
        if not text:
            break
        print(f"\nQ: {text}\n(both assistants are answering; they are shown together)", file=sys.stderr)
        battle = svc.arena.battle(chosen, text, question_id=q.id if q else None, evidence=q.evidence if q else None)
        for label, side in (("A", battle.a), ("B", battle.b)):
            print(f"\n\u2500\u2500 Assistant {label} \u2500\u2500\n{side.text}")
            unsupported = [s["text"] for s in side.details.get("sentences", []) if not s.get("supported", True)]
            for s in unsupported:
                print(f"  \u26a0 not supported by the documents: {' '.join(s.split())}")
            for c in side.citations:
                where = f", page {c['page']}" if c.get("page") else ""
                print(f"  [{c['n']}] {c['document']}{where}")
        choice = ""
        while choice not in (*keys, "s", "q"):
            prompt = ", ".join(f"[{k}] {VOTE_LABELS[v]}" for k, v in keys.items())
            choice = input(f"\nYour vote: {prompt}, [s] skip, [q] quit: ").strip().lower()[:1]
        if choice == "q":
            break
        if choice == "s":
            continue
        battle = svc.arena.vote(battle.id, keys[choice])
        voted += 1
        print(f"A was {battle.a.name}, B was {battle.b.name}.")
    print(f"\n{voted} vote(s) recorded; `archivist arena leaderboard` shows the ratings.", file=sys.stderr)
    return 0


def _arena_leaderboard(
    args: argparse.Namespace, svc: Any, auto: bool = False, seconds: float | None = None, used: Sequence[Any] = ()
) -> int:
    from assistants.arena import config_hash, leaderboard
    from assistants.ratings import MIN_VOTES

    mode = "auto" if auto or args.auto else "human"
    entries, _ = svc.library.entries()
    current = {e.assistant.name: config_hash(e.assistant) for e in entries}
    current.update({a.name: config_hash(a) for a in used})  # assistants given as YAML paths
    rows = leaderboard(svc.arena_store.battles(mode), current)
    if args.json:
        out: dict[str, Any] = {"mode": mode, "rows": [r.to_json() for r in rows]}
        if seconds is not None:
            out["seconds"] = round(seconds, 1)
        print(json.dumps(out, indent=2))
        return 0
    if not rows:
        print(f"No {mode} battles yet." + (" Run `archivist arena A B` to vote." if mode == "human" else ""))
        return 0
    print(f"{mode} leaderboard (Bradley-Terry, Elo scale, 95% intervals; ranks by interval overlap)")
    print(
        f"{'rank':>4}  {'assistant':32}{'rating':>8}{'95% interval':>16}{'votes':>7}{'win rate':>10}{'evidence':>10}{'supported':>11}"
    )
    for r in rows:
        who = f"{r.name} @{r.hash[:7]}" + ("" if r.current else " (edited/deleted)")
        if r.shown:
            rating = f"{r.rating:>8.0f}{f'{r.lower:.0f}-{r.upper:.0f}':>16}"
        else:
            rating = f"{'-':>8}{f'after {MIN_VOTES} votes':>16}"
        ev = "-" if r.evidence_recall is None else f"{r.evidence_recall:.2f}"
        sup = "-" if r.supported is None else f"{r.supported:.2f}"
        mark = " provisional" if r.shown and r.provisional else ""
        print(f"{r.rank:>4}  {who:32}{rating}{r.votes:>7}{r.win_rate:>10.2f}{ev:>10}{sup:>11}{mark}")
    return 0
