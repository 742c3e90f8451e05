"""Commands that answer: ask, chat, run (the code tool), conversations and feedback."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from app.commands.base import services, where_words, write_out
from runtime.errors import ArchivistError


def _question(args: argparse.Namespace) -> str:
    """The question typed, or heard in `--audio` (shown before the answer)."""
    if bool(args.question) == bool(args.audio):
        raise ArchivistError("ask: give the question, or --audio FILE with it spoken (one of the two)")
    if not args.audio:
        return str(args.question)
    from pathlib import Path

    from ingest.audio import transcribe
    from ingest.errors import IngestError

    path = Path(args.audio)
    try:
        text = " ".join(s.text for s in transcribe(path.read_bytes(), path.name))
    except OSError as exc:
        raise ArchivistError(f"{path}: {exc.strerror or exc}") from None
    except IngestError as exc:
        raise ArchivistError(str(exc)) from None
    if not text.strip():
        raise ArchivistError(f"{path.name}: no speech was heard in it")
    print(f"(heard: {text})", file=sys.stderr)
    return text


def _spoken(args: argparse.Namespace, text: str) -> None:
    if args.speak:
        from pathlib import Path

        from runtime.speech import aloud, say

        speech = say(aloud(text))
        Path(args.speak).write_bytes(speech.wav)
        print(f"(wrote {args.speak}: {speech.seconds:.1f} s of speech)", file=sys.stderr)


def ask(args: argparse.Namespace) -> int:
    svc = services(args)
    assistant = svc.library.get(args.assistant)
    overrides = {
        "answer_mode": "extractive" if args.extractive else None,
        "grounding": args.grounding,
        "seed": args.seed,
    }
    stream = svc.chat.ask(assistant, _question(args), **overrides)
    if args.json:
        answer = stream.result()
        _spoken(args, answer.text)
        keys = ("document", "page", "chunk_id", "score", "ocr", "seconds")
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
            where = f", {w}" if (w := where_words(c.page, c.seconds)) else ""
            seen = f", read from an image (confidence {c.ocr:.2f})" if c.ocr is not None else ""
            print(
                f"  [{c.n}] {c.document}{where}{seen} (relevance {c.similarity:.2f}){'' if c.cited else ' (not cited)'}"
            )
    _spoken(args, answer.text)
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
            where = f", {w}" if (w := where_words(c.page, c.seconds)) else ""
            seen = f", read from an image (confidence {c.ocr:.2f})" if c.ocr is not None else ""
            print(f"  [{c.n}] {c.document}{where}{seen}")
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
    write_out(services(args).conversations.export_markdown(args.id), args.output)
    return 0


def feedback(args: argparse.Namespace) -> int:
    services(args).conversations.feedback(args.message_id, 1 if args.vote == "up" else -1, args.comment)
    print("thanks: feedback stored")
    return 0
