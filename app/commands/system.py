"""The app, the API server and its keys, the machine report (doctor), and the arena."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from app.commands.base import services, write_out
from ingest.precision import ENV
from runtime.errors import ArchivistError


def ui(args: argparse.Namespace) -> int:
    from app.api import KeyStore, is_loopback
    from app.ui.login import LOGIN_ENV
    from app.ui.theme import app_flags
    from runtime.errors import ArchivistError

    shared = not is_loopback(args.host)
    if shared and not KeyStore(services(args).store.engine).active_count():
        raise ArchivistError(
            f"refusing to serve the app on {args.host} without a login: create an API key with "
            "`archivist keys create NAME` (the app then asks for it), or bind to 127.0.0.1"
        )
    main = Path(__file__).resolve().parent.parent / "main.py"  # app/main.py
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
        *app_flags(),
    ]
    env = dict(os.environ)
    if shared:
        env[LOGIN_ENV] = "1"
    if args.home:
        env["ARCHIVIST_HOME"] = str(Path(args.home).resolve())
    if getattr(args, "database_url", None):
        env["ARCHIVIST_DATABASE_URL"] = args.database_url
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
    stop = threading.Event()
    if svc.store.server and args.worker:
        # each replica also takes queued ingest jobs (uploads sent with wait=false, the app's, other replicas')
        from ingest.jobs import worker_name

        name = f"{worker_name()}/serve"
        threading.Thread(
            target=svc.jobs.run, args=(name, svc.add_document, stop), daemon=True, name="archivist-worker"
        ).start()
        print(
            f"this server also works ingest jobs as {name} (--no-worker to leave them to `archivist worker`)",
            file=sys.stderr,
        )
    for name in svc.follow_folders(stop):
        print(f"following the folders of {name} in the background", file=sys.stderr)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    finally:
        stop.set()
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


def doctor(args: argparse.Namespace) -> int:
    """What this machine is and what Archivist chose on it: the encoder's precision and its speeds."""
    from ingest.html_render import describe as html_visibility
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
        "database": svc.store.describe(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "physical_cores": physical_cores(),
        "libraries": library_versions(),
        "embedder": svc.store.embedder,
        "precision_setting": chosen,
        "precision": chosen if chosen != "auto" else (here.chosen if here else None),
        "calibration": asdict(here) if here else None,
        "html_visibility": html_visibility(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"workspace    {report['workspace']}")
    print(f"database     {report['database']}")
    print(f"CPU          {report['cpu']}, {report['cores']} logical / {report['physical_cores']} physical cores")
    print("libraries    " + ", ".join(f"{k} {v}" for k, v in report["libraries"].items()))
    print(f"embedder     {report['embedder']}")
    print(f"HTML hidden  {report['html_visibility']}")
    if chosen != "auto":
        print(f"precision    {chosen} (set by {ENV}; calibration not used)")
    elif here:
        print(f"precision    {here.plain()}")
        print(f"             measured: {here.summary()}")
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
        write_out("\n".join(lines) + ("\n" if lines else ""), args.output)
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
        battle = svc.arena.battle(chosen, text, question_id=q.id if q else None, evidence=q.evidence if q else ())
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
