"""The `archivist` command line. Commands call the same services as the UI and the API."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from app.cli_intake import intake_commands
from retriever.search import MODES
from runtime.errors import ArchivistError


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from app.logs import configure
    from app.services import workspace_home

    configure(workspace_home(args.home), verbose=args.verbose)
    try:
        return int(args.func(args) or 0)
    except ArchivistError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    from app import commands

    p = argparse.ArgumentParser(prog="archivist", description="Private assistants that answer from your documents.")
    p.add_argument("--home", help="workspace folder (default: $ARCHIVIST_HOME or ~/.archivist)")
    p.add_argument(
        "--database-url",
        help="PostgreSQL server (with pgvector) that holds the documents, vectors and full text, "
        "e.g. postgresql+psycopg://user:password@host/archivist (default: $ARCHIVIST_DATABASE_URL, "
        "else the SQLite file in the workspace); needs `pip install archivist[server]`",
    )
    p.add_argument(
        "--verbose", "-v", action="store_true", help="log what happens (model loads, requests) to stderr too"
    )
    sub = p.add_subparsers(metavar="COMMAND")
    for add in (
        intake_commands,
        _knowledge_commands,
        _answer_commands,
        _assistant_commands,
        _system_commands,
        _backup_commands,
    ):
        add(sub, commands)
    return p


def _knowledge_commands(sub: Any, commands: Any) -> None:
    """search, verify, documents, delete, reindex, migrate, worker, jobs, collections"""

    c = sub.add_parser("search", help="show the passages a query retrieves")
    c.add_argument("collection")
    c.add_argument("query")
    c.add_argument("--k", type=int, default=5)
    c.add_argument("--mode", choices=MODES, default="hybrid")
    c.add_argument("--document", action="append", default=[], help="only this document (repeatable)")
    c.add_argument("--pages", help="page range, e.g. 10-20")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=commands.search)

    c = sub.add_parser("verify", help="check a claim against a collection: supported, contradicted or not found")
    c.add_argument("collection")
    c.add_argument("claim", help="a sentence (or a few: each is checked on its own)")
    c.add_argument("--k", type=int, default=5, help="passages searched for the claim")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=commands.verify)

    _eval_command(sub, commands)

    c = sub.add_parser("documents", help="list documents with status and warnings")
    c.add_argument("collection", nargs="?")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=commands.documents)

    c = sub.add_parser("delete", help="delete a document from a collection")
    c.add_argument("collection")
    c.add_argument("document", help="file name as listed by `archivist documents`")
    c.set_defaults(func=commands.delete)

    c = sub.add_parser("reindex", help="rebuild a collection's vector index from the catalog")
    c.add_argument("collection")
    c.set_defaults(func=commands.reindex)

    c = sub.add_parser("migrate", help="copy this workspace's documents, vectors, conversations and keys to PostgreSQL")
    c.add_argument(
        "--to", required=True, metavar="URL", help="an empty database: postgresql+psycopg://user:password@host/name"
    )
    c.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    c.set_defaults(func=commands.migrate)

    c = sub.add_parser("worker", help="take ingest jobs from the server database (run one or more per machine)")
    c.add_argument("--lease", type=float, default=60.0, help="seconds a job stays this worker's without a renewal")
    c.add_argument("--poll", type=float, default=1.0, help="seconds between looks for a job when there is none")
    c.set_defaults(func=commands.worker)

    c = sub.add_parser("jobs", help="list the server database's newest ingest jobs")
    c.add_argument("--limit", type=int, default=50)
    c.set_defaults(func=commands.jobs)

    c = sub.add_parser("collections", help="list collections (or rename or delete one)")
    c.set_defaults(func=commands.collections)
    actions = c.add_subparsers(metavar="ACTION")
    r = actions.add_parser("rename", help="rename a collection; the workspace's assistants that search it follow")
    r.add_argument("old")
    r.add_argument("new")
    r.set_defaults(func=commands.collections_rename)
    r = actions.add_parser("delete", help="delete a collection with all its documents, vectors and sources")
    r.add_argument("name")
    r.add_argument("--yes", action="store_true", help="do it (without --yes: say what would be deleted)")
    r.set_defaults(func=commands.collections_delete)


def _backup_commands(sub: Any, commands: Any) -> None:
    c = sub.add_parser("backup", help="write the whole workspace into one archive, also while it is in use")
    c.add_argument("-o", "--output", required=True, metavar="FILE", help="the archive to write (.tar.gz)")
    c.set_defaults(func=commands.backup)
    c = sub.add_parser("restore", help="bring a backup back into an empty workspace (--home) and check it")
    c.add_argument("file", metavar="FILE")
    c.set_defaults(func=commands.restore)


def _eval_command(sub: Any, commands: Any) -> None:
    """archivist eval: retrieval, quotes and answers scored on question sets."""
    c = sub.add_parser("eval", help="score retrieval (and answers) on JSONL question sets")
    c.add_argument("questions", metavar="QA.jsonl", nargs="+", help="one or more question sets, read as one")
    c.add_argument("--collection", "-c", required=True)
    c.add_argument("--mode", default="dense,keyword,hybrid", help="one or more of dense,keyword,hybrid")
    c.add_argument("--k", type=int, default=10)
    c.add_argument(
        "--answers",
        action="store_true",
        help="also check, per question, whether a supporting quote contains the set's evidence",
    )
    c.add_argument(
        "--generate",
        action="store_true",
        help="with --answers: answer as ASSISTANT would (model, context, decoding, thinking, fallback) and measure "
        "support, evidence recall, token F1, refusals, seconds and tokens",
    )
    c.add_argument("--assistant", help="with --answers: use this assistant's retrieval and model settings")
    c.add_argument(
        "--keys",
        action="append",
        default=[],
        help="JSONL of {id, keys}: the terms a right answer names, for questions whose set lacks them (repeatable)",
    )
    c.add_argument(
        "--seed",
        type=int,
        default=0,
        help="with --generate: the sampling seed of every question, so a run repeats (default 0; -1: the assistant's "
        "model.seed, unseeded without one)",
    )
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=commands.evaluate)


def _answer_commands(sub: Any, commands: Any) -> None:
    """ask, run, chat, conversations, feedback"""
    c = sub.add_parser("ask", help="ask an assistant one question")
    c.add_argument("assistant", help="assistant name or YAML file")
    c.add_argument("question", nargs="?", help="the question (or --audio)")
    c.add_argument("--audio", metavar="FILE", help="the question spoken in a recording (transcribed first)")
    c.add_argument("--speak", metavar="WAV", help="also write the answer, spoken, to this WAV file")
    c.add_argument("--json", action="store_true", help="answer, citations, quotes and per-sentence support as JSON")
    c.add_argument(
        "--extractive", action="store_true", help="answer with the supporting quotes only (no model is loaded)"
    )
    c.add_argument(
        "--grounding",
        choices=["off", "mark", "retry"],
        help="override the assistant's grounding check for this question",
    )
    c.add_argument("--seed", type=int, help="sampling seed: the same question and seed give the same answer")
    c.set_defaults(func=commands.ask)

    c = sub.add_parser("run", help="run a Python file with the code tool (sandboxed, or with limits)")
    c.add_argument("file", metavar="FILE.py")
    c.add_argument("--timeout", type=float, default=20.0, help="seconds it may run (the sandbox starts in ~5 s)")
    c.add_argument("--memory-mb", type=int, default=512, help="memory it may use, in MB")
    c.add_argument("--sandbox-only", action="store_true", help="refuse to run it outside the Pyodide sandbox")
    c.set_defaults(func=commands.run)

    c = sub.add_parser("chat", help="interactive chat with an assistant (/new, /history, /exit)")
    c.add_argument("assistant")
    c.add_argument("--conversation", type=int, help="resume this conversation")
    c.set_defaults(func=commands.chat)

    v = sub.add_parser("conversations", help="list, rename, delete and export conversations").add_subparsers(
        metavar="ACTION"
    )
    c = v.add_parser("list")
    c.add_argument("--assistant")
    c.set_defaults(func=commands.conversations_list)
    c = v.add_parser("rename")
    c.add_argument("id", type=int)
    c.add_argument("title")
    c.set_defaults(func=commands.conversations_rename)
    c = v.add_parser("delete")
    c.add_argument("id", type=int)
    c.set_defaults(func=commands.conversations_delete)
    c = v.add_parser("export", help="Markdown with citations")
    c.add_argument("id", type=int)
    c.add_argument("-o", "--output")
    c.set_defaults(func=commands.conversations_export)

    c = sub.add_parser("feedback", help="thumbs up or down on an answer")
    c.add_argument("message_id", type=int)
    c.add_argument("vote", choices=["up", "down"])
    c.add_argument("--comment")
    c.set_defaults(func=commands.feedback)


def _assistant_commands(sub: Any, commands: Any) -> None:
    """assistants list, new, import, export, schema, duplicate, delete"""
    a = sub.add_parser("assistants", help="manage assistants").add_subparsers(metavar="ACTION")
    c = a.add_parser("list", help="list assistants")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=commands.assistants_list)
    c = a.add_parser("schema", help="write the JSON Schema of assistant files (for editors)")
    c.add_argument("-o", "--output", help="file to write (default: stdout)")
    c.set_defaults(func=commands.assistants_schema)
    c = a.add_parser("new", help="create an assistant in the workspace")
    c.add_argument("name")
    c.add_argument("--collection", "-c", action="append", required=True)
    c.add_argument("--instructions", default="Answer from the passages and cite them like [1].")
    c.add_argument("--description", default="")
    c.set_defaults(func=commands.assistants_new)
    c = a.add_parser("import", help="validate and add an assistant (YAML file or bundle .zip)")
    c.add_argument("file")
    c.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an assistant of the same name; a bundle may add to existing collections",
    )
    c.add_argument("--allow-download", action="store_true", help="accept a model or reranker fetched from the hub")
    c.add_argument("--allow-model-path", action="store_true", help="accept a model file outside the workspace")
    c.add_argument(
        "--allow-remote",
        action="append",
        default=[],
        metavar="URL",
        help="accept that questions and passages go to this model server (repeat for each; "
        "'private-network' lets the web reader reach private addresses)",
    )
    c.set_defaults(func=commands.assistants_import)
    c = a.add_parser("export", help="write an assistant as YAML, or as a bundle with its documents")
    c.add_argument("name")
    c.add_argument("-o", "--output", help="file to write (default: stdout; required with --bundle)")
    c.add_argument("--bundle", action="store_true", help="a .zip with the YAML and the collections' files")
    c.set_defaults(func=commands.assistants_export)
    c = a.add_parser("duplicate", help="copy an assistant under a new name")
    c.add_argument("name")
    c.add_argument("new_name")
    c.set_defaults(func=commands.assistants_duplicate)
    c = a.add_parser("delete", help="delete a workspace assistant")
    c.add_argument("name")
    c.set_defaults(func=commands.assistants_delete)


def _system_commands(sub: Any, commands: Any) -> None:
    """serve, keys, arena, doctor, ui"""
    c = sub.add_parser("serve", help="start the OpenAI-compatible HTTP API")
    c.add_argument("--host", default="127.0.0.1")
    c.add_argument("--port", type=int, default=8000)
    c.add_argument("--max-queue", type=int, default=32, help="requests waiting per model before 503")
    c.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a host name clients may use besides the bound address and localhost (repeatable; "
        "also ARCHIVIST_ALLOWED_HOSTS, comma-separated)",
    )
    c.add_argument(
        "--no-worker",
        dest="worker",
        action="store_false",
        help="on a server database, leave queued ingest jobs to `archivist worker` processes",
    )
    c.set_defaults(func=commands.serve)

    k = sub.add_parser("keys", help="manage API keys").add_subparsers(metavar="ACTION")
    c = k.add_parser("create", help="create a key (printed once)")
    c.add_argument("name")
    c.add_argument("--assistant", action="append", default=[], help="limit the key to this assistant (repeatable)")
    c.set_defaults(func=commands.keys_create)
    c = k.add_parser("list", help="list keys")
    c.set_defaults(func=commands.keys_list)
    c = k.add_parser("revoke", help="revoke a key")
    c.add_argument("name")
    c.set_defaults(func=commands.keys_revoke)

    c = sub.add_parser(
        "arena",
        help="blind battles between assistants; `arena leaderboard`, `arena export`",
        description="archivist arena A B [C ...] [--questions QA.jsonl] [--auto]  |  archivist arena leaderboard "
        "[--auto] [--json]  |  archivist arena export [-o FILE]",
    )
    c.add_argument("names", nargs="+", metavar="ASSISTANT", help="two or more assistants, or all")
    c.add_argument("--questions", action="append", help="JSONL question set (repeatable); default: you type them")
    c.add_argument("--auto", action="store_true", help="every pair answers every question, judged without a model")
    c.add_argument("--limit", type=int, help="only the first N questions")
    c.add_argument("--json", action="store_true")
    c.add_argument("--output", "-o", help="export: write JSONL here instead of stdout")
    c.set_defaults(func=commands.arena)

    c = sub.add_parser("doctor", help="this machine, and the encoder precision measured fastest on it")
    c.add_argument("--calibrate", action="store_true", help="measure the encoder's precisions again now")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=commands.doctor)

    c = sub.add_parser("ui", help="start the Streamlit app")
    c.add_argument("--port", type=int, default=8501)
    c.add_argument("--host", default="127.0.0.1")
    c.set_defaults(func=commands.ui)


if __name__ == "__main__":
    raise SystemExit(main())
